package people

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
)

// testToday is the "today" all tests validate against.
var testToday = time.Date(2025, time.June, 15, 10, 30, 0, 0, time.FixedZone("CST", 8*3600))

// mod112 computes the ISO 7064 MOD 11-2 check character by the standard's
// recursive "pure system" method, independently of CheckChar's weight table.
func mod112(first17 string) byte {
	p := 0
	for _, c := range first17 {
		p = (p + int(c-'0')) * 2 % 11
	}
	c := (12 - p) % 11
	if c == 10 {
		return 'X'
	}
	return byte('0' + c)
}

// withCheck appends the correct check character to 17 digits.
func withCheck(first17 string) string { return first17 + string(mod112(first17)) }

// wantField asserts err is an Invalid apperr with one field error of the given field and code.
func wantField(t *testing.T, err error, field, code string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil {
		t.Fatalf("error = %v, want *apperr.Error with code %q", err, code)
	}
	if e.Code != apperr.Invalid || len(e.Fields) != 1 {
		t.Fatalf("error = %#v, want Invalid with one field", e)
	}
	f := e.Fields[0]
	if f.Field != field || f.Code != code {
		t.Fatalf("field error = %s/%s (%s), want %s/%s", f.Field, f.Code, f.Message, field, code)
	}
	if !slices.Contains(MessageKeys(), f.Code) {
		t.Errorf("code %q missing from MessageKeys", f.Code)
	}
	if f.Message == "" || strings.Contains(f.Message, "%!") {
		t.Errorf("bad message %q for code %q", f.Message, code)
	}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestPublicExamplesHaveCorrectCheckChars(t *testing.T) {
	// Widely published examples; the second is the GB 11643 standard's own.
	for _, n := range []string{"11010519491231002X", "440524188001010014"} {
		if got := CheckChar(n[:17]); got != n[17] {
			t.Errorf("CheckChar(%s) = %c, want %c", n[:17], got, n[17])
		}
		if got := mod112(n[:17]); got != n[17] {
			t.Errorf("mod112(%s) = %c, want %c", n[:17], got, n[17])
		}
	}
}

func TestCheckCharAgreesWithRecursiveMethod(t *testing.T) {
	// Walk many 17-digit prefixes so every check value, X included, is hit.
	seen := map[byte]bool{}
	for i := range 5000 {
		first17 := fmt.Sprintf("3303051985%07d", i*1999)
		got, want := CheckChar(first17), mod112(first17)
		if got != want {
			t.Fatalf("CheckChar(%s) = %c, want %c", first17, got, want)
		}
		seen[got] = true
	}
	if len(seen) != 11 {
		t.Errorf("only %d distinct check characters seen", len(seen))
	}
}

func TestCheckCharRejectsNonDigits(t *testing.T) {
	for _, s := range []string{"", "1101051949123100", "110105194912310021", "1101051949123100X", "１１０１０５１９４９１２３１００２"} {
		if got := CheckChar(s); got != 0 {
			t.Errorf("CheckChar(%q) = %q, want 0", s, got)
		}
	}
}

func TestParseResidentIDValid(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		number string
		birth  time.Time
		sex    Sex
	}{
		{"public example with X", "11010519491231002X", "11010519491231002X", date(1949, 12, 31), SexFemale},
		{"lower-case x", "11010519491231002x", "11010519491231002X", date(1949, 12, 31), SexFemale},
		{"male", withCheck("33030519850307123"), withCheck("33030519850307123"), date(1985, 3, 7), SexMale},
		{"surrounding spaces and tabs", " \t" + withCheck("33030519850307123") + "\n", withCheck("33030519850307123"), date(1985, 3, 7), SexMale},
		{"ideographic space and BOM", "\ufeff\u3000" + withCheck("33030519850307123") + "\u3000", withCheck("33030519850307123"), date(1985, 3, 7), SexMale},
		{"full-width digits", "１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X", date(1949, 12, 31), SexFemale},
		{"full-width lower-case x", "１１０１０５１９４９１２３１００２ｘ", "11010519491231002X", date(1949, 12, 31), SexFemale},
		{"mixed widths", "1101０5194912３1002X", "11010519491231002X", date(1949, 12, 31), SexFemale},
		{"29 February in a leap year", withCheck("23050620000229004"), withCheck("23050620000229004"), date(2000, 2, 29), SexFemale},
		{"born 1 January 1900", withCheck("11010519000101001"), withCheck("11010519000101001"), date(1900, 1, 1), SexMale},
		{"born today", withCheck("37130220250615002"), withCheck("37130220250615002"), date(2025, 6, 15), SexFemale},
		{"Taiwan residence permit", withCheck("83000019900101002"), withCheck("83000019900101002"), date(1990, 1, 1), SexFemale},
		{"Hong Kong residence permit", withCheck("81000020010615003"), withCheck("81000020010615003"), date(2001, 6, 15), SexMale},
		{"Xinjiang", withCheck("65010219700101001"), withCheck("65010219700101001"), date(1970, 1, 1), SexMale},
		{"legacy 15 digits", "130503670401001", "130503196704010016", date(1967, 4, 1), SexMale},
		{"legacy 15 full-width", "３３０３０５８５０３０７１２３", "330305198503071232", date(1985, 3, 7), SexMale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResidentID(tt.raw, testToday)
			if err != nil {
				t.Fatalf("ParseResidentID(%q) error: %v", tt.raw, err)
			}
			want := ResidentID{Number: tt.number, BirthDate: tt.birth, Sex: tt.sex, RegionCode: tt.number[:6]}
			if got != want {
				t.Errorf("ParseResidentID(%q) = %+v, want %+v", tt.raw, got, want)
			}
			if got.Number[17] != mod112(got.Number[:17]) {
				t.Errorf("accepted %s with a wrong check character", got.Number)
			}
		})
	}
}

