package tabular

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/shaobing/shaobing/internal/apperr"
)

// Defaults for Import.
const (
	DefaultMaxRows   = 1_000_000
	DefaultMaxErrors = 1000
)

// headerSearch is how many non-empty rows may precede the header: Chinese
// registers often carry a title row or two above it.
const headerSearch = 10

// xlsxUnzipLimit caps the unpacked size of an .xlsx, against zip bombs; a
// million rows of a few dozen columns stay well below it.
const xlsxUnzipLimit = 4 << 30

// Import says what a bulk entry needs from a file.
type Import struct {
	// Required headers must all be present, or the file is refused before
	// any row is read. Names are matched trimmed and case-insensitively.
	Required []string
	// Aliases maps other accepted headers to the names Record.Get uses,
	// e.g. "身份证号" → "id_number", so translated templates import too.
	Aliases map[string]string
	// MaxRows caps the data rows; 0 means DefaultMaxRows.
	MaxRows int
	// MaxErrors stops reading once more rows than this have errors; 0 means
	// DefaultMaxErrors. A file that bad needs fixing, not a longer report.
	MaxErrors int
}

// RowError reports one problem with one row. Row is the spreadsheet row
// number a user sees, header included; Field is the input field the row
// function named, if any; Code is a stable reason (the translation key suffix).
type RowError struct {
	Row   int    `json:"row"`
	Field string `json:"field,omitempty"`
	Code  string `json:"code,omitempty"`
	Error string `json:"error"`
	// Args fill the translated message, as in apperr.FieldError.
	Args []any `json:"-"`
}

// Record is one data row, read by header name.
type Record struct {
	cols   map[string]int
	fields []string
}

// Get returns the named column's value, trimmed and with our own formula
// neutralisation undone; "" if the file has no such column.
func (r Record) Get(name string) string {
	i, ok := r.cols[strings.ToLower(name)]
	if !ok || i >= len(r.fields) {
		return ""
	}
	return r.fields[i]
}

// Has reports whether the file has the named column, so optional columns can
// be told apart from empty cells.
func (r Record) Has(name string) bool {
	_, ok := r.cols[strings.ToLower(name)]
	return ok
}

// Read reads a CSV or .xlsx file (the first sheet) and calls fn for every
// non-empty row after the header, with the row's spreadsheet row number.
//
// CSV may be UTF-8, with or without a byte order mark, or GB18030. f is the
// format the user chose or the file name gave, but the content decides: a
// workbook named .csv still imports; only a file claimed as .xlsx that is
// not one is refused.
//
// An *apperr.Error from fn with a user-facing code (invalid, bad request,
// conflict, not found, forbidden) becomes row errors, one per field, and
// reading goes on; any other error from fn stops Read and is returned, so an
// outage is not reported a million times as bad rows.
//
// Read's error is for the file as a whole: unreadable, wrong headers, too
// many rows or too many bad rows (an *apperr.Error), or a failure to read r.
// Rows before such an error have already been given to fn, so a caller that
// applies rows as it goes must treat the error as failing the whole import.
func (im Import) Read(r io.Reader, f Format, fn func(row int, rec Record) error) ([]RowError, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(8)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("tabular: read file: %w", err)
	}
	var src rowSource
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		xs, err := openXLSX(br)
		if err != nil {
			return nil, err
		}
		defer xs.close()
		src = xs
	case bytes.HasPrefix(head, []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1")):
		return nil, fileError("unsupported_file", "this is an old Excel (.xls) file; save it as .xlsx or CSV and try again")
	case f == XLSX:
		return nil, fileError("unsupported_file", "this is not an Excel workbook (.xlsx)")
	case bytes.HasPrefix(head, []byte("\xFF\xFE")), bytes.HasPrefix(head, []byte("\xFE\xFF")):
		return nil, fileError("unsupported_file", "this is UTF-16 text; save it as CSV (UTF-8) or .xlsx and try again")
	default:
		cr := csv.NewReader(textReader(br))
		// Spreadsheets drop trailing empty cells. Quotes stay strict: with
		// lazy quotes one stray quote silently swallows the rest of the file.
		cr.FieldsPerRecord = -1
		src = &csvRows{r: cr}
	}
	return im.read(src, fn)
}

