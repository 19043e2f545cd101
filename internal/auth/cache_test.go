package auth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// instance is another Service on the test database, as a second server
// behind the same database would be; opts.Hash is set for speed.
func (e *env) instance(opts Options) *Service {
	opts.Hash = fastHash
	return New(e.db, e.svc.tree, e.svc.shell, e.clock.Now, opts)
}

// whoami sends GET /api/v1/me with a bearer token or a session cookie
// through svc's Middleware and describes the principal it was given:
// "refused", or the roles and scope.
func whoami(svc *Service, token, cookie string) string {
	var p *scope.Principal
	h := svc.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ = scope.FromContext(r.Context())
	}))
	req := httptest.NewRequest("GET", "/api/v1/me", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie})
	}
	h.ServeHTTP(httptest.NewRecorder(), req)
	if p == nil {
		return "refused"
	}
	return fmt.Sprintf("%v@%s", p.Roles, p.RegionCode)
}

// credential is one way a client authenticates: a token or a session.
type credential struct {
	name string
	// start returns a new token or session of u as (token, cookie).
	start func(e *env, u User) (string, string)
}

var credentials = []credential{
	{"token", func(e *env, u User) (string, string) {
		e.t.Helper()
		_, secret, err := e.svc.CreateToken(as(principal(u)), u.ID, "app", time.Time{})
		if err != nil {
			e.t.Fatal(err)
		}
		return secret, ""
	}},
	{"session", func(e *env, u User) (string, string) {
		e.t.Helper()
		in, err := e.svc.Login(context.Background(), Attempt{Username: u.Username, Password: password})
		if err != nil {
			e.t.Fatal(err)
		}
		return "", in.Session
	}},
}

// Changes made through the Service reach a warm cache at once.
func TestCacheDropsOnChange(t *testing.T) {
	const lab = "[lab]@" + townshipA
	tests := []struct {
		name string
		// change acts on user u, whose credential is (token, cookie), as
		// the district admin; it may skip credentials it does not apply to.
		change func(e *env, admin, u User, token, cookie string) error
		want   string
	}{
		{"token revoked", func(e *env, admin, u User, token, cookie string) error {
			if token == "" {
				return errSkip
			}
			tokens, err := e.svc.Tokens(as(principal(u)))
			if err != nil {
				return err
			}
			return e.svc.RevokeToken(as(principal(u)), tokens[0].ID)
		}, "refused"},
		{"signed out", func(e *env, admin, u User, token, cookie string) error {
			if cookie == "" {
				return errSkip
			}
			return e.svc.Logout(context.Background(), cookie)
		}, "refused"},
		{"session ended from the account page", func(e *env, admin, u User, token, cookie string) error {
			if cookie == "" {
				return errSkip
			}
			return e.svc.EndSession(as(principal(u)), digest(cookie))
		}, "refused"},
		{"other sessions ended", func(e *env, admin, u User, token, cookie string) error {
			if cookie == "" {
				return errSkip
			}
			_, err := e.svc.EndOtherSessions(as(principal(u)), "another browser's cookie")
			return err
		}, "refused"},
		{"admin ended the user's sessions", func(e *env, admin, u User, token, cookie string) error {
			if cookie == "" {
				return errSkip
			}
			_, err := e.svc.EndUserSessions(as(principal(admin)), u.ID)
			return err
		}, "refused"},
		{"user disabled", func(e *env, admin, u User, token, cookie string) error {
			return e.svc.SetDisabled(as(principal(admin)), u.ID, true)
		}, "refused"},
		{"password reset by an admin", func(e *env, admin, u User, token, cookie string) error {
			return e.svc.ResetPassword(as(principal(admin)), u.ID, "a new horse battery")
		}, "refused"},
		{"password changed", func(e *env, admin, u User, token, cookie string) error {
			if cookie == "" {
				return errSkip // a changed password ends sessions, not tokens
			}
			return e.svc.ChangePassword(as(principal(u)), password, "a new horse battery")
		}, "refused"},
		{"roles changed", func(e *env, admin, u User, token, cookie string) error {
			_, err := e.svc.UpdateUser(as(principal(admin)), u.ID, UserChange{Roles: &[]scope.Role{scope.Sampler}})
			return err
		}, "[sampler]@" + townshipA},
		{"scope changed", func(e *env, admin, u User, token, cookie string) error {
			region := townshipB
			_, err := e.svc.UpdateUser(as(principal(admin)), u.ID, UserChange{RegionCode: &region})
			return err
		}, "[lab]@" + townshipB},
		{"institution deactivated", func(e *env, admin, u User, token, cookie string) error {
			if _, err := e.db.Exec("UPDATE institutions SET active = FALSE WHERE id = $1", u.InstitutionID); err != nil {
				return err
			}
			e.svc.ForgetInstitution(u.InstitutionID)
			return nil
		}, "refused"},
	}
	// One database for all rows (creating one costs a second on
	// PostgreSQL): each row has its own user.
	e := newEnv(t, false)
	admin := e.user("admin", district, 0, scope.BureauAdmin)
	for _, c := range credentials {
		for i, tt := range tests {
			name := c.name + "/" + tt.name
			u := e.user(fmt.Sprintf("%s.%d", c.name, i), townshipA, 0, scope.Lab)
			if tt.name == "institution deactivated" {
				u = e.user(fmt.Sprintf("%s.staff.%d", c.name, i), "", e.institution(name, townshipA), scope.Lab)
			}
			token, cookie := c.start(e, u)
			if got := whoami(e.svc, token, cookie); got != lab {
				t.Errorf("%s: before the change: %s; want %s", name, got, lab)
				continue
			}
			if err := tt.change(e, admin, u, token, cookie); err == errSkip {
				continue
			} else if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if got := whoami(e.svc, token, cookie); got != tt.want {
				t.Errorf("%s: right after the change: %s; want %s", name, got, tt.want)
			}
		}
	}
}

