// Package auth signs users in and says who is asking: users with roles and
// one scope (a region or an institution), argon2id passwords, browser
// sessions with CSRF protection, throttling of failed logins per client and
// per account, and API bearer tokens that carry exactly their user's roles
// and scope (DESIGN.md §2). Its Middleware puts the caller's scope.Principal into
// every request's context.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

//go:embed messages.json
var messageFiles embed.FS

//go:embed templates/*.html
var templateFiles embed.FS

// Migrations creates the users, sessions and api_tokens tables. Apply it
// after regions.Migrations (users reference institutions).
var Migrations = storage.Migrations{Module: "auth", FS: mustSub(migrationFiles, "migrations")}

// Messages are the auth module's translations.
var Messages = locale.Source{FS: messageFiles, Name: "messages.json"}

// Templates are the auth module's pages.
var Templates = web.Templates{FS: templateFiles, Pattern: "templates/*.html"}

// Cookie names.
const (
	SessionCookie = "shaobing_session"
	// LoginCSRFCookie holds the double-submit token that protects the login
	// form, which is posted before there is a session to hold a token.
	LoginCSRFCookie = "shaobing_csrf"
	// DeviceCookie marks a browser that has signed in before, which the
	// account lock then does not hold back (see throttle.go).
	DeviceCookie = "shaobing_device"
)

// TokenPrefix starts every API token, so a leaked one is easy to recognise
// (and for secret scanners to find).
const TokenPrefix = "sbt_"

// Options tune sign-in; zero fields take the defaults.
type Options struct {
	IdleTimeout     time.Duration // a session ends after this long unused (30m)
	AbsoluteTimeout time.Duration // and this long after sign-in in any case (12h)
	MaxFailedLogins int           // consecutive failures that lock the account (5)
	LockoutDuration time.Duration // how long a lock lasts (15m)
	// MaxClientFailures failed sign-ins from one client address within
	// ClientWindow hold that address back (20 in 15m); see throttle.go.
	MaxClientFailures int
	ClientWindow      time.Duration
	// Hash sets argon2id's cost for new hashes (DefaultHashParams); tests
	// lower it to stay fast.
	Hash HashParams
	// CacheTTL is how long a checked token or session is trusted without
	// reading the database again (10s); see cache.go. It bounds how late
	// this instance sees a revocation made by another instance.
	CacheTTL time.Duration
}

func (o *Options) defaults() {
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.AbsoluteTimeout <= 0 {
		o.AbsoluteTimeout = 12 * time.Hour
	}
	if o.MaxFailedLogins <= 0 {
		o.MaxFailedLogins = 5
	}
	if o.LockoutDuration <= 0 {
		o.LockoutDuration = 15 * time.Minute
	}
	if o.MaxClientFailures <= 0 {
		o.MaxClientFailures = 20
	}
	if o.ClientWindow <= 0 {
		o.ClientWindow = 15 * time.Minute
	}
	if o.Hash == (HashParams{}) {
		o.Hash = DefaultHashParams
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = 10 * time.Second
	}
}

// touchEvery is how stale last_seen_at (and a token's last_used_at) may get
// before a request writes it again: sliding the idle timeout must not turn
// every read into a write (SQLite has one writer). So a session ends between
// IdleTimeout-touchEvery and IdleTimeout after its last request.
const touchEvery = time.Minute

// Service is the user store, the sign-in rules and the auth pages and API.
type Service struct {
	db    *storage.DB
	tree  *regions.Tree
	shell *web.Shell
	audit *audit.Log
	now   func() time.Time
	opts  Options
	hash  *hasher
	// Recently checked credentials by digest, so that requests need no
	// database round trip (cache.go).
	tokens   *cache[*tokenEntry]
	sessions *cache[*sessionEntry]
}

// New returns the service; now is the clock (time.Now when nil). shell may
// be nil when only the store is used (the CLI); the pages and Middleware need it.
func New(db *storage.DB, tree *regions.Tree, shell *web.Shell, now func() time.Time, opts Options) *Service {
	if now == nil {
		now = time.Now
	}
	opts.defaults()
	return &Service{
		db: db, tree: tree, shell: shell, now: now, opts: opts,
		audit: audit.New(db, now),
		// Two hashes at a time at 64 MiB each bounds sign-in memory on a
		// small server; further logins wait their turn.
		hash:     newHasher(opts.Hash, 2),
		tokens:   newCache[*tokenEntry](opts.CacheTTL, maxCached),
		sessions: newCache[*sessionEntry](opts.CacheTTL, maxCached),
	}
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest is the stored form of a secret: SHA-256, hex. The secrets are 256
// random bits, so a plain hash is enough (no salt or stretching needed).
func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
