package web

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/apperr"
)

func TestParseForm(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		max        int64
		code       apperr.Code
	}{
		{"ok", "a=1&b=%E5%BC%A0", 0, ""},
		{"oversize", "a=" + strings.Repeat("x", 100), 50, apperr.TooLarge},
		{"malformed escape", "a=%zz", 0, apperr.BadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			err := ParseForm(httptest.NewRecorder(), r, tc.max)
			if got := apperr.CodeOf(err); (tc.code == "" && err != nil) || (tc.code != "" && got != tc.code) {
				t.Fatalf("err = %v (%s), want %q", err, got, tc.code)
			}
			if tc.code == "" && r.PostForm.Get("b") != "张" {
				t.Errorf("b = %q", r.PostForm.Get("b"))
			}
		})
	}
}