// errSkip is a change's answer for a credential it does not apply to.
var errSkip = fmt.Errorf("does not apply")

// Another instance on the same database sees changes within the cache TTL,
// and no later.
func TestCacheOtherInstance(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *env, admin, u User, token, cookie string) error
		want   string
	}{
		{"revoked or signed out", func(e *env, admin, u User, token, cookie string) error {
			if token == "" {
				return e.svc.Logout(context.Background(), cookie)
			}
			tokens, err := e.svc.Tokens(as(principal(u)))
			if err != nil {
				return err
			}
			return e.svc.RevokeToken(as(principal(u)), tokens[0].ID)
		}, "refused"},
		{"user disabled", func(e *env, admin, u User, token, cookie string) error {
			return e.svc.SetDisabled(as(principal(admin)), u.ID, true)
		}, "refused"},
		{"roles changed", func(e *env, admin, u User, token, cookie string) error {
			_, err := e.svc.UpdateUser(as(principal(admin)), u.ID, UserChange{Roles: &[]scope.Role{scope.Sampler}})
			return err
		}, "[sampler]@" + townshipA},
	}
	e := newEnv(t, false)
	const ttl = 10 * time.Second
	other := e.instance(Options{CacheTTL: ttl})
	admin := e.user("admin", district, 0, scope.BureauAdmin)
	for _, c := range credentials {
		for i, tt := range tests {
			name := c.name + "/" + tt.name
			u := e.user(fmt.Sprintf("%s.%d", c.name, i), townshipA, 0, scope.Lab)
			token, cookie := c.start(e, u)
			const before = "[lab]@" + townshipA
			if got := whoami(other, token, cookie); got != before {
				t.Errorf("%s: before the change: %s; want %s", name, got, before)
				continue
			}
			if err := tt.change(e, admin, u, token, cookie); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			// Within the TTL the other instance still answers from its
			// cache: the documented bound, checked so that this test keeps
			// exercising the cache.
			e.clock.Advance(ttl - time.Millisecond)
			if got := whoami(other, token, cookie); got != before {
				t.Errorf("%s: within the TTL: %s; want the cached %s", name, got, before)
			}
			e.clock.Advance(time.Millisecond)
			if got := whoami(other, token, cookie); got != tt.want {
				t.Errorf("%s: after the TTL: %s; want %s", name, got, tt.want)
			}
		}
	}
}

