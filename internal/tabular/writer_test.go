package tabular

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/shaobing/shaobing/internal/apperr"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%q\nwant:\n%q", name, got, want)
	}
}

// personColumns is a roster like the ones the modules export.
var personColumns = []Column{
	{Header: "name"},
	{Header: "id_number"},
	{Header: "note"},
	{Header: "tubes", Kind: Number},
	{Header: "sampled_at", Kind: Time},
	{Header: "birth_date", Kind: Date},
}

var sampled = time.Date(2024, 3, 5, 6, 7, 9, 0, time.UTC) // 14:07:09 in Shanghai
var born = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// injectionRows holds the formula-injection cases and the awkward values.
var injectionRows = [][]any{
	{"=1+1", "110101199001011234", "formula", 1, sampled, born},
	{"+cmd", "11010119900101123X", "plus", int64(2), sampled, born},
	{"-2+3", "110101199001011234", "minus", 3.5, nil, nil},
	{"@SUM(A1)", "", "at", -4, time.Time{}, time.Time{}},
	{"\tx", "", "tab", nil, nil, nil},
	{"\rx", "", "carriage return", nil, nil, nil},
	{"张三", "11010119900101123X", "ordinary Chinese name", 0, sampled, born},
	{"李四", "", "a, \"quoted\"\nnote", nil, nil, nil},
}

