package auth

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/scope"
)

var sessionRevokePath = regexp.MustCompile(`/account/sessions/([0-9a-f]{64})/revoke`)

// revokes counts the audited session.revoke entries.
func (e *env) revokes() int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'session.revoke'").Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// signedIn reports whether the browser's session still works.
func (b *browser) signedIn() bool {
	res, _ := b.get("/account")
	return res.StatusCode == http.StatusOK
}

func TestAccountSessions(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	e.user("lab.b", townshipA, 0, scope.Lab)
	b := e.browser()
	token := b.login("lab.a", password)
	other := e.browser()
	other.login("lab.a", password)
	stranger := e.browser()
	strangerToken := stranger.login("lab.b", password)

	_, body := b.get("/account")
	ids := sessionRevokePath.FindAllStringSubmatch(body, -1)
	if len(ids) != 1 || strings.Count(body, "当前设备") != 1 || !strings.Contains(body, "Go-http-client") {
		t.Fatalf("account page lists %d revocable sessions; want the other one, with this device marked and the user agent\n%s", len(ids), body)
	}
	path := ids[0][0]
	if res, _ := b.post(path, url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("revoke without the CSRF token = %d; want 403", res.StatusCode)
	}
	// Another user's session is not found.
	if res, _ := stranger.post(path, url.Values{"csrf_token": {strangerToken}}); res.StatusCode != http.StatusNotFound {
		t.Errorf("another user revokes the session = %d; want 404", res.StatusCode)
	}
	if !other.signedIn() {
		t.Fatal("a failed revoke ended the session")
	}
	res, _ := b.post(path, url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account?notice=session_revoked" {
		t.Fatalf("revoke = %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	if other.signedIn() || !b.signedIn() || !stranger.signedIn() {
		t.Errorf("after revoking the other session: other %v, this %v, stranger %v; want only the other signed out",
			other.signedIn(), b.signedIn(), stranger.signedIn())
	}
	if n := e.revokes(); n != 1 {
		t.Errorf("session.revoke audited %d times; want 1", n)
	}

	// Sign out everywhere else.
	other.login("lab.a", password)
	third := e.browser()
	third.login("lab.a", password)
	if res, _ := b.post("/account/sessions/revoke-others", url.Values{}); res.StatusCode != http.StatusForbidden {
		t.Errorf("revoke others without the CSRF token = %d; want 403", res.StatusCode)
	}
	res, _ = b.post("/account/sessions/revoke-others", url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account?notice=sessions_revoked" {
		t.Fatalf("revoke others = %d → %q", res.StatusCode, res.Header.Get("Location"))
	}
	if other.signedIn() || third.signedIn() || !b.signedIn() || !stranger.signedIn() {
		t.Error("sign out everywhere else: want only this browser (and the other user) still signed in")
	}
	if _, body := b.get("/account"); sessionRevokePath.MatchString(body) || strings.Count(body, "当前设备") != 1 {
		t.Error("after signing out elsewhere the page still lists other sessions")
	}
	var detail string
	if err := e.db.QueryRow("SELECT detail FROM audit_log WHERE action = 'session.revoke' ORDER BY id DESC LIMIT 1").Scan(&detail); err != nil || detail != "2 sessions" {
		t.Errorf("audit detail %q, %v; want \"2 sessions\"", detail, err)
	}
}

func TestAdminEndsUserSessions(t *testing.T) {
	e := newEnv(t, false)
	admin := e.user("admin.a", townshipA, 0, scope.BureauAdmin)
	lab := e.user("lab.a", townshipA, 0, scope.Lab)
	labB := e.user("lab.b", townshipB, 0, scope.Lab)
	b := e.browser()
	token := b.login("admin.a", password)
	phone, tablet, outside := e.browser(), e.browser(), e.browser()
	labToken := phone.login("lab.a", password)
	tablet.login("lab.a", password)
	outside.login("lab.b", password)

	detail := fmt.Sprintf("/users/%d", lab.ID)
	if _, body := b.get(detail); !strings.Contains(body, "当前有效登录：2 个") || !strings.Contains(body, detail+"/sessions/revoke") {
		t.Errorf("user page does not show 2 sessions and the sign-out button")
	}
	revoke := detail + "/sessions/revoke"
	tests := []struct {
		name string
		b    *browser
		path string
		form url.Values
		want int
	}{
		{"no CSRF token", b, revoke, url.Values{}, http.StatusForbidden},
		{"non-admin", phone, fmt.Sprintf("/users/%d/sessions/revoke", admin.ID), url.Values{"csrf_token": {labToken}}, http.StatusForbidden},
		{"out of scope", b, fmt.Sprintf("/users/%d/sessions/revoke", labB.ID), url.Values{"csrf_token": {token}}, http.StatusNotFound},
		{"malformed id", b, "/users/x/sessions/revoke", url.Values{"csrf_token": {token}}, http.StatusNotFound},
	}
	for _, tt := range tests {
		if res, _ := tt.b.post(tt.path, tt.form); res.StatusCode != tt.want {
			t.Errorf("%s: POST %s = %d; want %d", tt.name, tt.path, res.StatusCode, tt.want)
		}
	}
	if !outside.signedIn() || !b.signedIn() || e.revokes() != 0 {
		t.Fatal("a refused request ended sessions")
	}
	res, _ := b.post(revoke, url.Values{"csrf_token": {token}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != detail+"?notice=user_sessions_revoked" {
		t.Fatalf("POST %s = %d → %q", revoke, res.StatusCode, res.Header.Get("Location"))
	}
	if phone.signedIn() || tablet.signedIn() {
		t.Error("the user is still signed in somewhere")
	}
	if !b.signedIn() || !outside.signedIn() {
		t.Error("other users' sessions ended")
	}
	var objectID, audited string
	if err := e.db.QueryRow("SELECT object_id, detail FROM audit_log WHERE action = 'session.revoke'").Scan(&objectID, &audited); err != nil ||
		objectID != fmt.Sprint(lab.ID) || audited != "2 sessions" {
		t.Errorf("audit: %q %q, %v", objectID, audited, err)
	}
	// The user can sign in again.
	phone.login("lab.a", password)
}

func TestBrowserSummary(t *testing.T) {
	tests := map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36":                         "Chrome · Windows",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0":               "Edge · Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47": "WeChat · iOS",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36":                   "Chrome · Android",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15":                  "Safari · macOS",
		"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0":                                                              "Firefox · Linux",
		"curl/8.5.0": "curl",
		"":           "",
	}
	for ua, want := range tests {
		if got := browserSummary(ua); got != want {
			t.Errorf("browserSummary(%q) = %q; want %q", ua, got, want)
		}
	}
}
