package tabular

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"
)

// Layouts used for times and dates in text (CSV, and text columns in .xlsx).
const (
	TimeLayout = "2006-01-02 15:04:05"
	DateLayout = "2006-01-02"
)

// Number formats for .xlsx: "@" is Excel's built-in text format (49); the
// date formats are spelled out so every locale shows the same thing and
// import reads them back unambiguously. The [$-804] locale tag (zh-CN)
// changes nothing visible but lets excelize format these cells several times
// faster on import: without a tag it searches its whole language table for
// every date token.
const (
	xlsxTextFormat = 49
	xlsxTimeFormat = "[$-804]yyyy-mm-dd hh:mm:ss"
	xlsxDateFormat = "[$-804]yyyy-mm-dd"
)

// xlsxMaxRows is Excel's sheet size; the header takes one row.
const xlsxMaxRows = excelize.TotalRows

// Writer writes one list in CSV or .xlsx, a row at a time, so exporting a
// million rows does not hold them in memory: CSV goes straight to the
// underlying writer; .xlsx rows spill to a temporary file beyond 16 MB, and
// only the compressed workbook (about a tenth of that) is assembled in
// memory at Close, because excelize builds the zip in a buffer. Close must be
// called, also after an error, to release temporary files.
type Writer struct {
	cols []Column
	loc  *time.Location
	rows int

	// CSV
	csv    *csv.Writer
	record []string

	// .xlsx
	out    io.Writer
	book   *excelize.File
	sheet  *excelize.StreamWriter
	styles []int           // per column
	cells  []excelize.Cell // per column, reused for every row
	row    []any           // pointers into cells, what SetRow takes
	closed bool
}

// NewWriter starts a list with a header row. sheet names the .xlsx worksheet
// (characters Excel forbids are replaced; CSV ignores it); loc is the bureau
// time zone for Time columns, nil meaning Asia/Shanghai.
//
// CSV is UTF-8 with a byte order mark, so Excel opens Chinese text correctly,
// and lines end in LF, which Excel reads and which keeps a lone CR in a value.
func NewWriter(w io.Writer, f Format, sheet string, cols []Column, loc *time.Location) (*Writer, error) {
	if len(cols) == 0 {
		return nil, errors.New("tabular: a list needs at least one column")
	}
	for _, c := range cols {
		if c.Kind < Text || c.Kind > Date {
			return nil, fmt.Errorf("tabular: column %q has unknown kind %d", c.Header, c.Kind)
		}
	}
	if loc == nil {
		loc = shanghai()
	}
	tw := &Writer{cols: cols, loc: loc}
	switch f {
	case CSV:
		return tw, tw.startCSV(w)
	case XLSX:
		if err := tw.startXLSX(w, sheet); err != nil {
			_ = tw.book.Close()
			return nil, err
		}
		return tw, nil
	}
	return nil, fmt.Errorf("tabular: unknown format %q", f)
}

func (w *Writer) startCSV(out io.Writer) error {
	if _, err := io.WriteString(out, "\uFEFF"); err != nil {
		return fmt.Errorf("tabular: write CSV: %w", err)
	}
	w.csv = csv.NewWriter(out)
	w.record = make([]string, len(w.cols))
	for i, c := range w.cols {
		w.record[i] = Neutralize(c.Header)
	}
	if err := w.csv.Write(w.record); err != nil {
		return fmt.Errorf("tabular: write CSV: %w", err)
	}
	return nil
}

func (w *Writer) startXLSX(out io.Writer, sheet string) error {
	w.out = out
	w.book = excelize.NewFile()
	name := sheetName(sheet)
	if first := w.book.GetSheetName(0); name != first {
		if err := w.book.SetSheetName(first, name); err != nil {
			return fmt.Errorf("tabular: name sheet %q: %w", name, err)
		}
	}
	sw, err := w.book.NewStreamWriter(name)
	if err != nil {
		return fmt.Errorf("tabular: start sheet: %w", err)
	}
	w.sheet = sw

	header, err := w.book.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: xlsxTextFormat})
	if err != nil {
		return fmt.Errorf("tabular: header style: %w", err)
	}
	byKind := map[Kind]*excelize.Style{
		Text:   {NumFmt: xlsxTextFormat},
		Number: {},
		Time:   {CustomNumFmt: ptr(xlsxTimeFormat)},
		Date:   {CustomNumFmt: ptr(xlsxDateFormat)},
	}
	w.styles = make([]int, len(w.cols))
	w.cells = make([]excelize.Cell, len(w.cols))
	w.row = make([]any, len(w.cols))
	for i, c := range w.cols {
		if w.styles[i], err = w.book.NewStyle(byKind[c.Kind]); err != nil {
			return fmt.Errorf("tabular: column style: %w", err)
		}
		// The column style makes cells a user adds later text (or dates) too.
		if err := sw.SetColStyle(i+1, i+1, w.styles[i]); err != nil {
			return fmt.Errorf("tabular: column style: %w", err)
		}
		if err := sw.SetColWidth(i+1, i+1, columnWidth(c)); err != nil {
			return fmt.Errorf("tabular: column width: %w", err)
		}
		w.cells[i] = excelize.Cell{StyleID: header, Value: Neutralize(c.Header)}
		w.row[i] = &w.cells[i]
	}
	if err := sw.SetPanes(&excelize.Panes{
		Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}},
	}); err != nil {
		return fmt.Errorf("tabular: freeze header: %w", err)
	}
	if err := sw.SetRow("A1", w.row); err != nil {
		return fmt.Errorf("tabular: write header: %w", err)
	}
	for i := range w.cells {
		w.cells[i].StyleID = w.styles[i]
	}
	return nil
}

