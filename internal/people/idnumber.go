// Package people holds the person registry: identity documents, phone numbers,
// their validation and normalisation, and the masking used for display.
package people

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
)

// IDType is the kind of identity document a person is registered with.
// Its string values are stored and sent over the API: they are a contract.
type IDType string

// The identity document types.
const (
	IDResident      IDType = "resident_id"     // 居民身份证
	IDPassport      IDType = "passport"        // 护照
	IDHKMacauPermit IDType = "hk_macau_permit" // 港澳居民来往内地通行证
	IDTaiwanPermit  IDType = "taiwan_permit"   // 台湾居民来往大陆通行证
	IDOther         IDType = "other"           // any other document
)

// IDTypes lists every ID type in display order.
func IDTypes() []IDType {
	return []IDType{IDResident, IDPassport, IDHKMacauPermit, IDTaiwanPermit, IDOther}
}

// ParseIDType returns the ID type named by s; an empty s means resident ID,
// by far the most common document.
func ParseIDType(s string) (IDType, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return IDResident, nil
	}
	for _, t := range IDTypes() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", invalid(FieldIDType, CodeIDTypeUnknown, strconv.QuoteToGraphic(s))
}

// Sex is a person's sex as recorded on a resident ID.
type Sex string

// The sexes; SexUnknown when no resident ID says.
const (
	SexUnknown Sex = ""
	SexMale    Sex = "male"
	SexFemale  Sex = "female"
)

// ResidentID is a validated resident ID number (居民身份证号, GB 11643) and what it encodes.
type ResidentID struct {
	Number     string    // 18 characters, upper-case X as check character
	BirthDate  time.Time // date at UTC midnight
	Sex        Sex
	RegionCode string // first 6 digits: the issuing county's GB/T 2260 code
}

// NormalizeIDNumber validates raw as a number of document type t and returns
// its normal form; for a resident ID it also returns what the number encodes.
//
// Rules for documents other than the resident ID (upper-cased, full-width
// characters made half-width, edges trimmed, only A–Z and 0–9):
//   - passport: 5–20 characters (Chinese and foreign passports vary too much
//     for a tighter rule);
//   - hk_macau_permit: H (Hong Kong) or M (Macao) and 8 digits; the old
//     booklet's H/M and 10 digits is accepted and cut to H/M and 8 digits,
//     because its last 2 digits are the issue count, not part of the person's
//     lifelong number. (C… numbers are the mainland residents' 往来港澳通行证,
//     whose holders register with their resident ID.)
//   - taiwan_permit: the 8-digit lifelong number (台胞终身号); the old 10-digit
//     form is cut to its first 8 for the same reason;
//   - other: 5–30 characters.
//
// Cutting the issue count keeps one person one record: the registry finds a
// person by (ID type, ID number).
func NormalizeIDNumber(t IDType, raw string, today time.Time) (number string, rid *ResidentID, err error) {
	switch t {
	case IDResident:
		r, err := ParseResidentID(raw, today)
		if err != nil {
			return "", nil, err
		}
		return r.Number, &r, nil
	case IDPassport:
		s, err := cleanAlnum(raw, 5, 20)
		return s, nil, err
	case IDOther:
		s, err := cleanAlnum(raw, 5, 30)
		return s, nil, err
	case IDHKMacauPermit:
		s, err := cleanAlnum(raw, 0, 0)
		if err != nil {
			return "", nil, err
		}
		if (len(s) != 9 && len(s) != 11) || (s[0] != 'H' && s[0] != 'M') || !allDigits(s[1:]) {
			return "", nil, invalid(FieldIDNumber, CodeIDHKMacauFormat)
		}
		return s[:9], nil, nil
	case IDTaiwanPermit:
		s, err := cleanAlnum(raw, 0, 0)
		if err != nil {
			return "", nil, err
		}
		if (len(s) != 8 && len(s) != 10) || !allDigits(s) {
			return "", nil, invalid(FieldIDNumber, CodeIDTaiwanFormat)
		}
		return s[:8], nil, nil
	default:
		return "", nil, invalid(FieldIDType, CodeIDTypeUnknown, strconv.QuoteToGraphic(string(t)))
	}
}