func TestParseResidentIDInvalid(t *testing.T) {
	good := withCheck("33030519850307123")
	tests := []struct {
		name string
		raw  string
		code string
	}{
		{"empty", "", CodeRequired},
		{"only spaces", " \u3000\t", CodeRequired},
		{"inner space", good[:6] + " " + good[6:], CodeIDSeparator},
		{"inner hyphen", good[:6] + "-" + good[6:], CodeIDSeparator},
		{"inner full-width hyphen", good[:6] + "－" + good[6:], CodeIDSeparator},
		{"inner en dash", good[:6] + "–" + good[6:], CodeIDSeparator},
		{"too short", good[:17], CodeIDLength},
		{"too long", good + "1", CodeIDLength},
		{"16 digits", good[:16], CodeIDLength},
		{"letter inside", "1101051949123A002X", CodeIDChars},
		{"X not last", "11010519X912310021", CodeIDChars},
		{"Chinese character", "11010519491231002号", CodeIDChars},
		{"zero-width space inside", "1101051949\u200b1231002", CodeIDChars},
		{"wrong check char", "110105194912310021", CodeIDCheckChar},
		{"wrong check char, X expected", "110105194912310020", CodeIDCheckChar},
		{"transposed digits", "11010519491231020X", CodeIDCheckChar},
		{"month 13", withCheck("11010519491331002"), CodeIDBirthDate},
		{"day 0", withCheck("11010519491200002"), CodeIDBirthDate},
		{"31 April", withCheck("11010519490431002"), CodeIDBirthDate},
		{"29 February 2023", withCheck("11010520230229002"), CodeIDBirthDate},
		{"29 February 1900 (not a leap year)", withCheck("11010519000229002"), CodeIDBirthDate},
		{"born tomorrow", withCheck("11010520250616002"), CodeIDFutureBirth},
		{"born next year", "110105202601010019", CodeIDFutureBirth},
		{"born 1880 (GB 11643 example)", "440524188001010014", CodeIDEarlyBirth},
		{"born 31 December 1899", withCheck("11010518991231002"), CodeIDEarlyBirth},
		{"province 00", withCheck("00010519491231002"), CodeIDRegion},
		{"province 10", withCheck("10010519491231002"), CodeIDRegion},
		{"province 71 (no resident IDs)", withCheck("71010519491231002"), CodeIDRegion},
		{"province 91", withCheck("91010519491231002"), CodeIDRegion},
		{"residence permit code not 0000", withCheck("81010019491231002"), CodeIDRegion},
		{"710000 (Taiwan in GB/T 2260)", withCheck("71000019491231002"), CodeIDRegion},
		{"840000", withCheck("84000019491231002"), CodeIDRegion},
		{"legacy with letter", "13050367040100X", CodeIDLegacy15},
		{"legacy with bad date", "130503671301001", CodeIDLegacy15},
		{"legacy 29 February 1967", "130503670229001", CodeIDLegacy15},
		{"legacy 29 February 1900 (not a leap year)", "110105000229001", CodeIDLegacy15},
		{"legacy bad province", "710503670401001", CodeIDRegion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResidentID(tt.raw, testToday)
			if err == nil {
				t.Fatalf("ParseResidentID(%q) = %+v, want error %s", tt.raw, got, tt.code)
			}
			wantField(t, err, FieldIDNumber, tt.code)
			if got != (ResidentID{}) {
				t.Errorf("ParseResidentID(%q) returned %+v with an error", tt.raw, got)
			}
		})
	}
}

