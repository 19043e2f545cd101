package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
)

func TestLoginForm(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			e := newEnv(t, secure)
			e.user("lab.a", townshipA, 0, scope.Lab)
			b := e.browser()
			res, page := b.get("/login?next=/account")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /login = %d", res.StatusCode)
			}
			checkCookie(t, res, LoginCSRFCookie, http.SameSiteStrictMode, secure)
			token := b.csrf(page)

			form := url.Values{"username": {"lab.a"}, "password": {password}, "next": {"/account"}}
			// Without or with a wrong token the login form is refused.
			for _, tok := range []string{"", "wrong-token"} {
				form.Set("csrf_token", tok)
				if res, _ := b.post("/login", form); res.StatusCode != http.StatusForbidden {
					t.Errorf("login with csrf_token %q = %d; want 403", tok, res.StatusCode)
				}
			}
			// A fresh form after the refusal.
			_, page = b.get("/login")
			token = b.csrf(page)
			form.Set("csrf_token", token)
			form.Set("password", "wrong password!")
			if res, body := b.post("/login", form); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "用户名或密码错误") {
				t.Errorf("wrong password = %d; want 401 with the message", res.StatusCode)
			}
			form.Set("password", password)
			res, _ = b.post("/login", form)
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
				t.Fatalf("login = %d → %q", res.StatusCode, res.Header.Get("Location"))
			}
			checkCookie(t, res, SessionCookie, http.SameSiteLaxMode, secure)
			if res, _ := b.get("/account"); res.StatusCode != http.StatusOK {
				t.Errorf("GET /account after login = %d", res.StatusCode)
			}
		})
	}
}

// checkCookie checks the attributes of a cookie the response sets.
func checkCookie(t *testing.T, res *http.Response, name string, site http.SameSite, secure bool) {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name != name {
			continue
		}
		if !c.HttpOnly || c.SameSite != site || c.Secure != secure || c.Path != "/" {
			t.Errorf("cookie %s: HttpOnly=%v SameSite=%v Secure=%v Path=%q; want HttpOnly, %v, Secure=%v", name, c.HttpOnly, c.SameSite, c.Secure, c.Path, site, secure)
		}
		return
	}
	t.Errorf("no %s cookie set", name)
}

