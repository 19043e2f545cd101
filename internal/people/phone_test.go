package people

import "testing"

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"13800138000", "13800138000"},
		{"+86 138 0013 8000", "13800138000"},
		{"+8613800138000", "13800138000"},
		{"+86-138-0013-8000", "13800138000"},
		{"008613800138000", "13800138000"},
		{"0086 138 0013 8000", "13800138000"},
		{"8613800138000", "13800138000"},
		{"86 13800138000", "13800138000"},
		{"138-0013-8000", "13800138000"},
		{" 138 0013 8000 ", "13800138000"},
		{"１３８００１３８０００", "13800138000"},
		{"＋８６　１３８　００１３　８０００", "13800138000"},
		{"138－0013－8000", "13800138000"},
		{"\ufeff19912345678\u200b", "19912345678"},
		{"14712345678", "14712345678"},
	}
	for _, tt := range tests {
		got, err := NormalizePhone(tt.raw)
		if err != nil || got != tt.want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestNormalizePhoneInvalid(t *testing.T) {
	tests := []struct {
		raw, code string
	}{
		{"", CodeRequired},
		{"   ", CodeRequired},
		{"\u3000", CodeRequired},
		{"1380013800", CodePhoneFormat},      // 10 digits
		{"138001380001", CodePhoneFormat},    // 12 digits
		{"12800138000", CodePhoneFormat},     // second digit 2
		{"10800138000", CodePhoneFormat},     // second digit 0
		{"23800138000", CodePhoneFormat},     // not starting with 1
		{"010-12345678", CodePhoneFormat},    // landline
		{"+852 9123 4567", CodePhoneFormat},  // Hong Kong
		{"+86 12800138000", CodePhoneFormat}, // prefix removed, rest invalid
		{"86138001380", CodePhoneFormat},     // 86 not followed by 11 digits
		{"+8613800138000 ext 1", CodePhoneFormat},
		{"138.0013.8000", CodePhoneFormat},
		{"(138)00138000", CodePhoneFormat},
		{"1380013800O", CodePhoneFormat}, // letter O for zero
		{"138 0013 8000 / 139 0013 9000", CodePhoneFormat},
		{"+8686138001380", CodePhoneFormat},
		{"١٣٨٠٠١٣٨٠٠٠", CodePhoneFormat}, // Arabic-Indic digits are not normalised
	}
	for _, tt := range tests {
		got, err := NormalizePhone(tt.raw)
		if err == nil {
			t.Errorf("NormalizePhone(%q) = %q, want error %s", tt.raw, got, tt.code)
			continue
		}
		if got != "" {
			t.Errorf("NormalizePhone(%q) returned %q with an error", tt.raw, got)
		}
		wantField(t, err, FieldPhone, tt.code)
	}
}
