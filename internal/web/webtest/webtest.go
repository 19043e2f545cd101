// Package webtest serves a module's handlers in tests the way the real server
// does (the shell, its pages and problem documents), with the caller's
// principal chosen per request, so each module's HTTP tests need no copy of
// the set-up.
package webtest

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/assets"
)

// UserHeader names the principal a test request acts as.
const UserHeader = "X-Test-User"

// UserAgent is the User-Agent every test request sends, so a test can find
// it where it is recorded (the audit log).
const UserAgent = "shaobing-webtest"

// sharedAssets hashes and gzips the static files once per test binary: it is
// the slow part of a shell (ECharts), and assets never change.
var sharedAssets = sync.OnceValues(assets.New)

// Shell returns a shell with the web shell's own messages plus msgs and the
// given templates, showing times in loc and logging to the test.
func Shell(t testing.TB, loc *time.Location, msgs []locale.Source, templates ...web.Templates) *web.Shell {
	t.Helper()
	cat := locale.NewCatalog()
	if err := cat.LoadAll(append([]locale.Source{web.Messages}, msgs...)...); err != nil {
		t.Fatal(err)
	}
	a, err := sharedAssets()
	if err != nil {
		t.Fatal(err)
	}
	shell, err := web.New(cat, a, slog.New(slog.NewTextHandler(testLog{t}, nil)), loc, nil, templates...)
	if err != nil {
		t.Fatal(err)
	}
	return shell
}

// Serve serves h on a test server closed with the test. Each request acts as
// users[its X-Test-User header]; a request without a known user is anonymous.
func Serve(t testing.TB, h http.Handler, users map[string]*scope.Principal) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := users[r.Header.Get(UserHeader)]; p != nil {
			r = r.WithContext(scope.WithPrincipal(r.Context(), p))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Do sends a request as user ("" for anonymous) without following
// redirects, and returns the status, body and headers.
func Do(t testing.TB, srv *httptest.Server, user, method, path, contentType string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", UserAgent)
	if user != "" {
		req.Header.Set(UserHeader, user)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

// testLog sends the shell's log lines (internal errors) to the test's log.
type testLog struct{ t testing.TB }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