func TestSafeNext(t *testing.T) {
	tests := map[string]string{
		"":                      "/",
		"/people?q=1":           "/people?q=1",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"people":                "/",
		"/a\r\nSet-Cookie: x":   "/",
	}
	for in, want := range tests {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t, false)
	e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	lab := e.user("lab.a", townshipA, 0, scope.Lab)
	b := e.browser()
	token := b.login("admin.a", password)
	path := fmt.Sprintf("/users/%d/disable", lab.ID)
	tests := []struct {
		name   string
		form   url.Values
		header string
		want   int
	}{
		{"no token", url.Values{}, "", http.StatusForbidden},
		{"wrong token", url.Values{"csrf_token": {"x" + token}}, "", http.StatusForbidden},
		{"wrong header", url.Values{}, "nope", http.StatusForbidden},
		{"right token", url.Values{"csrf_token": {token}}, "", http.StatusSeeOther},
		{"right header", url.Values{}, token, http.StatusSeeOther},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", e.server.URL+path, strings.NewReader(tt.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tt.header != "" {
			req.Header.Set("X-CSRF-Token", tt.header)
		}
		if res, _ := b.do(req); res.StatusCode != tt.want {
			t.Errorf("%s: POST %s = %d; want %d", tt.name, path, res.StatusCode, tt.want)
		}
	}
	// Logout needs the token too, then ends the session.
	if res, _ := b.post("/logout", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("logout without token = %d; want 403", res.StatusCode)
	}
	if res, _ := b.post("/logout", url.Values{"csrf_token": {token}}); res.StatusCode != http.StatusSeeOther {
		t.Errorf("logout = %d; want 303", res.StatusCode)
	}
	if res, _ := b.get("/account"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("after logout GET /account = %d → %q; want the login page", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestCSRFFormLimits checks that the CSRF check, which reads the body
// before any handler, parses it under the shell's limits.
func TestCSRFFormLimits(t *testing.T) {
	e := newEnv(t, false)
	e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	lab := e.user("lab.a", townshipA, 0, scope.Lab)
	b := e.browser()
	token := b.login("admin.a", password)
	path := e.server.URL + fmt.Sprintf("/users/%d/disable", lab.ID)

	multipartBody := func(token string) (string, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("csrf_token", token)
		_ = mw.Close()
		return buf.String(), mw.FormDataContentType()
	}
	goodMultipart, goodType := multipartBody(token)
	wrongMultipart, wrongType := multipartBody("x" + token)
	tests := []struct {
		name        string
		body        string
		contentType string
		want        int
	}{
		// The token comes first, so only the size can refuse the form.
		{"urlencoded over MaxFormBody", "csrf_token=" + url.QueryEscape(token) + "&pad=" + strings.Repeat("x", web.MaxFormBody),
			"application/x-www-form-urlencoded", http.StatusRequestEntityTooLarge},
		{"multipart without a boundary", "--x\r\n", "multipart/form-data", http.StatusBadRequest},
		{"multipart with the wrong token", wrongMultipart, wrongType, http.StatusForbidden},
		{"multipart with the token", goodMultipart, goodType, http.StatusSeeOther},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("POST", path, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", tt.contentType)
		if res, _ := b.do(req); res.StatusCode != tt.want {
			t.Errorf("%s: POST = %d; want %d", tt.name, res.StatusCode, tt.want)
		}
	}
	u, err := e.svc.GetUser(sys(), lab.ID)
	if err != nil || !u.Disabled {
		t.Errorf("after the multipart post with the token: disabled = %v, %v; want true", u.Disabled, err)
	}
}

// api sends an API request with a bearer token.
func (e *env) api(method, path, token string, body any) (*http.Response, map[string]any) {
	e.t.Helper()
	var r *strings.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	} else {
		r = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, e.server.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(res.Body).Decode(&doc)
	return res, doc
}

func TestBearerToken(t *testing.T) {
	e := newEnv(t, false)
	adminA := e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	labA := e.user("lab.a", townshipA, 0, scope.Lab)
	labB := e.user("lab.b", townshipB, 0, scope.Lab)
	ctx := as(principal(adminA))
	tok, secret, err := e.svc.CreateToken(ctx, adminA.ID, "script", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+43 {
		t.Errorf("token %q: want sbt_ and 32 base64url bytes", secret)
	}

	res, me := e.api("GET", "/api/v1/me", secret, nil)
	if res.StatusCode != http.StatusOK || me["username"] != "admin.a" || me["region_code"] != townshipA || me["institution_id"] != nil {
		t.Errorf("GET /api/v1/me = %d %v", res.StatusCode, me)
	}
	// Exactly the user's scope: a user in the same township is found, one
	// in the next township is not.
	if res, _ := e.api("GET", fmt.Sprintf("/api/v1/users/%d", labA.ID), secret, nil); res.StatusCode != http.StatusOK {
		t.Errorf("GET own township's user = %d; want 200", res.StatusCode)
	}
	if res, _ := e.api("GET", fmt.Sprintf("/api/v1/users/%d", labB.ID), secret, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET other township's user = %d; want 404", res.StatusCode)
	}
	res, list := e.api("GET", "/api/v1/users", secret, nil)
	if items, _ := list["items"].([]any); res.StatusCode != http.StatusOK || len(items) != 2 {
		t.Errorf("GET /api/v1/users = %d %v; want the 2 users of township A", res.StatusCode, list)
	}
	// No CSRF token is needed with a bearer token.
	res, doc := e.api("POST", "/api/v1/users", secret, NewUser{Username: "new.a", Password: password, Roles: []scope.Role{scope.Sampler}, RegionCode: townshipA})
	if res.StatusCode != http.StatusCreated || doc["username"] != "new.a" || doc["password_hash"] != nil {
		t.Errorf("POST /api/v1/users = %d %v", res.StatusCode, doc)
	}
	// Tokens never work on browser pages.
	req, _ := http.NewRequest("GET", e.server.URL+"/users", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	if res, _ := e.browser().do(req); res.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /users with a bearer token = %d; want a redirect to the login page", res.StatusCode)
	}
	// Revoked and unknown tokens are refused.
	if err := e.svc.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, "sbt_unknown", "garbage"} {
		if res, _ := e.api("GET", "/api/v1/me", s, nil); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /api/v1/me with token %q = %d; want 401", s, res.StatusCode)
		}
	}
	// A user's token is refused once the user is disabled.
	labCtx := as(principal(labA))
	_, labSecret, err := e.svc.CreateToken(labCtx, labA.ID, "lab", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := e.api("GET", "/api/v1/me", labSecret, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("lab token = %d", res.StatusCode)
	}
	if res, _ := e.api("GET", "/api/v1/users", labSecret, nil); res.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin GET /api/v1/users = %d; want 403", res.StatusCode)
	}
	if _, _, err := e.svc.CreateToken(labCtx, adminA.ID, "theirs", time.Time{}); err == nil {
		t.Error("a user made a token for someone else")
	}
	if err := e.svc.SetDisabled(ctx, labA.ID, true); err != nil {
		t.Fatal(err)
	}
	if res, _ := e.api("GET", "/api/v1/me", labSecret, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("disabled user's token = %d; want 401", res.StatusCode)
	}
	// Expiry.
	_, short, err := e.svc.CreateToken(ctx, adminA.ID, "short", e.clock.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if res, _ := e.api("GET", "/api/v1/me", short, nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token = %d; want 401", res.StatusCode)
	}
}

func TestAPICreateUserScope(t *testing.T) {
	e := newEnv(t, false)
	adminA := e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	lab := e.user("lab.a", townshipA, 0, scope.Lab)
	_, adminTok, err := e.svc.CreateToken(as(principal(adminA)), adminA.ID, "t", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, labTok, err := e.svc.CreateToken(as(principal(lab)), lab.ID, "t", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{townshipB, district} {
		res, doc := e.api("POST", "/api/v1/users", adminTok, NewUser{Username: "x.user", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: region})
		errs, _ := doc["errors"].([]any)
		if res.StatusCode != http.StatusUnprocessableEntity || len(errs) != 1 || errs[0].(map[string]any)["field"] != "region_code" {
			t.Errorf("township admin creates a user in %s = %d %v; want 422 naming region_code", region, res.StatusCode, doc)
		}
	}
	if res, _ := e.api("POST", "/api/v1/users", labTok, NewUser{Username: "x.user", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: townshipA}); res.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin creates a user = %d; want 403", res.StatusCode)
	}
	if res, _ := e.api("POST", "/api/v1/users", adminTok, map[string]any{"username": "x", "is_root": true}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown field = %d; want 400", res.StatusCode)
	}
}

func TestUserPages(t *testing.T) {
	e := newEnv(t, false)
	e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	e.user("lab.a", townshipA, 0, scope.Lab)
	inst := e.institution("北岙卫生院", townshipA)
	b := e.browser()
	token := b.login("admin.a", password)
	if res, body := b.get("/users?q=lab"); res.StatusCode != http.StatusOK || !strings.Contains(body, "lab.a") || strings.Contains(body, ">admin.a</a></td>") { // the header names the signed-in admin too
		t.Errorf("GET /users?q=lab = %d", res.StatusCode)
	}
	if res, body := b.get("/users/new"); res.StatusCode != http.StatusOK || !strings.Contains(body, "北岙卫生院") {
		t.Errorf("GET /users/new = %d; want the form with the institution", res.StatusCode)
	}
	// A rejected form comes back with the field's error.
	res, body := b.post("/users", url.Values{"csrf_token": {token}, "username": {"n"}, "password": {password}, "roles": {"lab"}, "region_code": {townshipB}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "field-error") {
		t.Errorf("bad POST /users = %d", res.StatusCode)
	}
	res, _ = b.post("/users", url.Values{"csrf_token": {token}, "username": {"staff.new"}, "password": {password},
		"roles": {"institution_staff", "sampler"}, "institution_id": {fmt.Sprint(inst)}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /users = %d", res.StatusCode)
	}
	loc := res.Header.Get("Location")
	if res, body := b.get(loc); res.StatusCode != http.StatusOK || !strings.Contains(body, "staff.new") {
		t.Errorf("GET %s = %d", loc, res.StatusCode)
	}
	// A non-admin cannot see the users pages.
	nb := e.browser()
	nb.login("lab.a", password)
	if res, _ := nb.get("/users"); res.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin GET /users = %d; want 403", res.StatusCode)
	}
}

func TestAccountPage(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	b := e.browser()
	token := b.login("lab.a", password)
	other := e.browser()
	other.login("lab.a", password)

	res, body := b.post("/account/tokens", url.Values{"csrf_token": {token}, "name": {"laptop"}, "expires_days": {"30"}})
	secret := tokenPattern.FindString(body)
	if res.StatusCode != http.StatusOK || secret == "" {
		t.Fatalf("create token = %d, token %q", res.StatusCode, secret)
	}
	if res, _ := e.api("GET", "/api/v1/me", secret, nil); res.StatusCode != http.StatusOK {
		t.Errorf("new token = %d", res.StatusCode)
	}
	if _, body := b.get("/account"); strings.Contains(body, secret) {
		t.Error("the token is shown again")
	}

	res, body = b.post("/account/password", url.Values{"csrf_token": {token}, "current_password": {"wrong one!!!!"}, "password": {"another good pass"}, "password_confirm": {"another good pass"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "当前密码不正确") {
		t.Errorf("change with a wrong current password = %d", res.StatusCode)
	}
	res, _ = b.post("/account/password", url.Values{"csrf_token": {token}, "current_password": {password}, "password": {"another good pass"}, "password_confirm": {"another good pass"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password = %d", res.StatusCode)
	}
	// This browser keeps a (new) session; the other one is signed out.
	if res, _ := b.get("/account"); res.StatusCode != http.StatusOK {
		t.Errorf("after changing password GET /account = %d; want 200", res.StatusCode)
	}
	if res, _ := other.get("/account"); res.StatusCode != http.StatusSeeOther {
		t.Errorf("other browser after password change = %d; want a redirect to login", res.StatusCode)
	}
	if _, err := e.svc.Login(context.Background(), Attempt{Username: "lab.a", Password: "another good pass"}); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

var tokenPattern = regexp.MustCompile(`sbt_[A-Za-z0-9_-]{43}`)

func TestAPIUpdateUser(t *testing.T) {
	e := newEnv(t, false)
	adminA := e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	lab := e.user("lab.a", townshipA, 0, scope.Lab)
	labB := e.user("lab.b", townshipB, 0, scope.Lab)
	_, adminTok, err := e.svc.CreateToken(as(principal(adminA)), adminA.ID, "t", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, labTok, err := e.svc.CreateToken(as(principal(lab)), lab.ID, "t", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	path := func(id int64) string { return fmt.Sprintf("/api/v1/users/%d", id) }
	tests := []struct {
		name   string
		token  string
		id     int64
		body   any
		status int
		field  string
	}{
		{"out of scope", adminTok, labB.ID, map[string]any{"roles": []string{"sampler"}}, http.StatusNotFound, ""},
		{"wider scope", adminTok, lab.ID, map[string]any{"region_code": district}, http.StatusUnprocessableEntity, "region_code"},
		{"non-admin", labTok, lab.ID, map[string]any{"roles": []string{"bureau_admin"}}, http.StatusForbidden, ""},
		{"self-demotion", adminTok, adminA.ID, map[string]any{"roles": []string{"lab"}}, http.StatusUnprocessableEntity, "roles"},
		{"unknown field", adminTok, lab.ID, map[string]any{"is_root": true}, http.StatusBadRequest, "is_root"},
		{"wrong type", adminTok, lab.ID, map[string]any{"roles": "lab"}, http.StatusUnprocessableEntity, "roles"},
	}
	for _, tt := range tests {
		res, doc := e.api("PATCH", path(tt.id), tt.token, tt.body)
		if res.StatusCode != tt.status {
			t.Errorf("%s: PATCH = %d %v; want %d", tt.name, res.StatusCode, doc, tt.status)
			continue
		}
		if tt.field != "" {
			errs, _ := doc["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != tt.field {
				t.Errorf("%s: errors %v; want one naming %s", tt.name, doc["errors"], tt.field)
			}
		}
	}

	// The lab user's token carries the new roles and scope on its next
	// request: no new sign-in, no new token.
	res, doc := e.api("PATCH", path(lab.ID), adminTok, map[string]any{"roles": []string{"lab", "sampler"}, "region_code": "330305001001"})
	if res.StatusCode != http.StatusOK || doc["region_code"] != "330305001001" || fmt.Sprint(doc["roles"]) != "[sampler lab]" || doc["display_name"] != "lab.a" {
		t.Fatalf("PATCH = %d %v", res.StatusCode, doc)
	}
	if _, me := e.api("GET", "/api/v1/me", labTok, nil); fmt.Sprint(me["roles"]) != "[sampler lab]" || me["region_code"] != "330305001001" {
		t.Errorf("the changed user's token sees %v", me)
	}
}

func TestEditUserPages(t *testing.T) {
	e := newEnv(t, false)
	admin := e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	lab := e.user("lab.a", townshipA, 0, scope.Lab)
	labB := e.user("lab.b", townshipB, 0, scope.Lab)
	b := e.browser()
	token := b.login("admin.a", password)
	labBrowser := e.browser()
	labBrowser.login("lab.a", password)
	if res, _ := labBrowser.get("/users"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("lab GET /users = %d; want 403", res.StatusCode)
	}

	edit := fmt.Sprintf("/users/%d/edit", lab.ID)
	res, body := b.get(edit)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `name="region_code" value="`+townshipA+`"`) ||
		!regexp.MustCompile(`value="lab" checked`).MatchString(body) || !strings.Contains(body, `data-region-picker`) {
		t.Errorf("GET %s = %d; want the form with the region picker and the ticked role\n%s", edit, res.StatusCode, body)
	}
	if res, _ := b.get(fmt.Sprintf("/users/%d/edit", labB.ID)); res.StatusCode != http.StatusNotFound {
		t.Errorf("edit a user out of scope = %d; want 404", res.StatusCode)
	}
	if res, _ := labBrowser.get(edit); res.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin GET %s = %d; want 403", edit, res.StatusCode)
	}
	form := func(region string, roles ...string) url.Values {
		return url.Values{"csrf_token": {token}, "display_name": {"王检验"}, "roles": roles, "region_code": {region}, "institution_id": {""}}
	}
	// A wider scope comes back with the field's error.
	res, body = b.post(fmt.Sprintf("/users/%d", lab.ID), form(district, "lab", "bureau_admin"))
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "field-error") {
		t.Errorf("POST with a wider scope = %d", res.StatusCode)
	}
	// Removing one's own admin role is refused.
	res, body = b.post(fmt.Sprintf("/users/%d", admin.ID), form(townshipA, "lab"))
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "不能取消您自己的卫健局管理员角色") {
		t.Errorf("self-demotion through the form = %d", res.StatusCode)
	}
	res, _ = b.post(fmt.Sprintf("/users/%d", lab.ID), form(townshipA, "lab", "bureau_admin"))
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != fmt.Sprintf("/users/%d?notice=user_updated", lab.ID) {
		t.Fatalf("POST edit = %d → %q", res.StatusCode, loc)
	}
	// The lab user's open session has the new role at once.
	if res, _ := labBrowser.get("/users"); res.StatusCode != http.StatusOK {
		t.Errorf("lab GET /users after being made admin = %d; want 200", res.StatusCode)
	}
	if _, body := b.get(fmt.Sprintf("/users/%d", lab.ID)); !strings.Contains(body, "王检验") || !strings.Contains(body, "卫健局管理员") {
		t.Errorf("detail page does not show the change")
	}
}
