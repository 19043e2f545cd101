package web

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/web/assets"
)

type sample struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Inner struct {
		Flag bool `json:"flag"`
	} `json:"inner"`
}

func TestDecodeJSON(t *testing.T) {
	for _, tc := range []struct {
		name, body, ctype string
		max               int64
		code              apperr.Code
		field             string
	}{
		{"ok", `{"name":"a","count":2}`, "application/json", 0, "", ""},
		{"ok problem+json type", `{"name":"a"}`, "application/merge-patch+json", 0, "", ""},
		{"empty", ``, "application/json", 0, apperr.BadRequest, ""},
		{"syntax", `{"name":`, "application/json", 0, apperr.BadRequest, ""},
		{"syntax garbage", `{"name" "a"}`, "application/json", 0, apperr.BadRequest, ""},
		{"unknown field", `{"name":"a","evil":1}`, "application/json", 0, apperr.BadRequest, "evil"},
		{"wrong type", `{"count":"x"}`, "application/json", 0, apperr.Invalid, "count"},
		{"wrong nested type", `{"inner":{"flag":"yes"}}`, "application/json", 0, apperr.Invalid, "inner.flag"},
		{"two values", `{"name":"a"}{"name":"b"}`, "application/json", 0, apperr.BadRequest, ""},
		{"too large", `{"name":"` + strings.Repeat("x", 200) + `"}`, "application/json", 64, apperr.TooLarge, ""},
		{"form content type", `name=a`, "application/x-www-form-urlencoded", 0, apperr.BadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			r.Header.Set("Content-Type", tc.ctype)
			var dst sample
			err := DecodeJSON(httptest.NewRecorder(), r, &dst, tc.max)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if got := apperr.CodeOf(err); got != tc.code {
				t.Fatalf("code = %s (%v), want %s", got, err, tc.code)
			}
			if tc.field != "" {
				e := apperr.As(err)
				if len(e.Fields) != 1 || e.Fields[0].Field != tc.field {
					t.Fatalf("fields = %+v, want %s", e.Fields, tc.field)
				}
			}
		})
	}
}

func testShell(t *testing.T) *Shell {
	t.Helper()
	cat := locale.NewCatalog()
	if err := cat.LoadAll(Messages); err != nil {
		t.Fatal(err)
	}
	if err := cat.Add("test", map[string]map[locale.Lang]string{
		"error.name.short": {locale.ZhCN: "姓名太短（至少 %v 个字）", locale.En: "name too short (at least %v)"},
	}); err != nil {
		t.Fatal(err)
	}
	a, err := assets.New()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cat, a, slog.New(slog.NewTextHandler(io.Discard, nil)), time.UTC, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProblemDocument(t *testing.T) {
	s := testShell(t)
	for _, tc := range []struct {
		name   string
		err    error
		lang   string
		status int
		field  string
		detail string
	}{
		{"field zh", apperr.Field("name", "name.short", "name too short (at least %v)", 2), "", 422, "name", "姓名太短（至少 2 个字）"},
		{"field en", apperr.Field("name", "name.short", "name too short (at least %v)", 2), "en", 422, "name", "name too short (at least 2)"},
		{"untranslated falls back", apperr.Field("x", "x.odd", "odd x"), "en", 422, "x", "odd x"},
		{"not found", apperr.NotFoundf("person"), "", 404, "", ""},
		{"internal hides cause", errors.New("pq: password leaked in error"), "", 500, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api/v1/x", nil)
			if tc.lang != "" {
				r.Header.Set("Accept-Language", tc.lang)
			}
			w := httptest.NewRecorder()
			s.Problem(w, r, tc.err)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d", w.Code, tc.status)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Errorf("content type %q", ct)
			}
			if strings.Contains(w.Body.String(), "leaked") {
				t.Errorf("internal cause leaked: %s", w.Body)
			}
			var doc ProblemDoc
			if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Status != tc.status || doc.Title == "" || doc.Type == "" {
				t.Errorf("doc = %+v", doc)
			}
			if tc.field != "" && (len(doc.Errors) != 1 || doc.Errors[0].Field != tc.field || doc.Errors[0].Detail != tc.detail) {
				t.Errorf("errors = %+v, want %s: %s", doc.Errors, tc.field, tc.detail)
			}
		})
	}
}

func TestCursorRoundTripAndTampering(t *testing.T) {
	type pos struct {
		ID int64 `json:"id"`
	}
	c := EncodeCursor(pos{ID: 42})
	var got pos
	if err := DecodeCursor(c, &got); err != nil || got.ID != 42 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{"!!!", "e30x", EncodeCursor(map[string]any{"other": 1}), "eyJpZCI6InN0cmluZyJ9"} {
		if err := DecodeCursor(bad, &got); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("cursor %q: err = %v", bad, err)
		}
	}
}

func TestPathIDRejectsMalformed(t *testing.T) {
	mux := http.NewServeMux()
	var got []string
	mux.HandleFunc("GET /x/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, err := PathID(r, "id")
		got = append(got, string(apperr.CodeOf(err)))
	})
	for _, p := range []string{"/x/abc", "/x/-1", "/x/0", "/x/99999999999999999999", "/x/1%27%20OR%201=1"} {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	for i, c := range got {
		if c != string(apperr.NotFound) {
			t.Errorf("case %d: %s", i, c)
		}
	}
	if len(got) != 5 {
		t.Errorf("ran %d cases", len(got))
	}
}

func TestErrorPageRenders(t *testing.T) {
	s := testShell(t)
	w := httptest.NewRecorder()
	s.Error(w, httptest.NewRequest("GET", "/people/9", nil), apperr.NotFoundf("person"))
	if w.Code != 404 || !strings.Contains(w.Body.String(), "未找到") || !strings.Contains(w.Body.String(), "/static/vendor/htmx-2.0.11.") {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	s.Error(w, httptest.NewRequest("GET", "/people?q=1", nil), apperr.New(apperr.Unauthorized, "sign in"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Fpeople%3Fq%3D1" {
		t.Fatalf("unauthorized: %d %s", w.Code, w.Header().Get("Location"))
	}
}

func TestNextPage(t *testing.T) {
	pos := func(n int) any { return n }
	if items, next := NextPage([]int{5, 4, 3}, 3, pos); len(items) != 3 || next != "" {
		t.Errorf("last page: %v %q", items, next)
	}
	items, next := NextPage([]int{5, 4, 3, 2}, 3, pos)
	var after int
	if err := DecodeCursor(next, &after); err != nil || len(items) != 3 || after != 3 {
		t.Errorf("more to come: %v, cursor %q → %d (%v)", items, next, after, err)
	}
}
