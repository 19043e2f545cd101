package server

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// TestEveryMessageInBothLanguages loads every module's catalog, as the server
// does, and requires each key in Chinese and English, and every navigation
// label to exist.
func TestEveryMessageInBothLanguages(t *testing.T) {
	cat := locale.NewCatalog()
	if err := cat.LoadAll(Messages()...); err != nil {
		t.Fatal(err)
	}
	if missing := cat.Missing(); len(missing) > 0 {
		t.Errorf("untranslated keys:\n%s", strings.Join(missing, "\n"))
	}
	for _, n := range navigation() {
		if !cat.Has(n.Key) {
			t.Errorf("navigation key %q has no message", n.Key)
		}
	}
	for _, code := range people.MessageKeys() {
		if !cat.Has("error." + code) {
			t.Errorf("validation code %q has no message", code)
		}
	}
}

// world is a district with two townships, a person in each, a bureau admin
// for the district and an epidemiologist for each township.
type world struct {
	srv                *httptest.Server
	app                *Server
	db                 *storage.DB
	personA, personB   people.Person
	tokenA, tokenAdmin string
}

const e2ePassword = "correct-horse-battery"

func newWorld(t *testing.T) *world {
	t.Helper()
	s, db := buildTestServer(t)
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	sys := scope.WithPrincipal(context.Background(), scope.System())
	accounts := auth.New(db, tree, s.Shell(), time.Now, auth.Options{Hash: auth.HashParams{Memory: 8 * 1024, Time: 1, Threads: 1}})
	w := &world{db: db, app: s}
	for _, u := range []auth.NewUser{
		{Username: "district.admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
		{Username: "beiao.cdc", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305001"},
		{Username: "lingkun.cdc", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305002"},
	} {
		u.Password, u.DisplayName = e2ePassword, u.Username
		created, err := accounts.CreateUser(sys, u)
		if err != nil {
			t.Fatalf("create %s: %v", u.Username, err)
		}
		_, secret, err := accounts.CreateToken(sys, created.ID, "e2e", time.Time{})
		if err != nil {
			t.Fatalf("token for %s: %v", u.Username, err)
		}
		switch u.Username {
		case "beiao.cdc":
			w.tokenA = secret
		case "district.admin":
			w.tokenAdmin = secret
		}
	}
	reg := people.NewRegistry(db, tree, audit.New(db, time.Now), time.Now)
	var created bool
	if w.personA, created, err = reg.Register(sys, people.NewPerson{IDNumber: residentID("33030519800101123"), Name: "王北岙", Phone: "13812345678", RegionCode: "330305001"}); err != nil || !created {
		t.Fatalf("register A: %v", err)
	}
	if w.personB, _, err = reg.Register(sys, people.NewPerson{IDNumber: residentID("33030519750505321"), Name: "陈灵昆", Phone: "13912345678", RegionCode: "330305002"}); err != nil {
		t.Fatalf("register B: %v", err)
	}
	w.srv = httptest.NewServer(s)
	t.Cleanup(w.srv.Close)
	return w
}

func (w *world) api(t *testing.T, token, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// browser is a cookie-keeping client that signs in through the login form.
type browser struct {
	c    *http.Client
	base string
	csrf string
}

var csrfMeta = regexp.MustCompile(`name="csrf-token" content="([^"]+)"`)
var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func signIn(t *testing.T, base, username string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{c: &http.Client{Jar: jar}, base: base}
	_, page := b.get(t, "/login")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page has no CSRF field:\n%s", page)
	}
	status, page := b.post(t, "/login", url.Values{"username": {username}, "password": {e2ePassword}, "csrf_token": {m[1]}})
	if status != http.StatusOK || !strings.Contains(page, username) {
		t.Fatalf("login as %s: %d\n%s", username, status, page)
	}
	m = csrfMeta.FindStringSubmatch(page)
	if m == nil || m[1] == "" {
		t.Fatal("signed-in page has no CSRF token")
	}
	b.csrf = m[1]
	return b
}

func (b *browser) get(t *testing.T, path string) (int, string) {
	t.Helper()
	res, err := b.c.Get(b.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

func (b *browser) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	res, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestTownshipScopeEndToEnd: a user scoped to one township cannot read,
// search, export or update a person of another township, through the API
// (bearer token) or the pages (session), and gets 404 rather than 403.
func TestTownshipScopeEndToEnd(t *testing.T) {
	w := newWorld(t)
	idA, idB := itoa(w.personA.ID), itoa(w.personB.ID)

	// API: read.
	if status, body := w.api(t, w.tokenA, "GET", "/api/v1/people/"+idA, ""); status != 200 || !strings.Contains(body, `"name":"王**"`) {
		t.Errorf("own person: %d %s", status, body)
	}
	if status, _ := w.api(t, w.tokenA, "GET", "/api/v1/people/"+idB, ""); status != 404 {
		t.Errorf("other township's person via API: %d, want 404", status)
	}
	// API: search by exact ID number and by name, and a region filter outside scope.
	for _, q := range []string{"q=" + w.personB.IDNumber, "q=" + url.QueryEscape("陈"), "region_code=330305002", ""} {
		status, body := w.api(t, w.tokenA, "GET", "/api/v1/people?"+q, "")
		if status != 200 && status != 422 {
			t.Errorf("search %s: %d %s", q, status, body)
		}
		if strings.Contains(body, `"id":`+idB+`,`) || strings.Contains(body, "陈") {
			t.Errorf("search %s leaks the other township's person: %s", q, body)
		}
	}
	// API: export.
	status, body := w.api(t, w.tokenA, "GET", "/api/v1/people/export?format=csv", "")
	if status != 200 {
		t.Fatalf("export: %d %s", status, body)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || strings.Contains(body, "陈") || strings.Contains(body, w.personA.IDNumber) {
		t.Errorf("export should hold only the own person, masked:\n%s", body)
	}
	// API: update — re-registering the other township's person while keeping
	// their residence there is outside the writer's capture scope.
	payload, _ := json.Marshal(map[string]any{"id_number": w.personB.IDNumber, "name": "陈改名", "phone": "13700000000", "region_code": "330305002"})
	if status, body := w.api(t, w.tokenA, "POST", "/api/v1/people", string(payload)); status != 422 || !strings.Contains(body, `"field":"region_code"`) {
		t.Errorf("update of another township's person: %d %s", status, body)
	}
	// Unmask of an out-of-scope person is not found either.
	if status, _ := w.api(t, w.tokenA, "POST", "/api/v1/people/"+idB+"/unmask", `{"reason":"核实密接身份"}`); status != 404 {
		t.Errorf("unmask out of scope: %d, want 404", status)
	}
	// The district admin sees both.
	if status, body := w.api(t, w.tokenAdmin, "GET", "/api/v1/people/"+idB, ""); status != 200 || !strings.Contains(body, `"name":"陈**"`) {
		t.Errorf("district admin: %d %s", status, body)
	}

	// Pages, through a real login.
	b := signIn(t, w.srv.URL, "beiao.cdc")
	if status, page := b.get(t, "/people/"+idA); status != 200 || !strings.Contains(page, "王**") || strings.Contains(page, w.personA.IDNumber) {
		t.Errorf("own person page: %d", status)
	}
	if status, _ := b.get(t, "/people/"+idB); status != 404 {
		t.Errorf("other township's person page: %d, want 404", status)
	}
	if status, page := b.get(t, "/people?q="+url.QueryEscape("陈")); status != 200 || strings.Contains(page, "陈**") {
		t.Errorf("people list search leaks: %d", status)
	}
	if status, page := b.get(t, "/people/export?format=csv"); status != 200 || strings.Contains(page, "陈") {
		t.Errorf("page export leaks: %d", status)
	}
	for _, p := range []string{"/people/abc", "/people/-1", "/people/99999999999999999999", "/api/v1/people/1%20OR%201=1"} {
		var status int
		if strings.HasPrefix(p, "/api/") {
			status, _ = w.api(t, w.tokenA, "GET", p, "")
		} else {
			status, _ = b.get(t, p)
		}
		if status != 404 {
			t.Errorf("malformed id %s: %d, want 404", p, status)
		}
	}
}

// TestFormsNeedTheCSRFToken: a signed-in browser's form post without the
// session's CSRF token is refused and writes nothing.
func TestFormsNeedTheCSRFToken(t *testing.T) {
	w := newWorld(t)
	b := signIn(t, w.srv.URL, "district.admin")
	form := url.Values{"id_type": {"resident_id"}, "id_number": {residentID("33030519900101456")}, "name": {"赵六"}, "phone": {"13611112222"}, "region_code": {"330305001"}}
	for _, token := range []string{"", "wrong-token"} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if token != "" {
			f.Set("csrf_token", token)
		}
		if status, _ := b.post(t, "/people/new", f); status != http.StatusForbidden {
			t.Errorf("post with token %q: %d, want 403", token, status)
		}
	}
	var n int
	if err := w.db.QueryRow("SELECT COUNT(*) FROM persons").Scan(&n); err != nil || n != 2 {
		t.Fatalf("persons = %d (%v); a refused form wrote", n, err)
	}
	form.Set("csrf_token", b.csrf)
	if status, page := b.post(t, "/people/new", form); status != 200 || !strings.Contains(page, "赵*") {
		t.Errorf("post with the token: %d", status)
	}
	if err := w.db.QueryRow("SELECT COUNT(*) FROM persons").Scan(&n); err != nil || n != 3 {
		t.Errorf("persons = %d (%v) after a valid form", n, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPagesEscapeWhatUsersTyped: an institution name (shown unmasked) with
// markup in it appears as text on the list and detail pages, never as HTML.
func TestPagesEscapeWhatUsersTyped(t *testing.T) {
	w := newWorld(t)
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>卫生院`
	payload, _ := json.Marshal(map[string]any{"name": evil, "type": "township_health_centre", "region_code": "330305001"})
	status, body := w.api(t, w.tokenAdmin, "POST", "/api/v1/institutions", string(payload))
	if status != http.StatusCreated {
		t.Fatalf("create institution: %d %s", status, body)
	}
	var created struct{ ID int64 }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.ID == 0 {
		t.Fatalf("created %s: %v", body, err)
	}
	b := signIn(t, w.srv.URL, "district.admin")
	for _, path := range []string{"/institutions", "/institutions/" + itoa(created.ID)} {
		status, page := b.get(t, path)
		if status != 200 {
			t.Fatalf("%s: %d", path, status)
		}
		if strings.Contains(page, "<script>alert(1)") || strings.Contains(page, "<img src=x") {
			t.Errorf("%s renders the typed markup as HTML", path)
		}
		if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the name as text", path)
		}
	}
}
