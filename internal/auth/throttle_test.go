package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
)

// attempt signs in as username from addr, with a device cookie value.
func (e *env) attempt(username, pw, addr, device string) (SignedIn, error) {
	return e.svc.Login(context.Background(), Attempt{Username: username, Password: pw, ClientAddr: addr, Device: device})
}

// throttledFor returns how long err says to wait, or 0 when err is not a
// throttle refusal.
func throttledFor(err error) time.Duration {
	var th *Throttled
	if apperr.Is(err, apperr.TooMany) && errors.As(err, &th) {
		return th.After
	}
	return 0
}

// One address hammering an account is throttled after its limit, and
// cannot lock out the browser the user signs in with every day.
func TestClientThrottle(t *testing.T) {
	e := newEnv(t, false)
	u := e.user("sampler.a", townshipA, 0, scope.Sampler)
	const attacker, point = "203.0.113.9", "198.51.100.7"
	// The sampling point's tablet has signed in before.
	tablet, err := e.attempt("sampler.a", password, point, "")
	if err != nil {
		t.Fatal(err)
	}
	start := e.clock.Now()
	for i := range 20 {
		if i == 10 {
			e.clock.Advance(5 * time.Minute)
		}
		if _, err := e.attempt("sampler.a", "wrong password!", attacker, ""); err != ErrLoginFailed {
			t.Fatalf("failure %d from the attacker = %v; want ErrLoginFailed", i+1, err)
		}
	}
	// Over the limit: refused before anything is checked — the right
	// password and an unknown username get the same answer, and the wait
	// lasts until the oldest failure leaves the 15-minute window.
	for _, tt := range []struct{ username, pw string }{{"sampler.a", "wrong password!"}, {"sampler.a", password}, {"nobody", password}} {
		_, err := e.attempt(tt.username, tt.pw, attacker, "")
		if got := throttledFor(err); got != 10*time.Minute {
			t.Errorf("attacker's next attempt (%s) = %v, waiting %v; want 429 for 10m", tt.username, err, got)
		}
	}
	var rows int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM login_failures").Scan(&rows); err != nil || rows != 20 {
		t.Errorf("login_failures rows = %d, %v; want 20 (refused attempts are not counted)", rows, err)
	}
	// The attacker's failures locked the account for new browsers ...
	if _, err := e.attempt("sampler.a", password, "192.0.2.44", ""); err != ErrLoginFailed {
		t.Errorf("new browser during the lock = %v; want ErrLoginFailed", err)
	}
	// ... but the tablet, from another address, signs in.
	again, err := e.attempt("sampler.a", password, point, tablet.Device)
	if err != nil {
		t.Fatalf("the tablet cannot sign in while an attacker hammers the account: %v", err)
	}
	if again.Device == tablet.Device || !validDevice(again.Device) {
		t.Errorf("device cookie not renewed at sign-in")
	}
	for _, tt := range []struct {
		device string
		want   bool
	}{{tablet.Device, false}, {again.Device, true}} {
		if got, err := e.svc.trusted(context.Background(), tt.device, u.ID, e.clock.Now()); err != nil || got != tt.want {
			t.Errorf("trusted(device) = %v, %v; want %v (the value changes at each sign-in)", got, err, tt.want)
		}
	}

	// The window slides: once the first ten failures are 15 minutes old
	// the attacker gets ten more tries, then waits for the second ten.
	e.clock.Advance(start.Add(15 * time.Minute).Sub(e.clock.Now()))
	for i := range 10 {
		if _, err := e.attempt("nobody", "x", attacker, ""); err != ErrLoginFailed {
			t.Fatalf("attempt %d after the window slid = %v; want ErrLoginFailed", i+1, err)
		}
	}
	if got := throttledFor(func() error { _, err := e.attempt("nobody", "x", attacker, ""); return err }()); got != 5*time.Minute {
		t.Errorf("wait after 20 more failures = %v; want 5m", got)
	}
	// Only the failure that tripped the throttle is audited as such.
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE detail LIKE '%client throttled%'").Scan(&n); err != nil || n != 2 {
		t.Errorf("throttle trips audited: %d, %v; want 2", n, err)
	}
}