func (im Import) read(src rowSource, fn func(row int, rec Record) error) ([]RowError, error) {
	cols, err := im.header(src)
	if err != nil {
		return nil, err
	}
	maxRows := cmp.Or(im.MaxRows, DefaultMaxRows)
	maxErrors := cmp.Or(im.MaxErrors, DefaultMaxErrors)
	var rowErrs []RowError
	data, bad := 0, 0
	for {
		row, fields, err := src.next()
		if err == io.EOF {
			return rowErrs, nil
		}
		if err != nil {
			return rowErrs, err
		}
		if blank(fields) {
			continue
		}
		if data++; data > maxRows {
			return rowErrs, fileError("too_many_rows", "the file has more than %d rows; split it and import the parts", maxRows)
		}
		errs, err := rowErrors(row, im.row(cols, fields, row, fn))
		if err != nil {
			return rowErrs, err
		}
		if len(errs) > 0 {
			rowErrs = append(rowErrs, errs...)
			if bad++; bad > maxErrors {
				return rowErrs, fileError("too_many_errors", "more than %d rows have errors; fix the file and import it again", maxErrors)
			}
		}
	}
}

// row cleans one row's fields and gives them to fn.
func (im Import) row(cols map[string]int, fields []string, row int, fn func(int, Record) error) error {
	clean := make([]string, len(fields))
	for i, v := range fields {
		if !utf8.ValidString(v) {
			return apperr.New(apperr.Invalid, "the row has text that is not UTF-8; save the file as CSV (UTF-8)")
		}
		clean[i] = strings.TrimSpace(unneutralize(strings.TrimSpace(v)))
	}
	return fn(row, Record{cols: cols, fields: clean})
}

// header finds the header row: the first non-empty row, or, when that lacks
// required headers, the first of the next few that has them all (title rows
// above the header are common). It returns the column of every header name.
func (im Import) header(src rowSource) (map[string]int, error) {
	aliases := make(map[string]string, len(im.Aliases))
	for from, to := range im.Aliases {
		aliases[canonical(from)] = canonical(to)
	}
	var firstMissing []string
	for tries := 0; tries < headerSearch; {
		_, fields, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if blank(fields) {
			continue
		}
		tries++
		cols := make(map[string]int, len(fields))
		var dups []string
		for i, h := range fields {
			name := canonical(h)
			if to, ok := aliases[name]; ok {
				name = to
			}
			if name == "" {
				continue
			}
			if _, ok := cols[name]; ok && !slices.Contains(dups, name) {
				dups = append(dups, name)
			}
			cols[name] = i
		}
		var missing []string
		for _, req := range im.Required {
			if _, ok := cols[canonical(req)]; !ok {
				missing = append(missing, req)
			}
		}
		if len(missing) == 0 {
			if len(dups) > 0 {
				return nil, fileError("duplicate_columns", "these columns appear more than once: %s", strings.Join(dups, ", "))
			}
			return cols, nil
		}
		if firstMissing == nil {
			firstMissing = missing
		}
	}
	if firstMissing == nil {
		return nil, fileError("empty_file", "the file has no header row")
	}
	return nil, fileError("missing_columns", "the file lacks these columns: %s", strings.Join(firstMissing, ", "))
}

// rowErrors turns fn's error for a row into row errors, or returns it when it
// is not about the row.
func rowErrors(row int, err error) ([]RowError, error) {
	if err == nil {
		return nil, nil
	}
	e := apperr.As(err)
	if e == nil {
		return nil, err
	}
	switch e.Code {
	case apperr.Invalid, apperr.BadRequest, apperr.Conflict, apperr.NotFound, apperr.Forbidden:
	default:
		return nil, err
	}
	if len(e.Fields) == 0 {
		return []RowError{{Row: row, Code: string(e.Code), Error: cmp.Or(e.Message, string(e.Code))}}, nil
	}
	errs := make([]RowError, len(e.Fields))
	for i, f := range e.Fields {
		errs[i] = RowError{Row: row, Field: f.Field, Code: f.Code, Error: f.Message, Args: f.Args}
	}
	return errs, nil
}