// Expiry is checked on every request, also against a cached entry (the
// TTL here outlasts the credentials).
func TestCacheExpiry(t *testing.T) {
	e := newEnv(t, false)
	svc := e.instance(Options{CacheTTL: 24 * time.Hour})
	u := e.user("lab.a", townshipA, 0, scope.Lab)
	start := e.clock.Now()
	_, token, err := svc.CreateToken(as(principal(u)), u.ID, "short", start.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	in, err := svc.Login(context.Background(), Attempt{Username: u.Username, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	const lab = "[lab]@" + townshipA
	tests := []struct {
		name          string
		at            time.Duration // after start; the steps run in order
		token, cookie string
		want          string
	}{
		{"token before expiry", 0, token, "", lab},
		{"token a moment before expiry", time.Hour - time.Millisecond, token, "", lab},
		{"token at expiry", time.Hour, token, "", "refused"},
		// The session is used every 10 minutes throughout, so only the
		// absolute timeout can end it.
		{"session a moment before the absolute timeout", 12*time.Hour - time.Millisecond, "", in.Session, lab},
		{"session at the absolute timeout", 12 * time.Hour, "", in.Session, "refused"},
	}
	for _, tt := range tests {
		for e.clock.Now().Add(10 * time.Minute).Before(start.Add(tt.at)) {
			e.clock.Advance(10 * time.Minute)
			if got := whoami(svc, "", in.Session); got != lab {
				t.Fatalf("busy session at %v: %s", e.clock.Now().Sub(start), got)
			}
		}
		e.clock.Advance(start.Add(tt.at).Sub(e.clock.Now()))
		if got := whoami(svc, tt.token, tt.cookie); got != tt.want {
			t.Errorf("%s: %s; want %s", tt.name, got, tt.want)
		}
	}
}

// A session used every so often never idles out however long it lasts,
// and one left alone ends IdleTimeout after its last request, or up to the
// minute last_seen_at may lag before (40 minutes of use every 30s leave it
// lagging exactly a minute) — with entries refilled from the database on
// every request (cadence above the TTL) or held for hours.
func TestIdleTimeoutWithCache(t *testing.T) {
	tests := []struct {
		cadence, ttl time.Duration
		idle         time.Duration // after the last request
		want         string
	}{
		{30 * time.Second, 10 * time.Second, 29*time.Minute - time.Second, "[lab]@" + townshipA},
		{30 * time.Second, 10 * time.Second, 30 * time.Minute, "refused"},
		{30 * time.Second, time.Hour, 29*time.Minute - time.Second, "[lab]@" + townshipA},
		{30 * time.Second, time.Hour, 30 * time.Minute, "refused"},
		{5 * time.Second, 10 * time.Second, 29*time.Minute - time.Second, "[lab]@" + townshipA},
		{5 * time.Second, 10 * time.Second, 30 * time.Minute, "refused"},
		{7 * time.Minute, time.Hour, 29*time.Minute - time.Second, "[lab]@" + townshipA},
		{7 * time.Minute, time.Hour, 30 * time.Minute, "refused"},
	}
	e := newEnv(t, false)
	for i, tt := range tests {
		name := fmt.Sprintf("every %v, TTL %v, then %v idle", tt.cadence, tt.ttl, tt.idle)
		svc := e.instance(Options{CacheTTL: tt.ttl})
		u := e.user(fmt.Sprintf("lab.%d", i), townshipA, 0, scope.Lab)
		in, err := svc.Login(context.Background(), Attempt{Username: u.Username, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		// Use for longer than the idle timeout.
		for elapsed := time.Duration(0); elapsed < 40*time.Minute; elapsed += tt.cadence {
			e.clock.Advance(tt.cadence)
			if got := whoami(svc, "", in.Session); got != "[lab]@"+townshipA {
				t.Fatalf("%s: busy session after %v: %s", name, elapsed+tt.cadence, got)
			}
		}
		e.clock.Advance(tt.idle)
		if got := whoami(svc, "", in.Session); got != tt.want {
			t.Errorf("%s: %s; want %s", name, got, tt.want)
		}
	}
}

// countTouches installs triggers that count the writes of
// api_tokens.last_used_at and sessions.last_seen_at, and returns a function
// that reads the counts.
func countTouches(t *testing.T, db *storage.DB) func() (tokens, sessions int) {
	t.Helper()
	ddl := []string{
		"CREATE TABLE touches (tbl TEXT NOT NULL)",
		"CREATE TRIGGER count_token_touch AFTER UPDATE OF last_used_at ON api_tokens BEGIN INSERT INTO touches VALUES ('api_tokens'); END",
		"CREATE TRIGGER count_session_touch AFTER UPDATE OF last_seen_at ON sessions BEGIN INSERT INTO touches VALUES ('sessions'); END",
	}
	if db.Dialect == storage.Postgres {
		ddl = []string{
			"CREATE TABLE touches (tbl TEXT NOT NULL)",
			"CREATE FUNCTION count_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO touches VALUES (TG_TABLE_NAME); RETURN NULL; END $$",
			"CREATE TRIGGER count_token_touch AFTER UPDATE OF last_used_at ON api_tokens FOR EACH ROW EXECUTE FUNCTION count_touch()",
			"CREATE TRIGGER count_session_touch AFTER UPDATE OF last_seen_at ON sessions FOR EACH ROW EXECUTE FUNCTION count_touch()",
		}
	}
	for _, q := range ddl {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return func() (tokens, sessions int) {
		err := db.QueryRow("SELECT COUNT(CASE WHEN tbl = 'api_tokens' THEN 1 END), COUNT(CASE WHEN tbl = 'sessions' THEN 1 END) FROM touches").
			Scan(&tokens, &sessions)
		if err != nil {
			t.Fatal(err)
		}
		return tokens, sessions
	}
}

// Many concurrent requests, on two instances, write last_used_at and
// last_seen_at at most once a minute.
func TestTouchAtMostOncePerMinute(t *testing.T) {
	e := newEnv(t, false)
	touches := countTouches(t, e.db)
	other := e.instance(Options{})
	u := e.user("sampler.a", townshipA, 0, scope.Sampler)
	token, _ := credentials[0].start(e, u)
	_, cookie := credentials[1].start(e, u)
	tests := []struct {
		advance              time.Duration
		tokenWrites, session int // totals so far
	}{
		{0, 1, 0},                // the token's first use; the session was seen at sign-in
		{30 * time.Second, 1, 0}, // within the minute
		{31 * time.Second, 2, 1}, // 61s after the last writes
		{59 * time.Second, 2, 1}, // 59s after
		{2 * time.Second, 3, 2},  // 61s after
		{10 * time.Second, 3, 2}, // past the cache TTL: refilled, still no write
		{time.Millisecond, 3, 2}, // and again
		{50 * time.Second, 4, 3}, // 60.001s after
		{20 * time.Minute, 5, 4}, // a long pause (within the idle timeout)
		{100 * time.Millisecond, 5, 4},
	}
	for _, tt := range tests {
		e.clock.Advance(tt.advance)
		var wg sync.WaitGroup
		for g := range 8 {
			svc := e.svc
			if g%2 == 1 {
				svc = other
			}
			wg.Go(func() {
				for range 20 {
					if got := whoami(svc, token, ""); got == "refused" {
						t.Errorf("token refused")
					}
					if got := whoami(svc, "", cookie); got == "refused" {
						t.Errorf("session refused")
					}
				}
			})
		}
		wg.Wait()
		if tok, sess := touches(); tok != tt.tokenWrites || sess != tt.session {
			t.Errorf("after +%v: %d token and %d session writes; want %d and %d", tt.advance, tok, sess, tt.tokenWrites, tt.session)
		}
	}
}

func TestCacheBounds(t *testing.T) {
	now := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	c := newCache[int](10*time.Second, 3)
	for i := range 10 {
		c.put(fmt.Sprint(i), i, c.generation(), now)
	}
	if len(c.entries) != 3 {
		t.Errorf("%d entries; want the bound, 3", len(c.entries))
	}
	if v, ok := c.get("9", now); !ok || v != 9 {
		t.Errorf("the newest entry was evicted: %v, %v", v, ok)
	}
	gen := c.generation()
	c.remove("nothing") // any drop, as a revocation committing during a read
	c.put("stale", 1, gen, now)
	tests := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"stale", 0, false}, // read before a drop: not stored
		{"9", 10*time.Second - time.Millisecond, true},
		{"9", 10 * time.Second, false}, // past the TTL
	}
	for _, tt := range tests {
		if _, ok := c.get(tt.key, now.Add(tt.at)); ok != tt.want {
			t.Errorf("get(%q) at +%v = %v; want %v", tt.key, tt.at, ok, tt.want)
		}
	}
}

func TestClaimTouch(t *testing.T) {
	now := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		last int64 // stored Unix milliseconds; 0 for never
		want bool
	}{
		{"never used", 0, true},
		{"a minute ago", storage.Millis(now.Add(-touchEvery)), false},
		{"just over a minute ago", storage.Millis(now.Add(-touchEvery - time.Millisecond)), true},
		{"just now", storage.Millis(now), false},
	}
	for _, tt := range tests {
		var last atomic.Int64
		last.Store(tt.last)
		if got, _ := claimTouch(&last, now); got != tt.want {
			t.Errorf("%s: claimed = %v; want %v", tt.name, got, tt.want)
		}
	}

	// Of many requests at once, one writes; a failed write lets the next one try.
	var last atomic.Int64
	var claims atomic.Int32
	var release func()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if ok, r := claimTouch(&last, now); ok {
				claims.Add(1)
				mu.Lock()
				release = r
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if n := claims.Load(); n != 1 {
		t.Fatalf("%d requests claimed the write; want 1", n)
	}
	release()
	if ok, _ := claimTouch(&last, now); !ok {
		t.Error("no request may write after a failed write")
	}
}
