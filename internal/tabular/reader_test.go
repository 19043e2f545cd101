package tabular

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/shaobing/shaobing/internal/apperr"
)

// got is one row as fn saw it.
type got struct {
	Row    int
	Name   string
	ID     string
	HasAge bool
}

// readAll imports data and collects every row fn saw.
func readAll(t *testing.T, im Import, data []byte, f Format) ([]got, []RowError, error) {
	t.Helper()
	var rows []got
	errs, err := im.Read(bytes.NewReader(data), f, func(row int, rec Record) error {
		rows = append(rows, got{row, rec.Get("name"), rec.Get("id_number"), rec.Has("age")})
		return nil
	})
	return rows, errs, err
}

var people = Import{Required: []string{"name", "id_number"}}

func TestReadCSV(t *testing.T) {
	want := []got{{2, "张三", "11010119900101123X", false}, {3, "李四", "110101199001011234", false}}
	gb, err := simplifiedchinese.GB18030.NewEncoder().String("name,id_number\n张三,11010119900101123X\n李四,110101199001011234\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
	}{
		{"UTF-8", "name,id_number\n张三,11010119900101123X\n李四,110101199001011234\n"},
		{"UTF-8 with BOM and CRLF", "\uFEFFname,id_number\r\n张三,11010119900101123X\r\n李四,110101199001011234\r\n"},
		{"GB18030 from Chinese Excel", gb},
		{"headers in any case, spaced, in any order", " ID_Number ,Name\r\n11010119900101123X,张三\n 110101199001011234 ,李四 "},
		{"extra columns ignored", "note,name,id_number\nx,张三,11010119900101123X\ny,李四,110101199001011234\n"},
		{"neutralised by our export", "name,id_number\n张三,'-11010119900101123X\n李四,110101199001011234\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, errs, err := readAll(t, people, []byte(tt.data), CSV)
			if err != nil || len(errs) > 0 {
				t.Fatalf("Read: %v %v", errs, err)
			}
			w := want
			if strings.Contains(tt.data, "'-") {
				w = slicesClone(want)
				w[0].ID = "-11010119900101123X"
			}
			if !reflect.DeepEqual(rows, w) {
				t.Errorf("rows = %v, want %v", rows, w)
			}
		})
	}
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

func TestReadGB18030LateInFile(t *testing.T) {
	// The first non-ASCII byte may come long after the start; ASCII before
	// it passes through untouched and the decision is made there.
	var b strings.Builder
	b.WriteString("name,id_number\n")
	for i := range 500 {
		fmt.Fprintf(&b, "p%d,%018d\n", i, i)
	}
	b.WriteString("王五,11010119900101123X\n")
	data, err := simplifiedchinese.GB18030.NewEncoder().String(b.String())
	if err != nil {
		t.Fatal(err)
	}
	rows, errs, err := readAll(t, people, []byte(data), CSV)
	if err != nil || len(errs) > 0 {
		t.Fatalf("Read: %v %v", errs, err)
	}
	if len(rows) != 501 || rows[500] != (got{Row: 502, Name: "王五", ID: "11010119900101123X"}) {
		t.Errorf("last row = %+v of %d", rows[len(rows)-1], len(rows))
	}
}

func TestIsUTF8(t *testing.T) {
	cut := []byte("张三")[:4] // a full rune and the first byte of the next
	tests := []struct {
		in    []byte
		atEOF bool
		want  bool
	}{
		{[]byte("张三"), true, true},
		{cut, false, true},
		{cut, true, false},
		{[]byte{0xD5, 0xC5}, false, false}, // 张 in GB18030
		{[]byte{0xD5}, true, false},
	}
	for _, tt := range tests {
		if got := isUTF8(tt.in, tt.atEOF); got != tt.want {
			t.Errorf("isUTF8(% x, %v) = %v, want %v", tt.in, tt.atEOF, got, tt.want)
		}
	}
}

