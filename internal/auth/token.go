package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// Token is an API token as its owner sees it (never the secret).
type Token struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
}

// Active reports whether the token still works at now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

const maxTokenName = 100

// CreateToken makes an API token for a user and returns it with its secret,
// which is shown this once and stored only as a digest. Users make tokens
// for themselves; only the system (the CLI) makes them for others. A zero
// expiresAt means the token does not expire.
func (s *Service) CreateToken(ctx context.Context, userID int64, name string, expiresAt time.Time) (Token, string, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return Token{}, "", err
	}
	if !p.IsSystem() && (p.UserID == 0 || p.UserID != userID) {
		return Token{}, "", apperr.New(apperr.Forbidden, "you can only make tokens for yourself")
	}
	if p.TokenID != 0 {
		// A token must not mint tokens that outlive its own revocation.
		return Token{}, "", apperr.New(apperr.Forbidden, "sign in to make a token")
	}
	name = strings.TrimSpace(name)
	var probs apperr.Problems
	switch {
	case name == "":
		probs.Add("name", "required", "required")
	case utf8.RuneCountInString(name) > maxTokenName:
		probs.Add("name", "token_name.too_long", "at most %v characters", maxTokenName)
	}
	now := s.now()
	if !expiresAt.IsZero() && !expiresAt.After(now) {
		probs.Add("expires_at", "token.expiry_past", "the expiry must be in the future")
	}
	if err := probs.Err(); err != nil {
		return Token{}, "", err
	}
	secret := TokenPrefix + randomToken(32)
	t := Token{Name: name, CreatedAt: storage.FromMillis(storage.Millis(now))}
	if !expiresAt.IsZero() {
		t.ExpiresAt = storage.FromMillis(storage.Millis(expiresAt))
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at)
			SELECT id, $2, $3, $4, $5 FROM users WHERE id = $1 AND NOT disabled RETURNING id`,
			userID, name, digest(secret), storage.Millis(now), storage.NullMillis(expiresAt)).Scan(&t.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("no such user")
		}
		if err != nil {
			return fmt.Errorf("auth: insert token: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "token.create", ObjectType: "api_token", ObjectID: strconv.FormatInt(t.ID, 10),
			Detail: "for user " + strconv.FormatInt(userID, 10)})
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// RevokeToken ends one of the caller's own tokens (the system may end any).
func (s *Service) RevokeToken(ctx context.Context, id int64) error {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var a storage.Args
		q := "UPDATE api_tokens SET revoked_at = " + a.Add(storage.Millis(s.now())) + " WHERE id = " + a.Add(id) + " AND revoked_at IS NULL"
		if !p.IsSystem() {
			q += " AND user_id = " + a.Add(p.UserID)
		}
		res, err := tx.ExecContext(ctx, q, a.Values()...)
		if err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return apperr.NotFoundf("no such token")
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "token.revoke", ObjectType: "api_token", ObjectID: strconv.FormatInt(id, 10)})
	})
	// Even after an error: a failed commit may still have committed.
	s.tokens.drop(func(t *tokenEntry) bool { return t.id == id })
	return err
}

// Tokens lists the caller's own tokens, newest first.
func (s *Service) Tokens(ctx context.Context) ([]Token, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at, last_used_at, expires_at, revoked_at
		FROM api_tokens WHERE user_id = $1 ORDER BY id DESC`, p.UserID)
	if err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created int64
		var used, expires, revoked sql.NullInt64
		if err := rows.Scan(&t.ID, &t.Name, &created, &used, &expires, &revoked); err != nil {
			return nil, fmt.Errorf("auth: list tokens: %w", err)
		}
		t.CreatedAt = storage.FromMillis(created)
		t.LastUsedAt = storage.FromNullMillis(used)
		t.ExpiresAt = storage.FromNullMillis(expires)
		t.RevokedAt = storage.FromNullMillis(revoked)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	return out, nil
}

// tokenPrincipal returns the principal of a bearer token: exactly its
// user's roles and scope. Unknown, revoked and expired tokens, and tokens of
// users who may no longer act, are errNoSession. A token checked within
// Options.CacheTTL is not read again, but its expiry is checked every time.
func (s *Service) tokenPrincipal(ctx context.Context, secret string) (*scope.Principal, error) {
	if !strings.HasPrefix(secret, TokenPrefix) {
		return nil, errNoSession
	}
	hash := digest(secret)
	now := s.now()
	t, ok := s.tokens.get(hash, now)
	if !ok {
		gen := s.tokens.generation()
		var err error
		if t, err = s.readToken(ctx, hash); err != nil {
			return nil, err
		}
		if t.live(now) {
			s.tokens.put(hash, t, gen, now)
		}
	}
	if !t.live(now) {
		return nil, errNoSession
	}
	if claimed, release := claimTouch(&t.lastUsed, now); claimed {
		// The condition keeps other instances from repeating the write.
		if _, err := s.db.ExecContext(ctx, "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)",
			storage.Millis(now), t.id, storage.Millis(now.Add(-touchEvery))); err != nil {
			release()
			return nil, fmt.Errorf("auth: touch token: %w", err)
		}
	}
	return principalOf(t.principal), nil
}

// live reports whether the token has not expired at now.
func (t *tokenEntry) live(now time.Time) bool {
	return t.expires.IsZero() || now.Before(t.expires)
}

// readToken reads a token by its digest; a revoked token, or one whose user
// may not act, is errNoSession.
func (s *Service) readToken(ctx context.Context, hash string) (*tokenEntry, error) {
	var a account
	var t tokenEntry
	var used, expires, revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT t.id, t.last_used_at, t.expires_at, t.revoked_at, "+accountColumns+
		" FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN institutions i ON i.id = u.institution_id WHERE t.token_hash = $1",
		hash).Scan(append([]any{&t.id, &used, &expires, &revoked}, a.scanFields()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read token: %w", err)
	}
	p := a.principal()
	if p == nil || revoked.Valid {
		return nil, errNoSession
	}
	p.TokenID = t.id
	t.principal = *p
	t.expires = storage.FromNullMillis(expires)
	t.lastUsed.Store(used.Int64)
	return &t, nil
}
