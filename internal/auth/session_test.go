package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
)

func TestLogin(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	ctx := context.Background()
	tests := []struct {
		username, password string
		ok                 bool
	}{
		{"lab.a", password, true},
		{" LAB.A ", password, true}, // usernames are case-folded
		{"lab.a", password + "x", false},
		{"lab.a", "", false},
		{"nobody", password, false},
	}
	for _, tt := range tests {
		cookie, err := e.svc.Login(ctx, Attempt{Username: tt.username, Password: tt.password, ClientAddr: "10.0.0.1", UserAgent: "test"})
		if tt.ok != (err == nil) || (err != nil && err != ErrLoginFailed) {
			t.Errorf("Login(%q, %q) = %v; want ok=%v", tt.username, tt.password, err, tt.ok)
		}
		if tt.ok && len(cookie.Session) < 40 {
			t.Errorf("cookie %q too short", cookie)
		}
	}
	// Only the digest of the cookie is stored.
	in, _ := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: password})
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM sessions WHERE id = $1", in.Session).Scan(&n); err != nil || n != 0 {
		t.Errorf("the raw cookie value is stored as a session id (%d, %v)", n, err)
	}
	if err := e.db.QueryRow("SELECT COUNT(*) FROM sessions WHERE id = $1", digest(in.Session)).Scan(&n); err != nil || n != 1 {
		t.Errorf("no session under the cookie's digest (%d, %v)", n, err)
	}
}

func TestLockout(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	ctx := context.Background()
	// Four failures, then a success, reset the count.
	for range 4 {
		if _, err := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: "wrong password!"}); err != ErrLoginFailed {
			t.Fatalf("wrong password: %v", err)
		}
	}
	if _, err := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: password}); err != nil {
		t.Fatalf("4 failures locked the account: %v", err)
	}
	for i := range 5 {
		if _, err := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: "wrong password!"}); err != ErrLoginFailed {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	// Locked: the right password fails with the same answer.
	if _, err := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: password}); err != ErrLoginFailed {
		t.Fatalf("correct password during lockout = %v; want ErrLoginFailed", err)
	}
	e.clock.Advance(14 * time.Minute)
	if _, err := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: password}); err != ErrLoginFailed {
		t.Fatalf("correct password 14 minutes into the lockout = %v; want ErrLoginFailed", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Login(ctx, Attempt{Username: "lab.a", Password: password}); err != nil {
		t.Fatalf("login after the lockout: %v", err)
	}
	// Failures are audited, with the lock.
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'user.login' AND outcome = 'denied'").Scan(&n); err != nil || n != 11 {
		t.Errorf("denied logins audited: %d, %v; want 11", n, err)
	}
}

func TestSessionTimeouts(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	var seen *scope.Principal
	h := e.svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = scope.FromContext(r.Context())
		if seen != nil && web.CSRFToken(r.Context()) == "" {
			t.Error("signed-in request without a CSRF token in its context")
		}
	}))
	signedIn := func(cookie string) bool {
		seen = nil
		req := httptest.NewRequest("GET", "/", nil)
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
		h.ServeHTTP(httptest.NewRecorder(), req)
		return seen != nil && seen.Username == "lab.a"
	}
	login := func() string {
		c, err := e.svc.Login(context.Background(), Attempt{Username: "lab.a", Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return c.Session
	}

	// Idle: 29 minutes apart keeps the session alive (it slides), 30 ends it.
	c := login()
	for range 3 {
		e.clock.Advance(29 * time.Minute)
		if !signedIn(c) {
			t.Fatal("session ended before the idle timeout")
		}
	}
	e.clock.Advance(30 * time.Minute)
	if signedIn(c) {
		t.Fatal("session survived 30 idle minutes")
	}
	if signedIn(c) {
		t.Fatal("an ended session came back")
	}

	// Absolute: even a busy session ends 12 hours after sign-in.
	c = login()
	for range 12*4 - 1 {
		e.clock.Advance(15 * time.Minute)
		if !signedIn(c) {
			t.Fatal("busy session ended before 12 hours")
		}
	}
	e.clock.Advance(15 * time.Minute)
	if signedIn(c) {
		t.Fatal("session survived 12 hours")
	}

	// last_seen_at is not written on every request.
	c = login()
	e.clock.Advance(30 * time.Second)
	signedIn(c)
	var lastSeen, created int64
	if err := e.db.QueryRow("SELECT last_seen_at, created_at FROM sessions WHERE id = $1", digest(c)).Scan(&lastSeen, &created); err != nil {
		t.Fatal(err)
	}
	if lastSeen != created {
		t.Error("last_seen_at written by a request 30 seconds after the last")
	}

	// A disabled user loses access on the next request.
	c = login()
	if _, err := e.db.Exec("UPDATE users SET disabled = TRUE"); err != nil {
		t.Fatal(err)
	}
	if signedIn(c) {
		t.Error("disabled user still signed in")
	}
}

func TestInstitutionUserLosesAccessWithInstitution(t *testing.T) {
	e := newEnv(t, false)
	inst := e.institution("北岙卫生院", townshipA)
	e.user("staff.a", "", inst, scope.InstitutionStaff)
	c, err := e.svc.Login(context.Background(), Attempt{Username: "staff.a", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.svc.session(context.Background(), c.Session)
	if err != nil {
		t.Fatal(err)
	}
	if s.principal.InstitutionID != inst || s.principal.RegionCode != townshipA {
		t.Errorf("principal scope = %d/%q; want %d/%s", s.principal.InstitutionID, s.principal.RegionCode, inst, townshipA)
	}
	other := e.institution("灵昆卫生院", townshipB)
	e.user("staff.b", "", other, scope.InstitutionStaff)
	for _, tt := range []struct {
		caller *scope.Principal
		inst   int64
		want   int
	}{{scope.System(), inst, 1}, {scope.System(), other, 1}, {s.principal, inst, 1}, {s.principal, other, 0}} {
		if n, err := e.svc.CountInstitutionUsers(as(tt.caller), tt.inst); err != nil || n != tt.want {
			t.Errorf("CountInstitutionUsers(%s, %d) = %d, %v; want %d", tt.caller.Username, tt.inst, n, err, tt.want)
		}
	}
	// The regions package deactivates institutions: the cached session
	// sees it within the cache TTL, or at once after ForgetInstitution.
	if _, err := e.db.Exec("UPDATE institutions SET active = FALSE WHERE id = $1", inst); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(e.svc.opts.CacheTTL)
	if _, err := e.svc.session(context.Background(), c.Session); err == nil {
		t.Error("session survives its user's institution being deactivated")
	}
	c, err = e.svc.Login(context.Background(), Attempt{Username: "staff.b", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.session(context.Background(), c.Session); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec("UPDATE institutions SET active = FALSE WHERE id = $1", other); err != nil {
		t.Fatal(err)
	}
	e.svc.ForgetInstitution(other)
	if _, err := e.svc.session(context.Background(), c.Session); err == nil {
		t.Error("session survives ForgetInstitution after its institution was deactivated")
	}
}