func TestParseResidentIDErrorArgs(t *testing.T) {
	tests := []struct {
		raw  string
		args []any
	}{
		{"1101051949123A002X", []any{14, `"A"`}},
		{"1101051949123", []any{13}},
		{withCheck("11010520230229002"), []any{"20230229"}},
		{withCheck("11010520250616002"), []any{"2025-06-16"}},
		{withCheck("71010519491231002"), []any{"710105"}},
	}
	for _, tt := range tests {
		_, err := ParseResidentID(tt.raw, testToday)
		e := apperr.As(err)
		if e == nil {
			t.Fatalf("ParseResidentID(%q): no apperr: %v", tt.raw, err)
		}
		if got := e.Fields[0].Args; !slices.Equal(got, tt.args) {
			t.Errorf("ParseResidentID(%q) args = %#v, want %#v", tt.raw, got, tt.args)
		}
	}
}

func TestParseResidentIDTodayIsACalendarDate(t *testing.T) {
	// 00:30 on 16 June in Beijing is still 15 June in UTC: the caller's
	// calendar date counts, so a child born on 16 June is not in the future.
	today := time.Date(2025, time.June, 16, 0, 30, 0, 0, time.FixedZone("CST", 8*3600))
	if _, err := ParseResidentID(withCheck("11010520250616002"), today); err != nil {
		t.Errorf("born on today's date: %v", err)
	}
}

