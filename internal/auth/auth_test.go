package auth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/assets"
)

// Regions of the tests: a district and two of its townships.
const (
	district  = "330305"
	townshipA = "330305001"
	townshipB = "330305002"
	password  = "correct horse battery"
)

// fastHash keeps argon2 cheap in tests; the format and code path are the same.
var fastHash = HashParams{Memory: 64, Time: 1, Threads: 1}

// Loaded once: the tree and the compressed assets take seconds under -race.
var (
	loadTree   = sync.OnceValues(regions.LoadTree)
	loadAssets = sync.OnceValues(assets.New)
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type env struct {
	t       *testing.T
	db      *storage.DB
	svc     *Service
	clock   *clock
	handler http.Handler
	server  *httptest.Server
}

func newEnv(t *testing.T, secure bool) *env {
	t.Helper()
	t.Parallel() // each test has its own database and clock
	tree, err := loadTree()
	if err != nil {
		t.Fatal(err)
	}
	db := storagetest.Open(t, regions.Migrations, audit.Migrations, Migrations)
	shell := newShell(t)
	shell.Secure = secure
	c := &clock{t: time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)}
	svc := New(db, tree, shell, c.Now, Options{Hash: fastHash})
	mux := http.NewServeMux()
	// The same routes as internal/server/routes.go's auth block.
	mux.Handle("GET /login", shell.Page(svc.LoginPage))
	mux.Handle("POST /login", shell.Page(svc.LoginSubmit))
	mux.Handle("POST /logout", shell.Page(svc.LogoutSubmit))
	mux.Handle("GET /users", shell.Page(svc.UserList))
	mux.Handle("GET /users/new", shell.Page(svc.UserNew))
	mux.Handle("POST /users", shell.Page(svc.UserCreate))
	mux.Handle("GET /users/{id}", shell.Page(svc.UserDetail))
	mux.Handle("GET /users/{id}/edit", shell.Page(svc.UserEdit))
	mux.Handle("POST /users/{id}", shell.Page(svc.UserUpdate))
	mux.Handle("POST /users/{id}/disable", shell.Page(svc.UserDisable))
	mux.Handle("POST /users/{id}/enable", shell.Page(svc.UserEnable))
	mux.Handle("POST /users/{id}/password", shell.Page(svc.UserResetPassword))
	mux.Handle("POST /users/{id}/sessions/revoke", shell.Page(svc.UserSessionsRevoke))
	mux.Handle("GET /account", shell.Page(svc.Account))
	mux.Handle("POST /account/password", shell.Page(svc.AccountPassword))
	mux.Handle("POST /account/tokens", shell.Page(svc.TokenCreate))
	mux.Handle("POST /account/tokens/{id}/revoke", shell.Page(svc.TokenRevoke))
	mux.Handle("POST /account/sessions/{id}/revoke", shell.Page(svc.SessionRevoke))
	mux.Handle("POST /account/sessions/revoke-others", shell.Page(svc.SessionRevokeOthers))
	mux.Handle("GET /api/v1/users", shell.API(svc.APIUsers))
	mux.Handle("POST /api/v1/users", shell.API(svc.APIUserCreate))
	mux.Handle("GET /api/v1/users/{id}", shell.API(svc.APIUser))
	mux.Handle("PATCH /api/v1/users/{id}", shell.API(svc.APIUserUpdate))
	mux.Handle("GET /api/v1/me", shell.API(svc.APIMe))
	e := &env{t: t, db: db, svc: svc, clock: c, handler: shell.Observe(nil, audit.Middleware(svc.Middleware(mux)))}
	e.server = httptest.NewServer(e.handler)
	t.Cleanup(e.server.Close)
	return e
}

// newShell returns a web shell with the auth module's messages and pages.
func newShell(tb testing.TB) *web.Shell {
	tb.Helper()
	cat := locale.NewCatalog()
	if err := cat.LoadAll(web.Messages, Messages); err != nil {
		tb.Fatal(err)
	}
	a, err := loadAssets()
	if err != nil {
		tb.Fatal(err)
	}
	shell, err := web.New(cat, a, slog.New(slog.NewTextHandler(io.Discard, nil)), time.UTC, nil, Templates)
	if err != nil {
		tb.Fatal(err)
	}
	return shell
}

// sys is a context acting as the system (the CLI).
func sys() context.Context { return scope.WithPrincipal(context.Background(), scope.System()) }

// as is a context acting as p.
func as(p *scope.Principal) context.Context { return scope.WithPrincipal(context.Background(), p) }

// user creates a user as the system.
func (e *env) user(username, region string, inst int64, roles ...scope.Role) User {
	e.t.Helper()
	u, err := e.svc.CreateUser(sys(), NewUser{Username: username, Password: password, Roles: roles, RegionCode: region, InstitutionID: inst})
	if err != nil {
		e.t.Fatalf("create user %s: %v", username, err)
	}
	return u
}

// institution inserts an institution directly.
func (e *env) institution(name, region string) int64 {
	e.t.Helper()
	var id int64
	err := e.db.QueryRow(`INSERT INTO institutions (name, type, region_code, created_at, updated_at) VALUES ($1, 'hospital', $2, 0, 0) RETURNING id`,
		name, region).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// principal is the principal a user's session would carry.
func principal(u User) *scope.Principal {
	return &scope.Principal{UserID: u.ID, Username: u.Username, Roles: u.Roles, RegionCode: u.RegionCode, InstitutionID: u.InstitutionID}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
type browser struct {
	e      *env
	client *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.e.t.Helper()
	res, err := b.client.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest("GET", b.e.server.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest("POST", b.e.server.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// csrf reads the CSRF token from a page's form.
func (b *browser) csrf(page string) string {
	b.e.t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.e.t.Fatalf("no csrf_token in page:\n%s", page)
	}
	return m[1]
}

// login signs in through the form and returns the session's CSRF token.
func (b *browser) login(username, pw string) string {
	b.e.t.Helper()
	_, page := b.get("/login")
	res, body := b.post("/login", url.Values{"username": {username}, "password": {pw}, "csrf_token": {b.csrf(page)}, "next": {"/account"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		b.e.t.Fatalf("login %s: %d %s\n%s", username, res.StatusCode, res.Header.Get("Location"), body)
	}
	_, page = b.get("/account")
	return b.csrf(page)
}

func fieldCodes(err error) map[string]string {
	out := map[string]string{}
	if e := apperr.As(err); e != nil {
		for _, f := range e.Fields {
			out[f.Field] = f.Code
		}
	}
	return out
}