// A guess spread over many addresses is still stopped by the account
// lock, and a stolen device cookie allows only a few guesses of its own.
func TestDistributedGuess(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	trusted, err := e.attempt("lab.a", password, "10.1.0.1", "")
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return "192.0.2." + string(rune('0'+i/10)) + string(rune('0'+i%10)) }
	for i := range 5 {
		if _, err := e.attempt("lab.a", "guess number "+addr(i), addr(i), ""); err != ErrLoginFailed {
			t.Fatalf("guess %d = %v", i, err)
		}
	}
	// Locked: a right guess from yet another address fails like a wrong one.
	for i := 5; i < 8; i++ {
		if _, err := e.attempt("lab.a", password, addr(i), ""); err != ErrLoginFailed {
			t.Errorf("right password from %s during the lock = %v; want ErrLoginFailed", addr(i), err)
		}
	}
	// The stolen device cookie is good for MaxFailedLogins wrong guesses,
	// spread over any addresses, then is no longer trusted.
	for i := 10; i < 15; i++ {
		if _, err := e.attempt("lab.a", "guess number "+addr(i), addr(i), trusted.Device); err != ErrLoginFailed {
			t.Fatalf("device guess %d = %v", i, err)
		}
	}
	if _, err := e.attempt("lab.a", password, addr(20), trusted.Device); err != ErrLoginFailed {
		t.Errorf("right password with a device cookie past its failures, during the lock = %v; want ErrLoginFailed", err)
	}
	e.clock.Advance(15 * time.Minute)
	if _, err := e.attempt("lab.a", password, addr(21), ""); err != nil {
		t.Errorf("sign-in after the lock: %v", err)
	}
}

func TestLoginThrottledPage(t *testing.T) {
	e := newEnv(t, true)
	e.user("lab.a", townshipA, 0, scope.Lab)
	b := e.browser()
	_, page := b.get("/login")
	form := url.Values{"username": {"lab.a"}, "password": {"wrong password!"}, "csrf_token": {b.csrf(page)}}
	for range 20 {
		if res, _ := b.post("/login", form); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password = %d; want 401", res.StatusCode)
		}
	}
	form.Set("password", password)
	res, body := b.post("/login", form)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "900" || !strings.Contains(body, "请 15 分钟后再试") {
		t.Errorf("throttled login = %d, Retry-After %q; want 429, 900 and the message", res.StatusCode, res.Header.Get("Retry-After"))
	}
	// A sign-in leaves the device cookie: strict, HTTP only.
	e.clock.Advance(15 * time.Minute)
	res, _ = b.post("/login", form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login after the wait = %d", res.StatusCode)
	}
	checkCookie(t, res, DeviceCookie, http.SameSiteStrictMode, true)
}

func TestClientKey(t *testing.T) {
	tests := map[string]string{
		"203.0.113.9":           "203.0.113.9",
		"::ffff:203.0.113.9":    "203.0.113.9",
		"2001:db8:1:2:aaaa::1":  "2001:db8:1:2::/64",
		"2001:db8:1:2:bbbb::99": "2001:db8:1:2::/64",
		"fe80::1%eth0":          "fe80::/64",
		"not an address":        "not an address",
		"":                      "",
	}
	for in, want := range tests {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q) = %q; want %q", in, got, want)
		}
	}
}

// TestClientAddrProxy checks that sign-in counts a failure under the
// address audit's middleware chose: the peer, or behind a trusted proxy
// the proxy's hop.
func TestClientAddrProxy(t *testing.T) {
	e := newEnv(t, false)
	e.user("lab.a", townshipA, 0, scope.Lab)
	login := e.svc.shell.Page(e.svc.LoginSubmit)
	for _, tt := range []struct {
		trust bool
		want  string
	}{{false, "10.0.0.1"}, {true, "198.51.100.7"}} {
		form := url.Values{"username": {"lab.a"}, "password": {"wrong password!"}, "csrf_token": {"login-token"}}
		r := httptest.NewRequest("POST", "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(&http.Cookie{Name: LoginCSRFCookie, Value: "login-token"})
		r.RemoteAddr = "10.0.0.1:4242"
		r.Header.Add("X-Forwarded-For", "1.2.3.4, 198.51.100.7")
		w := httptest.NewRecorder()
		audit.MiddlewareWith(tt.trust)(e.svc.Middleware(login)).ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("TrustProxy=%v: wrong password = %d; want 401", tt.trust, w.Code)
		}
		var got string
		if err := e.db.QueryRow("SELECT client_key FROM login_failures ORDER BY at DESC, client_key LIMIT 1").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if _, err := e.db.Exec("DELETE FROM login_failures"); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("TrustProxy=%v: clientAddr = %q; want %q", tt.trust, got, tt.want)
		}
	}
}
