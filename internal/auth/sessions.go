package auth

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// Session is one of a user's signed-in browsers, as its owner sees it.
type Session struct {
	// ID is the stored id: the digest of the cookie, which names the
	// session in forms but does not let anyone sign in with it.
	ID         string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ClientAddr string
	UserAgent  string
	// Current marks the session of the request that lists them.
	Current bool
}

// Browser summarises the user agent for people: "Chrome · Android".
func (s Session) Browser() string { return browserSummary(s.UserAgent) }

// Sessions lists the caller's active sessions, most recently used first;
// current is the cookie value of the caller's own session ("" for none),
// which is marked.
func (s *Service) Sessions(ctx context.Context, current string) ([]Session, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	rows, err := s.db.QueryContext(ctx, `SELECT id, created_at, last_seen_at, client_addr, user_agent FROM sessions
		WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3 ORDER BY last_seen_at DESC, created_at DESC`,
		p.UserID, storage.Millis(now), storage.Millis(now.Add(-s.opts.IdleTimeout)))
	if err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		var x Session
		var created, seen int64
		if err := rows.Scan(&x.ID, &created, &seen, &x.ClientAddr, &x.UserAgent); err != nil {
			return nil, fmt.Errorf("auth: list sessions: %w", err)
		}
		x.CreatedAt, x.LastSeenAt = storage.FromMillis(created), storage.FromMillis(seen)
		x.Current = current != "" && x.ID == digest(current)
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auth: list sessions: %w", err)
	}
	return out, nil
}

// EndSession signs out one of the caller's own sessions, by its ID; another
// user's session is not found.
func (s *Service) EndSession(ctx context.Context, id string) error {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE id = $1 AND user_id = $2", id, p.UserID)
		if err != nil {
			return fmt.Errorf("auth: end session: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return apperr.NotFoundf("no such session")
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "session.revoke", ObjectType: "user", ObjectID: strconv.FormatInt(p.UserID, 10),
			Detail: "one session"})
	})
	// Even after an error: a failed commit may still have committed.
	s.sessions.remove(id)
	return err
}

// EndOtherSessions signs out every session of the caller but the one whose
// cookie value is current, and returns how many ended.
func (s *Service) EndOtherSessions(ctx context.Context, current string) (int, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return 0, err
	}
	if p.UserID == 0 {
		return 0, apperr.New(apperr.Forbidden, "only a user has sessions")
	}
	return s.endSessions(ctx, p.UserID, "DELETE FROM sessions WHERE user_id = $1 AND id <> $2", p.UserID, digest(current))
}

// EndUserSessions signs out every session of a user in the admin caller's
// scope (others are not found) and returns how many ended. The user can
// sign in again; disable the user to keep them out.
func (s *Service) EndUserSessions(ctx context.Context, userID int64) (int, error) {
	if _, err := s.GetUser(ctx, userID); err != nil { // admin only, and in scope
		return 0, err
	}
	return s.endSessions(ctx, userID, "DELETE FROM sessions WHERE user_id = $1", userID)
}

// endSessions runs a DELETE of userID's sessions and audits how many ended.
func (s *Service) endSessions(ctx context.Context, userID int64, query string, args ...any) (int, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("auth: end sessions: %w", err)
		}
		if n, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("auth: end sessions: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "session.revoke", ObjectType: "user", ObjectID: strconv.FormatInt(userID, 10),
			Detail: strconv.FormatInt(n, 10) + " sessions"})
	})
	s.sessions.drop(func(e *sessionEntry) bool { return e.principal.UserID == userID })
	return int(n), err
}

// countSessions counts a user's active sessions, for the user's detail
// page; the caller has checked the user is in scope.
func (s *Service) countSessions(ctx context.Context, userID int64) (int, error) {
	now := s.now()
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND expires_at > $2 AND last_seen_at > $3",
		userID, storage.Millis(now), storage.Millis(now.Add(-s.opts.IdleTimeout))).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("auth: count sessions: %w", err)
	}
	return n, nil
}

// browserSummary names the browser and system a user agent string claims,
// for people to recognise their devices; "" when it names neither. The
// order matters: Edge and WeChat also say "Chrome", Chrome also "Safari".
func browserSummary(ua string) string {
	first := func(pairs ...string) string {
		for i := 0; i < len(pairs); i += 2 {
			if strings.Contains(ua, pairs[i]) {
				return pairs[i+1]
			}
		}
		return ""
	}
	browser := first("MicroMessenger", "WeChat", "DingTalk", "DingTalk", "Edg/", "Edge", "Firefox/", "Firefox",
		"OPR/", "Opera", "Chrome/", "Chrome", "Chromium/", "Chromium", "Safari/", "Safari", "curl/", "curl")
	system := first("Windows", "Windows", "HarmonyOS", "HarmonyOS", "Android", "Android", "iPhone", "iOS", "iPad", "iPadOS",
		"Mac OS X", "macOS", "CrOS", "ChromeOS", "Linux", "Linux")
	switch {
	case browser != "" && system != "":
		return browser + " · " + system
	case browser != "":
		return browser
	default:
		return system
	}
}