// ParseResidentID validates a resident ID number and decodes it. today bounds
// the birth date; only its calendar date (in its own location) counts.
//
// Full-width characters and a lower-case x are normalised and the edges
// trimmed; spaces or hyphens inside the number are rejected rather than
// removed, because a split number is as likely to be two numbers as one.
// A 15-digit number from the first-generation cards is converted to 18
// digits the official way: "19" goes before its 2-digit year (all were issued
// to people born in the 1900s) and the check character is computed.
func ParseResidentID(raw string, today time.Time) (ResidentID, error) {
	s, err := cleanID(raw)
	if err != nil {
		return ResidentID{}, err
	}
	switch n := utf8.RuneCountInString(s); n {
	case 18:
	case 15:
		if s, err = convert15(s); err != nil {
			return ResidentID{}, err
		}
	default:
		return ResidentID{}, invalid(FieldIDNumber, CodeIDLength, n)
	}
	for i, r := range []rune(s) {
		if r >= '0' && r <= '9' || r == 'X' && i == 17 {
			continue
		}
		return ResidentID{}, invalid(FieldIDNumber, CodeIDChars, i+1, strconv.QuoteToGraphic(string(r)))
	}
	// Now s is 18 ASCII characters.
	if !validRegion(s[:6]) {
		return ResidentID{}, invalid(FieldIDNumber, CodeIDRegion, s[:6])
	}
	birth, ok := parseDate(s[6:14])
	if !ok {
		return ResidentID{}, invalid(FieldIDNumber, CodeIDBirthDate, s[6:14])
	}
	if birth.Year() < 1900 {
		return ResidentID{}, invalid(FieldIDNumber, CodeIDEarlyBirth, birth.Format(time.DateOnly))
	}
	ty, tm, td := today.Date()
	if birth.After(time.Date(ty, tm, td, 0, 0, 0, 0, time.UTC)) {
		return ResidentID{}, invalid(FieldIDNumber, CodeIDFutureBirth, birth.Format(time.DateOnly))
	}
	// The check character comes last: when a digit of the date or region is
	// mistyped, naming that part helps the typist more. The message never
	// names the expected character, which would invite "fixing" the last
	// character of a number that is wrong elsewhere.
	if CheckChar(s[:17]) != s[17] {
		return ResidentID{}, invalid(FieldIDNumber, CodeIDCheckChar)
	}
	sex := SexFemale
	if (s[16]-'0')%2 == 1 {
		sex = SexMale
	}
	return ResidentID{Number: s, BirthDate: birth, Sex: sex, RegionCode: s[:6]}, nil
}

// CheckChar returns the ISO 7064 MOD 11-2 check character ('0'–'9' or 'X')
// for the first 17 digits of a resident ID number, or 0 when first17 is not
// 17 ASCII digits.
func CheckChar(first17 string) byte {
	if len(first17) != 17 || !allDigits(first17) {
		return 0
	}
	// Weight of position i is 2^(17-i) mod 11.
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := range 17 {
		sum += int(first17[i]-'0') * weights[i]
	}
	return "10X98765432"[sum%11]
}

// AgeOn returns the age in whole years on day of a person born on birth,
// comparing calendar dates each in its own location. Someone born on 29
// February turns a year older on 1 March in common years. The result is
// negative when day is before birth.
func AgeOn(birth, day time.Time) int {
	by, bm, bd := birth.Date()
	y, m, d := day.Date()
	age := y - by
	if m < bm || m == bm && d < bd {
		age--
	}
	return age
}

// convert15 turns a 15-digit first-generation number into its 18-digit form.
func convert15(s string) (string, error) {
	if !allDigits(s) {
		return "", invalid(FieldIDNumber, CodeIDLegacy15)
	}
	if _, ok := parseDate("19" + s[6:12]); !ok {
		return "", invalid(FieldIDNumber, CodeIDLegacy15)
	}
	first17 := s[:6] + "19" + s[6:]
	return first17 + string(CheckChar(first17)), nil
}

// validRegion reports whether the first 6 digits of a resident ID start with a
// province-level code that resident IDs are issued under: the 31 mainland
// provinces of GB/T 2260, and 810000, 820000 and 830000, which the residence
// permits for Hong Kong, Macao and Taiwan residents (港澳台居民居住证, issued
// since 2018 with GB 11643 numbers) use. 71 (Taiwan) is in GB/T 2260 but no
// resident ID carries it. Full 6-digit codes are not checked: counties are
// merged and renamed while their old numbers stay valid for life.
func validRegion(code6 string) bool {
	p, err := strconv.Atoi(code6[:2])
	if err != nil {
		return false
	}
	switch {
	case 11 <= p && p <= 15, 21 <= p && p <= 23, 31 <= p && p <= 37,
		41 <= p && p <= 46, 50 <= p && p <= 54, 61 <= p && p <= 65:
		return true
	case 81 <= p && p <= 83:
		return code6[2:] == "0000"
	}
	return false
}

// parseDate parses 8 ASCII digits YYYYMMDD as a real calendar date at UTC midnight.
func parseDate(s string) (time.Time, bool) {
	if len(s) != 8 || !allDigits(s) {
		return time.Time{}, false
	}
	y, _ := strconv.Atoi(s[:4])
	m, _ := strconv.Atoi(s[4:6])
	d, _ := strconv.Atoi(s[6:])
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	// time.Date normalises 31 April to 1 May; a real date survives unchanged.
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

// cleanID applies the normalisation shared by all document numbers: full-width
// characters to half-width, edges trimmed, ASCII letters upper-cased. An empty
// result, or a space or dash inside, is an error.
func cleanID(raw string) (string, error) {
	s := trimEdges(halfWidth(raw))
	if s == "" {
		return "", invalid(FieldIDNumber, CodeRequired)
	}
	if strings.ContainsFunc(s, isSeparator) {
		return "", invalid(FieldIDNumber, CodeIDSeparator)
	}
	// ASCII only: strings.ToUpper can change the rune count (ß → SS) and so
	// the positions an error message reports.
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s), nil
}

