// Package tabular is shaobing's one import/export path: every list exports to
// CSV or Excel (.xlsx) through Writer, and every bulk entry reads CSV or .xlsx
// through Import.Read with a row-by-row error report.
//
// Two rules hold for both formats. Text cells that a spreadsheet would take
// for a formula (leading = + - @ tab or CR) are neutralised with a leading
// apostrophe, and text columns stay text, so an 18-digit ID number is never
// turned into a 15-digit float by Excel.
package tabular

import (
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
)

// Format is a file format for lists: "csv" or "xlsx".
type Format string

// The formats.
const (
	CSV  Format = "csv"
	XLSX Format = "xlsx"
)

// ParseFormat reads a format name as a user or a file name gives it:
// "csv", "xlsx", ".xlsx", in any case.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), ".")) {
	case "csv":
		return CSV, nil
	case "xlsx":
		return XLSX, nil
	}
	return "", apperr.Field("format", "unsupported_format", "must be csv or xlsx")
}

// ContentType returns the MIME type to serve the format with.
func (f Format) ContentType() string {
	if f == XLSX {
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "text/csv; charset=utf-8"
}

// Ext returns the file name extension, with its dot.
func (f Format) Ext() string {
	if f == XLSX {
		return ".xlsx"
	}
	return ".csv"
}

// Kind says how a column's values are written.
type Kind int

// The kinds. Text is the default so a column is never numeric by accident.
const (
	Text   Kind = iota // a string cell, formatted as text in .xlsx (ID numbers, phone numbers, codes)
	Number             // a number cell
	Time               // an instant, shown in the bureau's time zone as 2006-01-02 15:04:05
	Date               // a calendar date, 2006-01-02
)

// Column describes one column of an export.
type Column struct {
	Header string
	Kind   Kind
	Width  float64 // .xlsx column width in characters; 0 picks one from the kind and header
}

// Neutralize prefixes an apostrophe to text a spreadsheet would read as a
// formula (OWASP's advice against CSV injection): a leading = + - @ tab or CR.
func Neutralize(s string) string {
	if s != "" && isFormulaStart(s[0]) {
		return "'" + s
	}
	return s
}

// isFormulaStart reports whether a spreadsheet treats a cell starting with c
// as a formula (or, for tab and CR, strips them and looks at what follows).
func isFormulaStart(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// unneutralize undoes Neutralize on an imported value, so our own exports
// import unchanged.
func unneutralize(s string) string {
	if len(s) >= 2 && s[0] == '\'' && isFormulaStart(s[1]) {
		return s[1:]
	}
	return s
}

// shanghai returns the default bureau time zone. China has kept UTC+8
// without daylight saving since 1991, so a fixed zone stands in where the
// system has no time zone database.
func shanghai() *time.Location {
	if loc, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return loc
	}
	return time.FixedZone("CST", 8*60*60)
}
