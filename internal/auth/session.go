package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// ErrLoginFailed is the one answer to every failed login: it does not say
// whether the username exists, the password was wrong or the account is
// locked or disabled.
var ErrLoginFailed = apperr.New(apperr.Unauthorized, "wrong username or password, or the account is locked for a while; try again later")

// errNoSession means the request carries no valid session or token.
var errNoSession = apperr.New(apperr.Unauthorized, "sign in first")

// account is what sign-in needs of a user row.
type account struct {
	id          int64
	username    string
	hash        string
	roles       string
	region      string
	instID      int64
	instRegion  sql.NullString
	instActive  sql.NullBool
	disabled    bool
	lockedUntil sql.NullInt64
}

const accountColumns = `u.id, u.username, u.password_hash, u.roles, u.region_code, COALESCE(u.institution_id, 0),
	i.region_code, i.active, u.disabled, u.locked_until`

func (a *account) scanFields() []any {
	return []any{&a.id, &a.username, &a.hash, &a.roles, &a.region, &a.instID, &a.instRegion, &a.instActive, &a.disabled, &a.lockedUntil}
}

// principal returns the account's principal, or nil when it may not act:
// disabled, no roles left, or its institution gone or deactivated.
func (a *account) principal() *scope.Principal {
	roles := parseRoles(a.roles)
	if a.disabled || len(roles) == 0 {
		return nil
	}
	p := &scope.Principal{UserID: a.id, Username: a.username, Roles: roles, RegionCode: a.region}
	if a.instID != 0 {
		if !a.instActive.Valid || !a.instActive.Bool || !a.instRegion.Valid {
			return nil
		}
		p.InstitutionID = a.instID
		p.RegionCode = a.instRegion.String
	}
	return p
}

// Attempt is one sign-in attempt.
type Attempt struct {
	Username   string
	Password   string
	ClientAddr string // the client's IP address
	UserAgent  string
	// Device is the DeviceCookie value the browser sent, "" for none.
	Device string
}

// SignedIn is a successful sign-in: the values of the cookies to set.
type SignedIn struct {
	Session string // the session cookie
	Device  string // the device cookie, new at every sign-in
}

// Login checks a username and password and starts a session. A client
// with too many recent failures is refused with apperr.TooMany (cause
// *Throttled) before anything is checked; an account locked by failures
// refuses browsers it does not trust even with the right password (see
// throttle.go for the scheme). Every other failure answers ErrLoginFailed,
// the same whether or not the username exists.
func (s *Service) Login(ctx context.Context, at Attempt) (SignedIn, error) {
	username := strings.ToLower(strings.TrimSpace(at.Username))
	client := clientKey(at.ClientAddr)
	now := s.now()
	wait, err := s.clientWait(ctx, client, now)
	if err != nil {
		return SignedIn{}, err
	}
	if wait > 0 {
		return SignedIn{}, errThrottled(wait)
	}
	var a account
	err = s.db.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM users u LEFT JOIN institutions i ON i.id = u.institution_id WHERE u.username = $1",
		username).Scan(a.scanFields()...)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the time a real check takes, so timing does not tell
		// whether the username exists.
		if _, err := s.hash.verify(ctx, at.Password, ""); err != nil {
			return SignedIn{}, err
		}
		return SignedIn{}, s.failLogin(ctx, client, now, audit.Entry{Action: "user.login", Outcome: audit.Denied, Detail: "unknown username"}, nil)
	}
	if err != nil {
		return SignedIn{}, fmt.Errorf("auth: read user: %w", err)
	}
	ok, err := s.hash.verify(ctx, at.Password, a.hash)
	if err != nil {
		return SignedIn{}, fmt.Errorf("auth: user %d: %w", a.id, err)
	}
	trusted, err := s.trusted(ctx, at.Device, a.id, now)
	if err != nil {
		return SignedIn{}, err
	}
	denied := audit.Entry{Action: "user.login", ObjectType: "user", ObjectID: strconv.FormatInt(a.id, 10), Outcome: audit.Denied, RegionCode: a.region}
	switch {
	case a.lockedUntil.Valid && now.Before(storage.FromMillis(a.lockedUntil.Int64)) && !trusted:
		denied.Detail = "account locked"
		return SignedIn{}, s.failLogin(ctx, client, now, denied, nil)
	case !ok && trusted:
		denied.Detail = "wrong password from a trusted device"
		return SignedIn{}, s.failLogin(ctx, client, now, denied, s.countDeviceFailure(at.Device, a.id))
	case !ok:
		denied.Detail = "wrong password"
		return SignedIn{}, s.failLogin(ctx, client, now, denied, s.countAccountFailure(a.id, now))
	}
	p := a.principal()
	if p == nil {
		denied.Detail = "account disabled or without scope"
		return SignedIn{}, s.failLogin(ctx, client, now, denied, nil)
	}
	ctx = scope.WithPrincipal(ctx, p)
	var in SignedIn
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1", a.id); err != nil {
			return fmt.Errorf("auth: reset failed logins: %w", err)
		}
		if err := s.sweep(ctx, tx, now); err != nil {
			return err
		}
		var err error
		if in.Device, err = s.trustDevice(ctx, tx, at.Device, a.id, now); err != nil {
			return err
		}
		if in.Session, err = s.startSession(ctx, tx, a.id, now, at.ClientAddr, at.UserAgent); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "user.login", ObjectType: "user", ObjectID: strconv.FormatInt(a.id, 10)})
	})
	if err != nil {
		return SignedIn{}, err
	}
	return in, nil
}