// Write adds one row; values line up with the columns. A value is a string,
// an integer or float, a time.Time (the zero time is an empty cell), nil, or
// a named type over a string or number. Strings are neutralised; in a Text
// column numbers and times are written as text, so the column stays text.
func (w *Writer) Write(values []any) error {
	if w.closed {
		return errors.New("tabular: write after close")
	}
	if len(values) != len(w.cols) {
		return fmt.Errorf("tabular: row has %d values for %d columns", len(values), len(w.cols))
	}
	if w.csv != nil {
		for i, v := range values {
			s, err := w.text(i, v)
			if err != nil {
				return err
			}
			w.record[i] = s
		}
		if err := w.csv.Write(w.record); err != nil {
			return fmt.Errorf("tabular: write CSV: %w", err)
		}
		w.rows++
		return nil
	}

	if w.rows+1 >= xlsxMaxRows {
		return fmt.Errorf("tabular: an .xlsx sheet holds at most %d rows; export CSV instead", xlsxMaxRows-1)
	}
	for i, v := range values {
		cell, err := w.xlsxValue(i, v)
		if err != nil {
			return err
		}
		w.cells[i].Value = cell
	}
	w.rows++
	ref, err := excelize.CoordinatesToCellName(1, w.rows+1)
	if err != nil {
		return fmt.Errorf("tabular: row %d: %w", w.rows+1, err)
	}
	if err := w.sheet.SetRow(ref, w.row); err != nil {
		return fmt.Errorf("tabular: write row %d: %w", w.rows+1, err)
	}
	return nil
}

// Close finishes the list and, for .xlsx, writes the workbook to the
// underlying writer (a workbook is a zip file, so nothing reaches it before).
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if w.csv != nil {
		w.csv.Flush()
		if err := w.csv.Error(); err != nil {
			return fmt.Errorf("tabular: write CSV: %w", err)
		}
		return nil
	}
	err := w.sheet.Flush()
	if err == nil {
		err = w.book.Write(w.out)
	}
	if cerr := w.book.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("tabular: write workbook: %w", err)
	}
	return nil
}

// text renders value v of column i as CSV text.
func (w *Writer) text(i int, v any) (string, error) {
	v, err := plain(v)
	if err != nil {
		return "", fmt.Errorf("tabular: column %q: %w", w.cols[i].Header, err)
	}
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return Neutralize(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case time.Time:
		switch {
		case v.IsZero():
			return "", nil
		case w.cols[i].Kind == Date:
			return v.Format(DateLayout), nil
		default:
			return v.In(w.loc).Format(TimeLayout), nil
		}
	}
	panic(fmt.Sprintf("tabular: plain returned %T", v))
}

// xlsxValue returns what the stream writer should store for value v of
// column i: typed numbers and dates in their own columns, text otherwise.
func (w *Writer) xlsxValue(i int, v any) (any, error) {
	p, err := plain(v)
	if err != nil {
		return nil, fmt.Errorf("tabular: column %q: %w", w.cols[i].Header, err)
	}
	switch kind := w.cols[i].Kind; p := p.(type) {
	case nil:
		return nil, nil
	case int64:
		if kind == Number {
			return p, nil
		}
	case float64:
		// Excel has no NaN or infinity; those stay text.
		if kind == Number && !math.IsNaN(p) && !math.IsInf(p, 0) {
			return p, nil
		}
	case time.Time:
		switch {
		case p.IsZero():
			return nil, nil
		case kind == Time:
			// excelize stores the wall clock of the time's own zone.
			return p.In(w.loc), nil
		case kind == Date:
			return time.Date(p.Year(), p.Month(), p.Day(), 0, 0, 0, 0, time.UTC), nil
		}
	}
	return w.text(i, v)
}

// plain reduces a cell value to nil, string, int64, float64 or time.Time.
func plain(v any) (any, error) {
	switch v := v.(type) {
	case nil, string, int64, float64, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	case int32:
		return int64(v), nil
	case *time.Time:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	}
	// Named types (a State string, an ID int64) and the rarer widths.
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u <= math.MaxInt64 {
			return int64(u), nil
		}
		return strconv.FormatUint(rv.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, nil
		}
		return plain(rv.Elem().Interface())
	}
	if s, ok := v.(fmt.Stringer); ok {
		return s.String(), nil
	}
	return nil, fmt.Errorf("cannot write a %T", v)
}

// columnWidth is the configured width, or one that fits the header and the
// kind's usual values. CJK characters are about two columns wide.
func columnWidth(c Column) float64 {
	if c.Width > 0 {
		return min(c.Width, excelize.MaxColumnWidth)
	}
	width := map[Kind]float64{Text: 16, Number: 12, Time: 20, Date: 12}[c.Kind]
	header := 2.0
	for _, r := range c.Header {
		if r >= 0x1100 {
			header += 2
		} else {
			header++
		}
	}
	return min(max(width, header), 60)
}

// sheetName makes s a valid worksheet name: no []:*?/\, no apostrophe at
// either end, at most 31 characters.
func sheetName(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(s))
	s = strings.Trim(s, "'")
	if utf8.RuneCountInString(s) > excelize.MaxSheetNameLength {
		s = string([]rune(s)[:excelize.MaxSheetNameLength])
	}
	if s == "" {
		return "Sheet1"
	}
	return s
}

func ptr[T any](v T) *T { return &v }