func TestNormalizeIDNumber(t *testing.T) {
	tests := []struct {
		name string
		t    IDType
		raw  string
		want string
	}{
		{"resident", IDResident, "11010519491231002x", "11010519491231002X"},
		{"passport", IDPassport, "e12345678", "E12345678"},
		{"passport full-width", IDPassport, "Ｅ１２３４５６７８", "E12345678"},
		{"foreign passport", IDPassport, " 123456789AB ", "123456789AB"},
		{"passport 5 chars", IDPassport, "AB123", "AB123"},
		{"passport 20 chars", IDPassport, strings.Repeat("A1", 10), strings.Repeat("A1", 10)},
		{"Hong Kong permit", IDHKMacauPermit, "H12345678", "H12345678"},
		{"Macao permit lower case", IDHKMacauPermit, "m87654321", "M87654321"},
		{"old 10-digit permit drops issue count", IDHKMacauPermit, "H1234567801", "H12345678"},
		{"Taiwan permit", IDTaiwanPermit, "12345678", "12345678"},
		{"old Taiwan permit drops issue count", IDTaiwanPermit, "1234567803", "12345678"},
		{"Taiwan permit full-width", IDTaiwanPermit, "１２３４５６７８", "12345678"},
		{"other", IDOther, "abc12345", "ABC12345"},
		{"other 30 chars", IDOther, strings.Repeat("9", 30), strings.Repeat("9", 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rid, err := NormalizeIDNumber(tt.t, tt.raw, testToday)
			if err != nil {
				t.Fatalf("NormalizeIDNumber(%s, %q) error: %v", tt.t, tt.raw, err)
			}
			if got != tt.want {
				t.Errorf("NormalizeIDNumber(%s, %q) = %q, want %q", tt.t, tt.raw, got, tt.want)
			}
			if (rid != nil) != (tt.t == IDResident) {
				t.Errorf("ResidentID = %v for type %s", rid, tt.t)
			}
			if rid != nil && rid.Number != got {
				t.Errorf("ResidentID.Number = %q, want %q", rid.Number, got)
			}
		})
	}
}

func TestNormalizeIDNumberInvalid(t *testing.T) {
	tests := []struct {
		name  string
		t     IDType
		raw   string
		field string
		code  string
	}{
		{"resident bad check", IDResident, "110105194912310021", FieldIDNumber, CodeIDCheckChar},
		{"passport empty", IDPassport, "  ", FieldIDNumber, CodeRequired},
		{"passport too short", IDPassport, "E123", FieldIDNumber, CodeIDLengthRange},
		{"passport too long", IDPassport, strings.Repeat("A", 21), FieldIDNumber, CodeIDLengthRange},
		{"passport with space", IDPassport, "E123 45678", FieldIDNumber, CodeIDSeparator},
		{"passport with slash", IDPassport, "E123/45678", FieldIDNumber, CodeIDChars},
		{"passport with Chinese", IDPassport, "护照E12345678", FieldIDNumber, CodeIDChars},
		{"permit wrong letter", IDHKMacauPermit, "C12345678", FieldIDNumber, CodeIDHKMacauFormat},
		{"permit 7 digits", IDHKMacauPermit, "H1234567", FieldIDNumber, CodeIDHKMacauFormat},
		{"permit 9 digits", IDHKMacauPermit, "H123456789", FieldIDNumber, CodeIDHKMacauFormat},
		{"permit letter in digits", IDHKMacauPermit, "H1234A678", FieldIDNumber, CodeIDHKMacauFormat},
		{"permit parentheses", IDHKMacauPermit, "H12345678(01)", FieldIDNumber, CodeIDChars},
		{"Taiwan 9 digits", IDTaiwanPermit, "123456789", FieldIDNumber, CodeIDTaiwanFormat},
		{"Taiwan with letter", IDTaiwanPermit, "T1234567", FieldIDNumber, CodeIDTaiwanFormat},
		{"Taiwan old with authority code", IDTaiwanPermit, "1234567801(B)", FieldIDNumber, CodeIDChars},
		{"other too long", IDOther, strings.Repeat("9", 31), FieldIDNumber, CodeIDLengthRange},
		{"other empty", IDOther, "", FieldIDNumber, CodeRequired},
		{"unknown type", IDType("driving_licence"), "12345678", FieldIDType, CodeIDTypeUnknown},
		{"empty type is not defaulted here", IDType(""), "12345678", FieldIDType, CodeIDTypeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rid, err := NormalizeIDNumber(tt.t, tt.raw, testToday)
			if err == nil {
				t.Fatalf("NormalizeIDNumber(%s, %q) = %q, want error %s", tt.t, tt.raw, got, tt.code)
			}
			if got != "" || rid != nil {
				t.Errorf("returned %q, %v with an error", got, rid)
			}
			wantField(t, err, tt.field, tt.code)
		})
	}
}

