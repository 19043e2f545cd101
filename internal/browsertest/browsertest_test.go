package browsertest

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// site is a two-page stand-in for the application: a login form that accepts
// one password and a list that needs the cookie it sets.
func site() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>login</title><form method="post" action="/login">
<input name="username"><input type="password" name="password"><button>go</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("username") != "admin" || r.FormValue("password") != "right horse" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprint(w, `<!doctype html><form method="post" action="/login"><p>wrong password</p>
<input name="username"><input type="password" name="password"></form>`)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "s", Value: "ok", Path: "/"})
		http.Redirect(w, r, "/people", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /people", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("s"); err != nil || c.Value != "ok" {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		fmt.Fprintf(w, `<!doctype html><h1>%s</h1><table class="list"><tr><td>33**************12</td></tr><tr><td>11**************3X</td></tr></table>`,
			html.EscapeString(r.Header.Get("Accept-Language")))
	})
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><p>broken</p><script src="/broken.js"></script>`)
	})
	mux.HandleFunc("GET /broken.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		fmt.Fprint(w, `throw new Error("boom from the page");`)
	})
	return mux
}

func TestLoginAndRead(t *testing.T) {
	srv := httptest.NewServer(site())
	defer srv.Close()
	ctx := New(t)

	Login(t, ctx, srv.URL, "admin", "right horse")
	if got := Text(t, ctx, "h1"); !strings.HasPrefix(got, "zh-CN") {
		t.Errorf("Accept-Language = %q, want Chinese first", got)
	}
	cells := Texts(t, ctx, "table.list td")
	if want := []string{"33**************12", "11**************3X"}; !slices.Equal(cells, want) {
		t.Errorf("cells = %q, want %q", cells, want)
	}
	if got := Texts(t, ctx, "table.nothing td"); len(got) != 0 {
		t.Errorf("no match gave %q", got)
	}

	dir := t.TempDir()
	t.Setenv("SHAOBING_SCREENSHOT_DIR", dir)
	DocScreenshot(t, ctx, "people.png")
	b, err := os.ReadFile(filepath.Join(dir, "people.png"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is not a PNG (%d bytes)", len(b))
	}
}

// recorder is a testing.TB that keeps the failures instead of reporting them,
// to test that the harness itself fails tests.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	r.TB.SkipNow() // stop the subtest without failing it; the parent checks r.fatal
}

func TestFailures(t *testing.T) {
	srv := httptest.NewServer(site())
	defer srv.Close()

	t.Run("uncaught exception", func(t *testing.T) {
		rec := &recorder{TB: t}
		t.Run("page", func(t *testing.T) {
			rec.TB = t
			ctx := New(rec)
			Do(rec, ctx, chromedp.Navigate(srv.URL+"/broken"), chromedp.WaitVisible(chromedp.CSS("p")))
			// A wrong password must fail the test and say where the browser is.
			Login(rec, ctx, srv.URL, "admin", "wrong")
		})
		if !strings.Contains(rec.fatal, "still on the login page") || !strings.Contains(rec.fatal, "wrong password") {
			t.Errorf("bad login: fatal = %q", rec.fatal)
		}
		if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "boom from the page") {
			t.Errorf("errors = %q, want the page's exception", rec.errors)
		}
	})
}

func TestChromiumMissing(t *testing.T) {
	t.Setenv("SHAOBING_CHROMIUM", filepath.Join(t.TempDir(), "no-such-chromium"))
	for _, strict := range []string{"", "1"} {
		t.Setenv("SHAOBING_TEST_STRICT", strict)
		rec := &recorder{}
		t.Run("strict="+strict, func(t *testing.T) {
			rec.TB = t
			Chromium(rec)
			t.Error("Chromium returned without a browser")
		})
		if (rec.fatal != "") != (strict != "") {
			t.Errorf("strict=%q: fatal = %q", strict, rec.fatal)
		}
	}
}