func TestReadRowNumbers(t *testing.T) {
	// Row numbers are what Excel shows: a blank line is a row, a quoted
	// value over two lines is one row, empty rows are skipped but counted,
	// and title rows above the header are passed over.
	data := "花名册\n" + // 1: title
		"\n" + // 2: blank
		"name,id_number,note\n" + // 3: header
		"张三,1,\"two\nlines\"\n" + // 4
		"\n" + // 5: blank, skipped by encoding/csv
		",,\n" + // 6: empty cells
		"李四,2,x\n" // 7
	var rows []int
	errs, err := people.Read(strings.NewReader(data), CSV, func(row int, rec Record) error {
		rows = append(rows, row)
		return apperr.Field("id_number", "invalid_id", "not a valid ID number")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, []int{4, 7}) {
		t.Errorf("rows = %v, want [4 7]", rows)
	}
	want := []RowError{
		{Row: 4, Field: "id_number", Code: "invalid_id", Error: "not a valid ID number"},
		{Row: 7, Field: "id_number", Code: "invalid_id", Error: "not a valid ID number"},
	}
	for i := range errs {
		errs[i].Args = nil
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors = %+v, want %+v", errs, want)
	}
}

func TestReadRowErrors(t *testing.T) {
	data := "name,id_number\n张三,1\n李四,2\n王五,3\n赵六,4\n"
	errs, err := people.Read(strings.NewReader(data), CSV, func(row int, rec Record) error {
		switch rec.Get("name") {
		case "张三":
			var p apperr.Problems
			p.Add("name", "too_short", "must be at least %d characters", 3)
			p.Add("id_number", "invalid_id", "not a valid ID number")
			return p.Err()
		case "李四":
			return fmt.Errorf("save person: %w", apperr.New(apperr.Conflict, "already registered"))
		case "王五":
			return apperr.New(apperr.NotFound, "")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []RowError{
		{Row: 2, Field: "name", Code: "too_short", Error: "must be at least 3 characters", Args: []any{3}},
		{Row: 2, Field: "id_number", Code: "invalid_id", Error: "not a valid ID number"},
		{Row: 3, Code: "conflict", Error: "already registered"},
		{Row: 4, Code: "not_found", Error: "not_found"},
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors = %+v\nwant %+v", errs, want)
	}
}

func TestReadStopsOnInternalError(t *testing.T) {
	outage := errors.New("database is down")
	calls := 0
	errs, err := people.Read(strings.NewReader("name,id_number\na,1\nb,2\n"), CSV, func(int, Record) error {
		calls++
		return outage
	})
	if !errors.Is(err, outage) || calls != 1 || len(errs) != 0 {
		t.Errorf("Read = %v, %v after %d calls; want the outage after one", errs, err, calls)
	}
	_, err = people.Read(strings.NewReader("name,id_number\na,1\n"), CSV, func(int, Record) error {
		return apperr.New(apperr.Unavailable, "busy")
	})
	if !apperr.Is(err, apperr.Unavailable) {
		t.Errorf("Read = %v, want the unavailable error", err)
	}
}

func TestReadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		im   Import
		data string
		f    Format
		code string
		text string
	}{
		{"missing headers", people, "name,phone\na,1\n", CSV, "missing_columns", "id_number"},
		{"missing both", people, "phone\n1\n", CSV, "missing_columns", "name, id_number"},
		{"duplicate headers", people, "name,id_number,Name \na,1,b\n", CSV, "duplicate_columns", "name"},
		{"duplicate through an alias", Import{Required: []string{"id_number"}, Aliases: map[string]string{"身份证号": "id_number"}},
			"身份证号,id_number\n1,2\n", CSV, "duplicate_columns", "id_number"},
		{"empty", people, "\n\n", CSV, "empty_file", "no header"},
		{"too many rows", Import{Required: []string{"name"}, MaxRows: 2}, "name\na\nb\nc\n", CSV, "too_many_rows", "more than 2 rows"},
		{"legacy xls", people, "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest", CSV, "unsupported_file", ".xls"},
		{"UTF-16", people, "\xFF\xFEn\x00a\x00", CSV, "unsupported_file", "UTF-16"},
		{"CSV named xlsx", people, "name,id_number\n", XLSX, "unsupported_file", "not an Excel"},
		{"broken workbook", people, "PK\x03\x04broken", XLSX, "unreadable_file", "cannot be read"},
		{"unclosed quote", people, "name,id_number\n\"a,1\nb,2\n", CSV, "unreadable_file", "line 2"},
		{"bare quote", people, "name,id_number\na,1\n5\" tube,2\n", CSV, "unreadable_file", "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readAll(t, tt.im, []byte(tt.data), tt.f)
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || len(e.Fields) != 1 {
				t.Fatalf("Read error = %v, want a field error", err)
			}
			if f := e.Fields[0]; f.Field != "file" || f.Code != tt.code || !strings.Contains(f.Message, tt.text) {
				t.Errorf("error = %+v, want code %s mentioning %q", f, tt.code, tt.text)
			}
		})
	}
}

func TestReadRowLimitCountsDataRowsOnly(t *testing.T) {
	// Blank rows and the header do not count against the limit.
	rows, _, err := readAll(t, Import{Required: []string{"name"}, MaxRows: 2}, []byte("name\n\na\n\nb\n\n"), CSV)
	if err != nil || len(rows) != 2 {
		t.Errorf("Read = %v, %v; want two rows", rows, err)
	}
}

func TestReadTooManyErrors(t *testing.T) {
	data := "name,id_number\n" + strings.Repeat("a,1\n", 10)
	calls := 0
	errs, err := Import{MaxErrors: 3}.Read(strings.NewReader(data), CSV, func(int, Record) error {
		calls++
		return apperr.New(apperr.Invalid, "bad")
	})
	if e := apperr.As(err); e == nil || e.Fields[0].Code != "too_many_errors" {
		t.Fatalf("Read error = %v, want too_many_errors", err)
	}
	if calls != 4 || len(errs) != 4 {
		t.Errorf("stopped after %d calls with %d errors, want 4 and 4", calls, len(errs))
	}
}

func TestReadNotUTF8AfterSniffing(t *testing.T) {
	// The file looked like UTF-8 where it was judged; a later stray byte is
	// that row's error, not a garbled value.
	data := "name,id_number\n张三,1\n" + strings.Repeat("x,1\n", sniffWindow/4) + "\xff\xfe,2\n"
	rows, errs, err := readAll(t, people, []byte(data), CSV)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0].Row != len(rows)+2 || !strings.Contains(errs[0].Error, "UTF-8") {
		t.Errorf("errors = %+v after %d rows, want one UTF-8 error on the last row", errs, len(rows))
	}
}