func writeList(t testing.TB, f Format, cols []Column, rows [][]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, f, "名单", cols, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteCSVGolden(t *testing.T) {
	golden(t, "roster.csv", writeList(t, CSV, personColumns, injectionRows))
}

func TestNeutralize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+cmd", "'+cmd"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"张三", "张三"},
		{"a=b", "a=b"},
		{"'=x", "'=x"}, // already text to a spreadsheet
		{"", ""},
	}
	for _, tt := range tests {
		if got := Neutralize(tt.in); got != tt.want {
			t.Errorf("Neutralize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWriteXLSX(t *testing.T) {
	data := writeList(t, XLSX, personColumns, injectionRows)
	book, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	const sheet = "名单"
	if got := book.GetSheetList(); len(got) != 1 || got[0] != sheet {
		t.Fatalf("sheets = %q, want [%q]", got, sheet)
	}

	numFmt := func(cell string) int {
		t.Helper()
		id, err := book.GetCellStyle(sheet, cell)
		if err != nil {
			t.Fatal(err)
		}
		style, err := book.GetStyle(id)
		if err != nil {
			t.Fatal(err)
		}
		if style.CustomNumFmt != nil {
			return -1
		}
		return style.NumFmt
	}

	// Header: text, bold, frozen.
	for i, c := range personColumns {
		ref, _ := excelize.CoordinatesToCellName(i+1, 1)
		if got, _ := book.GetCellValue(sheet, ref); got != c.Header {
			t.Errorf("%s = %q, want %q", ref, got, c.Header)
		}
		id, _ := book.GetCellStyle(sheet, ref)
		if style, _ := book.GetStyle(id); style == nil || style.Font == nil || !style.Font.Bold {
			t.Errorf("header %s is not bold", ref)
		}
	}
	panes, err := book.GetPanes(sheet)
	if err != nil {
		t.Fatal(err)
	}
	if !panes.Freeze || panes.YSplit != 1 || panes.TopLeftCell != "A2" {
		t.Errorf("panes = %+v, want the header row frozen", panes)
	}

	// Text cells: string cells in text format, neutralised, IDs exact.
	textCells := map[string]string{
		"A2": "'=1+1", "A3": "'+cmd", "A4": "'-2+3", "A5": "'@SUM(A1)",
		"A6": "'\tx", "A7": "'\rx", "A8": "张三", "C9": "a, \"quoted\"\nnote",
		"B2": "110101199001011234", "B3": "11010119900101123X",
	}
	for ref, want := range textCells {
		if got, _ := book.GetCellValue(sheet, ref); got != want {
			t.Errorf("%s = %q, want %q", ref, got, want)
		}
		if typ, _ := book.GetCellType(sheet, ref); typ != excelize.CellTypeInlineString {
			t.Errorf("%s type = %v, want inline string", ref, typ)
		}
		if got := numFmt(ref); got != 49 {
			t.Errorf("%s number format = %d, want 49 (@)", ref, got)
		}
	}
	// Empty text cells still carry the text format, so typing an ID keeps it.
	if got := numFmt("B5"); got != 49 {
		t.Errorf("empty B5 number format = %d, want 49", got)
	}
	for _, col := range []string{"A", "B", "C"} {
		id, err := book.GetColStyle(sheet, col)
		if err != nil {
			t.Fatal(err)
		}
		if style, _ := book.GetStyle(id); style == nil || style.NumFmt != 49 {
			t.Errorf("column %s style is not text", col)
		}
	}
	if w, _ := book.GetColWidth(sheet, "A"); w != 16 {
		t.Errorf("column A width = %v, want the text default 16", w)
	}

	// Numbers and times are typed values, not neutralised text.
	typed := []struct {
		ref, raw, shown string
	}{
		{"D2", "1", "1"},
		{"D4", "3.5", "3.5"},
		{"D5", "-4", "-4"},
		{"E2", "45356.58829861111", "2024-03-05 14:07:09"},
		{"F2", "32874", "1990-01-01"},
	}
	for _, tt := range typed {
		if typ, _ := book.GetCellType(sheet, tt.ref); typ != excelize.CellTypeUnset {
			t.Errorf("%s type = %v, want a number", tt.ref, typ)
		}
		if got, _ := book.GetCellValue(sheet, tt.ref, excelize.Options{RawCellValue: true}); got != tt.raw {
			t.Errorf("%s raw = %q, want %q", tt.ref, got, tt.raw)
		}
		if got, _ := book.GetCellValue(sheet, tt.ref); got != tt.shown {
			t.Errorf("%s shown = %q, want %q", tt.ref, got, tt.shown)
		}
	}
	// The zero time and nil are empty cells.
	for _, ref := range []string{"E5", "F5", "D6", "E4"} {
		if got, _ := book.GetCellValue(sheet, ref); got != "" {
			t.Errorf("%s = %q, want empty", ref, got)
		}
	}
}

func TestWriteTextColumnKeepsNumbersText(t *testing.T) {
	// A module that holds an ID or phone number as an integer still exports text.
	cols := []Column{{Header: "phone"}, {Header: "count", Kind: Number}}
	data := writeList(t, XLSX, cols, [][]any{{int64(13800138000), "=HYPERLINK(\"x\")"}})
	book, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	sheet := book.GetSheetList()[0]
	if typ, _ := book.GetCellType(sheet, "A2"); typ != excelize.CellTypeInlineString {
		t.Errorf("A2 type = %v, want a string", typ)
	}
	// A string in a Number column is still a string, and still neutralised.
	if got, _ := book.GetCellValue(sheet, "B2"); got != "'=HYPERLINK(\"x\")" {
		t.Errorf("B2 = %q, want it neutralised", got)
	}
}

type state string

type tubeNo int64

func TestWriteValues(t *testing.T) {
	loc := time.FixedZone("UTC-5", -5*60*60)
	tests := []struct {
		name string
		kind Kind
		in   any
		want string
	}{
		{"named string", Text, state("=open"), "'=open"},
		{"named int", Text, tubeNo(42), "42"},
		{"uint", Number, uint8(7), "7"},
		{"float", Number, 0.1, "0.1"},
		{"pointer to time", Time, &sampled, "2024-03-05 01:07:09"},
		{"nil pointer", Time, (*time.Time)(nil), ""},
		{"time in its bureau zone", Time, sampled, "2024-03-05 01:07:09"},
		{"date is its own calendar day", Date, born, "1990-01-01"},
		{"time in a text column", Text, sampled, "2024-03-05 01:07:09"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, CSV, "", []Column{{Header: "v", Kind: tt.kind}}, loc)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write([]any{tt.in}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSuffix(strings.SplitN(buf.String(), "\n", 2)[1], "\n")
			if got != tt.want {
				t.Errorf("wrote %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	for _, f := range []Format{CSV, XLSX} {
		w, err := NewWriter(&bytes.Buffer{}, f, "x", []Column{{Header: "a"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write([]any{"a", "b"}); err == nil {
			t.Errorf("%s: a row longer than the columns was written", f)
		}
		if err := w.Write([]any{true}); err == nil {
			t.Errorf("%s: a bool was written", f)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Write([]any{"a"}); err == nil {
			t.Errorf("%s: write after close succeeded", f)
		}
	}
	if _, err := NewWriter(&bytes.Buffer{}, CSV, "x", nil, nil); err == nil {
		t.Error("a list without columns was started")
	}
	for _, f := range []Format{CSV, XLSX} {
		if _, err := NewWriter(&bytes.Buffer{}, f, "x", []Column{{Header: "a", Kind: Date + 1}}, nil); err == nil {
			t.Errorf("%s: a column of unknown kind was accepted", f)
		}
	}
	if _, err := NewWriter(&bytes.Buffer{}, "pdf", "x", []Column{{Header: "a"}}, nil); err == nil {
		t.Error("an unknown format was accepted")
	}
}

func TestSheetName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"名单", "名单"},
		{"a/b:c[d]*?\\", "a_b_c_d____"},
		{"'quoted'", "quoted"},
		{"", "Sheet1"},
		{strings.Repeat("长", 40), strings.Repeat("长", 31)},
	}
	for _, tt := range tests {
		if got := sheetName(tt.in); got != tt.want {
			t.Errorf("sheetName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		var buf bytes.Buffer
		w, err := NewWriter(&buf, XLSX, tt.in, []Column{{Header: "a"}}, nil)
		if err != nil {
			t.Fatalf("sheet %q: %v", tt.in, err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("sheet %q: %v", tt.in, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"csv", CSV, true},
		{"CSV", CSV, true},
		{"xlsx", XLSX, true},
		{".XLSX", XLSX, true},
		{" xlsx ", XLSX, true},
		{"xls", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseFormat(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil {
			if e := apperr.As(err); e == nil || len(e.Fields) != 1 || e.Fields[0].Field != "format" {
				t.Errorf("ParseFormat(%q) error = %v, want a field error on format", tt.in, err)
			}
		}
	}
	if CSV.ContentType() != "text/csv; charset=utf-8" || CSV.Ext() != ".csv" {
		t.Error("CSV content type or extension is wrong")
	}
	if XLSX.ContentType() != "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" || XLSX.Ext() != ".xlsx" {
		t.Error("XLSX content type or extension is wrong")
	}
}
