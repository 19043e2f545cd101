package people

import (
	"strings"
	"unicode"
)

// NormalizePhone returns raw as an 11-digit mainland mobile number: 1, then
// 3–9, then 9 digits. Full-width digits become ASCII; spaces and hyphens are
// removed (phone numbers are customarily grouped, 138 0013 8000, unlike ID
// numbers); a country prefix +86, 0086 or 86 is removed when 11 digits follow
// it. An empty raw is a "required" error: whether a phone may be missing
// (elderly people registered without one) is the caller's decision.
func NormalizePhone(raw string) (string, error) {
	s := trimEdges(halfWidth(raw))
	if s == "" {
		return "", invalid(FieldPhone, CodeRequired)
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) {
			return -1
		}
		return r
	}, s)
	for _, prefix := range []string{"+86", "0086", "86"} {
		if rest, ok := strings.CutPrefix(s, prefix); ok && len(rest) == 11 {
			s = rest
			break
		}
	}
	if len(s) != 11 || !allDigits(s) || s[0] != '1' || s[1] < '3' {
		return "", invalid(FieldPhone, CodePhoneFormat)
	}
	return s, nil
}