// fileError is an error about the uploaded file as a whole.
func fileError(code, format string, args ...any) *apperr.Error {
	return apperr.Field("file", code, format, args...)
}

func canonical(h string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
}

func blank(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// rowSource yields a file's rows with their spreadsheet row numbers, and
// io.EOF after the last.
type rowSource interface {
	next() (row int, fields []string, err error)
}

// csvRows numbers CSV records as Excel shows them: a quoted value spanning
// lines is one row, and a blank line (which encoding/csv skips) is a row.
type csvRows struct {
	r       *csv.Reader
	row     int
	endLine int // line the previous record ended on
}

func (c *csvRows) next() (int, []string, error) {
	rec, err := c.r.Read()
	if err == io.EOF {
		return 0, nil, io.EOF
	}
	if pe := (*csv.ParseError)(nil); errors.As(err, &pe) {
		e := fileError("unreadable_file", "the CSV file is malformed in the row starting at line %d: %v", pe.StartLine, pe.Err)
		e.Err = err
		return 0, nil, e
	}
	if err != nil {
		return 0, nil, fmt.Errorf("tabular: read CSV: %w", err)
	}
	line, _ := c.r.FieldPos(0)
	c.row += line - c.endLine
	last, _ := c.r.FieldPos(len(rec) - 1)
	c.endLine = last + strings.Count(rec[len(rec)-1], "\n")
	return c.row, rec, nil
}

// xlsxRows reads the first sheet of a workbook.
type xlsxRows struct {
	book *excelize.File
	rows *excelize.Rows
	row  int
}

func openXLSX(r io.Reader) (*xlsxRows, error) {
	// Reading the whole file first keeps a failing upload (an io error) apart
	// from a broken workbook (the user's problem).
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("tabular: read file: %w", err)
	}
	book, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{
		UnzipSizeLimit: xlsxUnzipLimit,
		// Render Excel's locale-dependent built-in date formats (14, 22)
		// as ISO dates, so ParseTime reads them without guessing; the
		// locale tag is for speed, as in xlsxDateFormat.
		ShortDatePattern: "[$-804]yyyy-mm-dd",
		LongTimePattern:  "hh:mm:ss",
		CultureInfo:      excelize.CultureNameZhCN,
	})
	if err != nil {
		e := fileError("unreadable_file", "the Excel file cannot be read; save it again as .xlsx")
		e.Err = err
		return nil, e
	}
	sheets := book.GetSheetList()
	if len(sheets) == 0 {
		_ = book.Close()
		return nil, fileError("empty_file", "the workbook has no sheets")
	}
	rows, err := book.Rows(sheets[0])
	if err != nil {
		_ = book.Close()
		e := fileError("unreadable_file", "the Excel file cannot be read; save it again as .xlsx")
		e.Err = err
		return nil, e
	}
	return &xlsxRows{book: book, rows: rows}, nil
}

func (x *xlsxRows) next() (int, []string, error) {
	// Next counts rows absent from the file too, so x.row is the row number.
	if !x.rows.Next() {
		if err := x.rows.Error(); err != nil {
			e := fileError("unreadable_file", "the Excel file cannot be read at row %d", x.row+1)
			e.Err = err
			return 0, nil, e
		}
		return 0, nil, io.EOF
	}
	x.row++
	cols, err := x.rows.Columns()
	if err != nil {
		e := fileError("unreadable_file", "the Excel file cannot be read at row %d", x.row)
		e.Err = err
		return 0, nil, e
	}
	return x.row, cols, nil
}

func (x *xlsxRows) close() {
	_ = x.rows.Close()
	_ = x.book.Close()
}