// sweep deletes ended sessions, failures past the client window and
// devices unused for deviceLifetime; sign-in is rare enough to do it.
func (s *Service) sweep(ctx context.Context, tx *sql.Tx, now time.Time) error {
	if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
		storage.Millis(now), storage.Millis(now.Add(-s.opts.IdleTimeout))); err != nil {
		return fmt.Errorf("auth: sweep sessions: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM login_failures WHERE at <= $1", storage.Millis(now.Add(-s.opts.ClientWindow))); err != nil {
		return fmt.Errorf("auth: sweep client failures: %w", err)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM trusted_devices WHERE last_login_at <= $1", storage.Millis(now.Add(-deviceLifetime))); err != nil {
		return fmt.Errorf("auth: sweep devices: %w", err)
	}
	return nil
}

// startSession inserts a session for userID and returns its cookie value;
// only the value's digest is stored.
func (s *Service) startSession(ctx context.Context, q storage.Querier, userID int64, now time.Time, clientAddr, userAgent string) (string, error) {
	cookie := randomToken(32)
	if len(userAgent) > 256 {
		userAgent = userAgent[:256]
	}
	_, err := q.ExecContext(ctx, `INSERT INTO sessions (id, user_id, csrf_token, created_at, last_seen_at, expires_at, user_agent, client_addr)
		VALUES ($1, $2, $3, $4, $4, $5, $6, $7)`,
		digest(cookie), userID, randomToken(32), storage.Millis(now), storage.Millis(now.Add(s.opts.AbsoluteTimeout)), userAgent, clientAddr)
	if err != nil {
		return "", fmt.Errorf("auth: start session: %w", err)
	}
	return cookie, nil
}

// newSession starts a session for the signed-in caller, after ChangePassword
// ended the old ones.
func (s *Service) newSession(ctx context.Context, clientAddr, userAgent string) (string, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return "", err
	}
	return s.startSession(ctx, s.db, p.UserID, s.now(), clientAddr, userAgent)
}

// Logout ends the session whose cookie value is given.
func (s *Service) Logout(ctx context.Context, cookie string) error {
	id := digest(cookie)
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE id = $1", id)
		if err != nil {
			return fmt.Errorf("auth: end session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "user.logout"})
	})
	// Even after an error: a failed commit may still have committed.
	s.sessions.remove(id)
	return err
}

// session is a valid session found by its cookie.
type session struct {
	id        string
	csrf      string
	principal *scope.Principal
}

// session returns the valid session for a cookie value, sliding its idle
// timeout; an unknown, expired or idle session, or one whose user may no
// longer act, is errNoSession (and is deleted). A session checked within
// Options.CacheTTL is not read again, but both timeouts are checked every
// time.
func (s *Service) session(ctx context.Context, cookie string) (*session, error) {
	id := digest(cookie)
	now := s.now()
	e, ok := s.sessions.get(id, now)
	if !ok {
		gen := s.sessions.generation()
		var err error
		if e, err = s.readSession(ctx, id); err != nil {
			return nil, err
		}
		if s.live(e, now) {
			s.sessions.put(id, e, gen, now)
		}
	}
	if !s.live(e, now) {
		return nil, s.endSession(ctx, id)
	}
	if claimed, release := claimTouch(&e.lastSeen, now); claimed {
		// The condition keeps other instances from repeating the write.
		if _, err := s.db.ExecContext(ctx, "UPDATE sessions SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3",
			storage.Millis(now), id, storage.Millis(now.Add(-touchEvery))); err != nil {
			release()
			return nil, fmt.Errorf("auth: touch session: %w", err)
		}
	}
	return &session{id: id, csrf: e.csrf, principal: principalOf(e.principal)}, nil
}

// live reports whether a session has passed neither timeout at now.
func (s *Service) live(e *sessionEntry, now time.Time) bool {
	return now.Before(e.expires) && now.Before(storage.FromMillis(e.lastSeen.Load()).Add(s.opts.IdleTimeout))
}

// readSession reads a session by its id; errNoSession when there is none
// or its user may no longer act (and then it is deleted).
func (s *Service) readSession(ctx context.Context, id string) (*sessionEntry, error) {
	var a account
	e := sessionEntry{id: id}
	var lastSeen, expires int64
	err := s.db.QueryRowContext(ctx, "SELECT s.csrf_token, s.last_seen_at, s.expires_at, "+accountColumns+
		" FROM sessions s JOIN users u ON u.id = s.user_id LEFT JOIN institutions i ON i.id = u.institution_id WHERE s.id = $1", id).
		Scan(append([]any{&e.csrf, &lastSeen, &expires}, a.scanFields()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read session: %w", err)
	}
	p := a.principal()
	if p == nil {
		return nil, s.endSession(ctx, id)
	}
	e.principal = *p
	e.expires = storage.FromMillis(expires)
	e.lastSeen.Store(lastSeen)
	return &e, nil
}

// endSession deletes a session that ended and returns errNoSession.
func (s *Service) endSession(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM sessions WHERE id = $1", id)
	s.sessions.remove(id)
	if err != nil {
		return fmt.Errorf("auth: end session: %w", err)
	}
	return errNoSession
}

// PrincipalFor returns the principal of a user by name, for command-line
// work done on that user's behalf (import, export): the same roles and scope
// as their sessions and tokens, and audited as them. A disabled user, or one
// who may not act, is not found.
func (s *Service) PrincipalFor(ctx context.Context, username string) (*scope.Principal, error) {
	var a account
	err := s.db.QueryRowContext(ctx, "SELECT "+accountColumns+" FROM users u LEFT JOIN institutions i ON i.id = u.institution_id WHERE u.username = $1",
		strings.ToLower(strings.TrimSpace(username))).Scan(a.scanFields()...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apperr.NotFoundf("no user %q", username)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: look up %s: %w", username, err)
	}
	p := a.principal()
	if p == nil {
		return nil, apperr.NotFoundf("user %q is disabled or has no roles", username)
	}
	return p, nil
}
