package people

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
)

func FuzzParseResidentID(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "11010519491231002x", "440524188001010014", "130503670401001",
		"１１０１０５１９４９１２３１００２Ｘ", " 110105194912310021 ", "110105-19491231002X",
		"83000019900101002", "110105200002290000", "", "X", "\xff\xfe\xfd",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r, err := ParseResidentID(raw, testToday)
		if err != nil {
			if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != FieldIDNumber {
				t.Fatalf("ParseResidentID(%q) error %v is not one Invalid id_number field", raw, err)
			}
			if r != (ResidentID{}) {
				t.Fatalf("ParseResidentID(%q) returned %+v with an error", raw, r)
			}
			return
		}
		n := r.Number
		if len(n) != 18 || n[17] != mod112(n[:17]) || CheckChar(n[:17]) != n[17] {
			t.Fatalf("ParseResidentID(%q) accepted %q with a wrong check character", raw, n)
		}
		if r.RegionCode != n[:6] || r.BirthDate.Format("20060102") != n[6:14] {
			t.Fatalf("ParseResidentID(%q) = %+v disagrees with its number", raw, r)
		}
		if r.BirthDate.Year() < 1900 || r.BirthDate.After(testToday) || r.BirthDate.Location() != time.UTC {
			t.Fatalf("ParseResidentID(%q) birth date %v out of range", raw, r.BirthDate)
		}
		if r.Sex != SexMale && r.Sex != SexFemale {
			t.Fatalf("ParseResidentID(%q) sex %q", raw, r.Sex)
		}
		again, err := ParseResidentID(n, testToday)
		if err != nil || again != r {
			t.Fatalf("ParseResidentID(%q) = %+v, %v; want itself %+v", n, again, err, r)
		}
		if num, rid, err := NormalizeIDNumber(IDResident, raw, testToday); err != nil || num != n || rid == nil || *rid != r {
			t.Fatalf("NormalizeIDNumber(resident, %q) = %q, %v, %v; want %q", raw, num, rid, err, n)
		}
	})
}

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"13800138000", "+86 138 0013 8000", "008613800138000", "8613800138000",
		"１３８００１３８０００", "12800138000", "+852 9123 4567", "", "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := NormalizePhone(raw)
		if err != nil {
			if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || len(e.Fields) != 1 || e.Fields[0].Field != FieldPhone {
				t.Fatalf("NormalizePhone(%q) error %v is not one Invalid phone field", raw, err)
			}
			return
		}
		if len(p) != 11 || !allDigits(p) || p[0] != '1' || p[1] < '3' {
			t.Fatalf("NormalizePhone(%q) = %q, not a mainland mobile number", raw, p)
		}
		if again, err := NormalizePhone(p); err != nil || again != p {
			t.Fatalf("NormalizePhone(%q) = %q, %v; want itself", p, again, err)
		}
		if m := MaskPhone(p); m != p[:3]+"****"+p[7:] {
			t.Fatalf("MaskPhone(%q) = %q", p, m)
		}
	})
}

func FuzzMask(f *testing.F) {
	for _, s := range []string{"", "张", "张三", "欧阳娜娜", "John Smith", "😀😀😀", "11010519491231002X", "13812345678", "\xff\xfe", "a\u0301b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in := []rune(s)
		for _, m := range []struct {
			name string
			fn   func(string) string
			// head and tail are how many leading and trailing runes may show through.
			head, tail int
		}{
			{"MaskName", MaskName, 2, 0},
			{"MaskIDNumber", MaskIDNumber, 2, 2},
			{"MaskPhone", MaskPhone, 3, 4},
		} {
			got := m.fn(s)
			if !utf8.ValidString(got) {
				t.Fatalf("%s(%q) = %q, not valid UTF-8", m.name, s, got)
			}
			out := []rune(got)
			if len(out) != len(in) {
				t.Fatalf("%s(%q) = %q: %d runes, want %d", m.name, s, got, len(out), len(in))
			}
			stars := 0
			for i, r := range out {
				switch {
				case r == '*':
					stars++
				case r != in[i]:
					t.Fatalf("%s(%q) = %q: rune %d is neither kept nor '*'", m.name, s, got, i)
				case i >= m.head && i < len(in)-m.tail:
					t.Fatalf("%s(%q) = %q: rune %d shows through", m.name, s, got, i)
				}
			}
			// Every non-empty value has at least one hidden position.
			if stars == 0 && len(in) > 0 {
				t.Fatalf("%s(%q) = %q hides nothing", m.name, s, got)
			}
		}
	})
}