// cleanAlnum is cleanID plus a check that only A–Z and 0–9 remain, and, when
// max > 0, that the length is within [min, max].
func cleanAlnum(raw string, min, max int) (string, error) {
	s, err := cleanID(raw)
	if err != nil {
		return "", err
	}
	for i, r := range []rune(s) {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'Z') {
			return "", invalid(FieldIDNumber, CodeIDChars, i+1, strconv.QuoteToGraphic(string(r)))
		}
	}
	if max > 0 && (len(s) < min || len(s) > max) {
		return "", invalid(FieldIDNumber, CodeIDLengthRange, min, max, len(s))
	}
	return s, nil
}

// halfWidth maps the full-width ASCII forms (U+FF01–FF5E, as typed by Chinese
// input methods) and the ideographic space to their ASCII counterparts.
func halfWidth(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '\uFF01' && r <= '\uFF5E':
			return r - 0xFEE0
		case r == '\u3000':
			return ' '
		}
		return r
	}, s)
}

// trimEdges trims white space and the invisible zero-width space and byte
// order mark that copying from spreadsheets and chat apps leaves behind.
func trimEdges(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || r == '\u200B' || r == '\uFEFF'
	})
}

// isSeparator reports whether r is white space or a dash.
func isSeparator(r rune) bool {
	return unicode.IsSpace(r) || unicode.Is(unicode.Pd, r)
}

// allDigits reports whether s is non-empty and all ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// The input fields this package's errors name.
const (
	FieldIDNumber = "id_number"
	FieldPhone    = "phone"
	FieldIDType   = "id_type"
)

// The error codes this package returns in apperr.FieldError.Code; they are
// translation keys and a contract with API clients.
const (
	CodeRequired        = "required"
	CodeIDLength        = "id_number.length"
	CodeIDLengthRange   = "id_number.length_range"
	CodeIDSeparator     = "id_number.separator"
	CodeIDChars         = "id_number.chars"
	CodeIDCheckChar     = "id_number.check_char"
	CodeIDBirthDate     = "id_number.birth_date"
	CodeIDEarlyBirth    = "id_number.early_birth"
	CodeIDFutureBirth   = "id_number.future_birth"
	CodeIDLegacy15      = "id_number.legacy15"
	CodeIDRegion        = "id_number.region"
	CodeIDHKMacauFormat = "id_number.hk_macau_format"
	CodeIDTaiwanFormat  = "id_number.taiwan_format"
	CodePhoneFormat     = "phone.format"
	CodeIDTypeUnknown   = "id_type.unknown"
)

// MessageKeys lists every error code this package returns, so the i18n layer
// can check that each has a translation.
func MessageKeys() []string {
	return []string{
		CodeRequired, CodeIDLength, CodeIDLengthRange, CodeIDSeparator, CodeIDChars,
		CodeIDCheckChar, CodeIDBirthDate, CodeIDEarlyBirth, CodeIDFutureBirth,
		CodeIDLegacy15, CodeIDRegion, CodeIDHKMacauFormat, CodeIDTaiwanFormat,
		CodePhoneFormat, CodeIDTypeUnknown,
	}
}

// EnMessages holds the English message for each error code; it is also the
// message the errors carry.
var EnMessages = map[string]string{
	CodeRequired:        "this field is required",
	CodeIDLength:        "a resident ID number has 18 characters (15 digits on old cards); this one has %v",
	CodeIDLengthRange:   "the number must have %v to %v characters; this one has %v",
	CodeIDSeparator:     "remove the spaces or hyphens inside the number",
	CodeIDChars:         "character %v of the number, %v, is not allowed",
	CodeIDCheckChar:     "the check character of the ID number is wrong; please check every digit",
	CodeIDBirthDate:     "characters 7 to 14 of the ID number, %v, are not a real date of birth",
	CodeIDEarlyBirth:    "the date of birth in the ID number, %v, is before 1900",
	CodeIDFutureBirth:   "the date of birth in the ID number, %v, is in the future",
	CodeIDLegacy15:      "this 15-digit old-style ID number is malformed; please enter the 18-digit number",
	CodeIDRegion:        "the first 6 digits of the ID number, %v, are not a valid region code",
	CodeIDHKMacauFormat: "a Hong Kong/Macao residents' permit number is H or M and 8 digits (10 digits on old permits)",
	CodeIDTaiwanFormat:  "a Taiwan residents' permit number has 8 digits (10 on old permits)",
	CodePhoneFormat:     "enter an 11-digit mainland mobile number starting with 13 to 19",
	CodeIDTypeUnknown:   "unknown ID type %v",
}

// invalid returns the Invalid error for one field with code's English message.
func invalid(field, code string, args ...any) error {
	return apperr.Field(field, code, EnMessages[code], args...)
}