func TestReadAliases(t *testing.T) {
	im := Import{Required: []string{"name", "id_number"}, Aliases: map[string]string{"姓名": "name", "身份证号": "ID_Number"}}
	rows, errs, err := readAll(t, im, []byte("姓名,身份证号,age\n张三,11010119900101123X,3\n"), CSV)
	if err != nil || len(errs) > 0 {
		t.Fatalf("Read: %v %v", errs, err)
	}
	if want := []got{{2, "张三", "11010119900101123X", true}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %v, want %v", rows, want)
	}
}

func TestReadXLSXFromExcel(t *testing.T) {
	// A workbook as a person makes it: a title row, a gap, an ID typed as a
	// number, dates in Excel's built-in locale formats, a formula-like text.
	book := excelize.NewFile()
	sheet := book.GetSheetName(0)
	set := func(ref string, v any) {
		if err := book.SetCellValue(sheet, ref, v); err != nil {
			t.Fatal(err)
		}
	}
	set("A1", "2024年3月 采样名单")
	set("A3", "姓名")
	set("B3", "身份证号")
	set("C3", "采样时间")
	set("D3", "电话")
	set("A4", "张三")
	set("B4", "11010119900101123X")
	set("C4", time.Date(2024, 3, 5, 14, 7, 0, 0, time.UTC))
	set("D4", 13800138000)
	set("A6", "'=李四")
	set("B6", 110101199001011234) // typed into a General cell
	set("C6", time.Date(2024, 3, 6, 0, 0, 0, 0, time.UTC))
	for ref, id := range map[string]int{"C4": 22, "C6": 14} {
		style, _ := book.NewStyle(&excelize.Style{NumFmt: id})
		if err := book.SetCellStyle(sheet, ref, ref, style); err != nil {
			t.Fatal(err)
		}
	}
	buf, err := book.WriteToBuffer()
	if err != nil {
		t.Fatal(err)
	}

	im := Import{Required: []string{"name", "id_number"}, Aliases: map[string]string{"姓名": "name", "身份证号": "id_number", "采样时间": "sampled_at", "电话": "phone"}}
	type row struct {
		Row                        int
		Name, ID, SampledAt, Phone string
	}
	var rows []row
	errs, err := im.Read(bytes.NewReader(buf.Bytes()), CSV /* the content decides */, func(n int, rec Record) error {
		rows = append(rows, row{n, rec.Get("name"), rec.Get("id_number"), rec.Get("sampled_at"), rec.Get("phone")})
		return nil
	})
	if err != nil || len(errs) > 0 {
		t.Fatalf("Read: %v %v", errs, err)
	}
	want := []row{
		{4, "张三", "11010119900101123X", "2024-03-05 14:07", "13800138000"},
		// An ID Excel took for a number arrives as Excel shows it, so the
		// caller's validation rejects it instead of storing lost digits.
		{6, "=李四", "1.10101199001011E+17", "2024-03-06", ""},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %+v\nwant %+v", rows, want)
	}
	for _, r := range rows {
		if _, err := ParseTime(r.SampledAt, time.UTC); err != nil {
			t.Errorf("ParseTime: %v", err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []Format{CSV, XLSX} {
		t.Run(string(f), func(t *testing.T) {
			data := writeList(t, f, personColumns, injectionRows)
			var back [][]any
			errs, err := Import{Required: []string{"name", "id_number", "note", "tubes", "sampled_at", "birth_date"}}.Read(
				bytes.NewReader(data), f, func(row int, rec Record) error {
					r := []any{rec.Get("name"), rec.Get("id_number"), rec.Get("note"), rec.Get("tubes")}
					for _, col := range []string{"sampled_at", "birth_date"} {
						v := rec.Get(col)
						if v == "" {
							r = append(r, nil)
							continue
						}
						tm, err := ParseTime(v, shanghai())
						if err != nil {
							return apperr.Field(col, "invalid_time", "%v", err)
						}
						r = append(r, tm.UTC())
					}
					back = append(back, r)
					return nil
				})
			if err != nil || len(errs) > 0 {
				t.Fatalf("Read: %v %v", errs, err)
			}
			if len(back) != len(injectionRows) {
				t.Fatalf("read %d rows, wrote %d", len(back), len(injectionRows))
			}
			bornThere := time.Date(1990, 1, 1, 0, 0, 0, 0, shanghai()).UTC()
			for i, w := range injectionRows {
				want := []any{
					strings.TrimSpace(w[0].(string)), w[1], w[2], fmt.Sprint(cmpNil(w[3])),
					timeOrNil(w[4]), timeOrNil(w[5]),
				}
				if want[5] != nil {
					want[5] = bornThere
				}
				if !reflect.DeepEqual(back[i], want) {
					t.Errorf("row %d = %q, want %q", i+2, back[i], want)
				}
			}
		})
	}
}

func cmpNil(v any) any {
	if v == nil {
		return ""
	}
	return v
}

func timeOrNil(v any) any {
	if t, ok := v.(time.Time); ok && !t.IsZero() {
		return t
	}
	return nil
}

func TestParseTime(t *testing.T) {
	loc := shanghai()
	want := time.Date(2024, 3, 5, 14, 7, 9, 0, loc)
	day := time.Date(2024, 3, 5, 0, 0, 0, 0, loc)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2024-03-05 14:07:09", want},
		{" 2024-3-5 14:07:09 ", want},
		{"2024-03-05 14:07", want.Add(-9 * time.Second)},
		{"2024-03-05", day},
		{"2024/3/5 14:07:09", want},
		{"2024/3/5", day},
		{"2024.3.5", day},
		{"2024年3月5日", day},
		{"20240305", day},
		{"2024-03-05T06:07:09Z", want},
		{"2024-03-05T14:07:09", want},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, loc)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2024-13-01", "05/03/2024", "45356.5"} {
		if got, err := ParseTime(bad, loc); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", bad, got)
		}
	}
}