func TestParseIDType(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want IDType
	}{
		{"", IDResident},
		{"  ", IDResident},
		{"resident_id", IDResident},
		{"passport", IDPassport},
		{"hk_macau_permit", IDHKMacauPermit},
		{"taiwan_permit", IDTaiwanPermit},
		{"other", IDOther},
		{" passport ", IDPassport},
	} {
		got, err := ParseIDType(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseIDType(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"Passport", "身份证", "resident", "id_card"} {
		got, err := ParseIDType(in)
		if err == nil {
			t.Errorf("ParseIDType(%q) = %q, want error", in, got)
			continue
		}
		wantField(t, err, FieldIDType, CodeIDTypeUnknown)
	}
}

func TestIDTypeStringsAreTheContract(t *testing.T) {
	got := make([]string, 0, 5)
	for _, t := range IDTypes() {
		got = append(got, string(t))
	}
	want := []string{"resident_id", "passport", "hk_macau_permit", "taiwan_permit", "other"}
	if !slices.Equal(got, want) {
		t.Errorf("IDTypes() = %v, want %v", got, want)
	}
}

func TestAgeOn(t *testing.T) {
	tests := []struct {
		birth, day time.Time
		want       int
	}{
		{date(1949, 12, 31), date(2025, 6, 15), 75},
		{date(1949, 12, 31), date(2025, 12, 30), 75},
		{date(1949, 12, 31), date(2025, 12, 31), 76},
		{date(2000, 2, 29), date(2023, 2, 28), 22},
		{date(2000, 2, 29), date(2023, 3, 1), 23},
		{date(2000, 2, 29), date(2024, 2, 29), 24},
		{date(2025, 6, 15), date(2025, 6, 15), 0},
		{date(2025, 6, 15), date(2025, 6, 14), -1},
		{date(2025, 6, 15), date(2024, 7, 1), -1},
		// The day's own calendar date counts: 23:00 UTC on 14 June is 15 June in Beijing.
		{date(1965, 6, 15), time.Date(2025, 6, 14, 23, 0, 0, 0, time.UTC).In(time.FixedZone("CST", 8*3600)), 60},
	}
	for _, tt := range tests {
		if got := AgeOn(tt.birth, tt.day); got != tt.want {
			t.Errorf("AgeOn(%s, %s) = %d, want %d", tt.birth.Format(time.DateOnly), tt.day, got, tt.want)
		}
	}
}

// verbs matches fmt verbs, including explicit argument indexes.
var verbs = regexp.MustCompile(`%(\[\d+\])?[a-zA-Z%]`)

func TestMessagesCoverEveryCode(t *testing.T) {
	// Chinese lives only in messages.json (required is the shell's own key).
	b, err := fs.ReadFile(Messages.FS, Messages.Name)
	if err != nil {
		t.Fatal(err)
	}
	var catalog map[string]map[string]string
	if err := json.Unmarshal(b, &catalog); err != nil {
		t.Fatal(err)
	}
	keys := MessageKeys()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		if k == CodeRequired {
			continue
		}
		zh, en := catalog["error."+k]["zh-CN"], EnMessages[k]
		if zh == "" || en == "" {
			t.Errorf("key %q: zh %q, en %q", k, zh, en)
			continue
		}
		// Translators must use the same arguments as the English text.
		if z, e := len(verbs.FindAllString(zh, -1)), len(verbs.FindAllString(en, -1)); z != e {
			t.Errorf("key %q: zh has %d verbs, en has %d", k, z, e)
		}
		if !strings.ContainsFunc(zh, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff }) {
			t.Errorf("key %q: zh message %q has no Chinese", k, zh)
		}
	}
	for k := range EnMessages {
		if !seen[k] {
			t.Errorf("EnMessages has %q, which MessageKeys lacks", k)
		}
	}
}
