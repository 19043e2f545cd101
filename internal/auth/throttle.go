package auth

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/storage"
)

// How failed sign-ins are held back. Two limits work together:
//
//   - Per client: every failed sign-in (unknown user, wrong password, locked
//     or disabled account alike) counts against the client's address. After
//     Options.MaxClientFailures in a sliding Options.ClientWindow the address
//     is refused with 429 until the oldest of them leaves the window. Refused
//     attempts are neither checked nor counted anywhere, so one client can
//     guess only that many passwords per window, whatever usernames it tries.
//   - Per account: Options.MaxFailedLogins consecutive wrong passwords lock
//     the account for Options.LockoutDuration, which stops a guess spread
//     over many addresses. The lock holds back only browsers that have not
//     signed in to this account before: a successful sign-in leaves a device
//     cookie, and a browser presenting it for this user is let through the
//     lock ("trusted"). Its own wrong passwords are counted on the device,
//     not the account, and MaxFailedLogins of them make it untrusted again.
//     So someone who only knows a username can lock out new browsers, but
//     not the sampling point's tablet that signs in every day. A successful
//     sign-in clears the account's count and lock.
//
// The state lives in the database (login_failures, trusted_devices,
// users.failed_logins) because several app servers share it. The check and
// the count are separate statements, so concurrent attempts may overshoot a
// limit by the few that run at once (hashing admits two at a time).

// deviceLifetime is how long a browser stays trusted after its last
// successful sign-in to an account.
const deviceLifetime = 180 * 24 * time.Hour

// Throttled is the cause of a sign-in refused because its client failed too
// often: After says when the client may try again.
type Throttled struct{ After time.Duration }

func (t *Throttled) Error() string { return "auth: client throttled for " + t.After.String() }

// errThrottled wraps a Throttled as the 429 a handler answers.
func errThrottled(after time.Duration) error {
	return apperr.Wrap(&Throttled{After: after}, apperr.TooMany, "too many failed sign-ins from your address; try again later")
}

// clientKey is what the client throttle counts under: the IP address, or
// for IPv6 its /64 network, which one subscriber usually holds whole (an
// address per request would otherwise cost nothing). Anything that is not
// an IP address is counted as given.
func clientKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// clientWait returns how long the client must wait before its next attempt
// is checked: zero while it has fewer than MaxClientFailures failures in
// the window; else until the MaxClientFailures-th most recent one leaves it.
func (s *Service) clientWait(ctx context.Context, client string, now time.Time) (time.Duration, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT at FROM login_failures WHERE client_key = $1 AND at > $2 ORDER BY at DESC LIMIT $3",
		client, storage.Millis(now.Add(-s.opts.ClientWindow)), s.opts.MaxClientFailures)
	if err != nil {
		return 0, fmt.Errorf("auth: read client failures: %w", err)
	}
	defer rows.Close()
	var n int
	var oldest int64
	for rows.Next() {
		if err := rows.Scan(&oldest); err != nil {
			return 0, fmt.Errorf("auth: read client failures: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("auth: read client failures: %w", err)
	}
	if n < s.opts.MaxClientFailures {
		return 0, nil
	}
	return storage.FromMillis(oldest).Add(s.opts.ClientWindow).Sub(now), nil
}

// failLogin records a failed sign-in: one more failure for the client (and
// its old ones pruned), then count — the account's or the device's counter,
// or nil — and the audit entry, all in one transaction. It returns
// ErrLoginFailed.
func (s *Service) failLogin(ctx context.Context, client string, now time.Time, e audit.Entry, count func(context.Context, *sql.Tx, *audit.Entry) error) error {
	// A client that hangs up before the answer must still be counted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM login_failures WHERE client_key = $1 AND at <= $2",
			client, storage.Millis(now.Add(-s.opts.ClientWindow))); err != nil {
			return fmt.Errorf("auth: prune client failures: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO login_failures (client_key, at) VALUES ($1, $2)", client, storage.Millis(now)); err != nil {
			return fmt.Errorf("auth: count client failure: %w", err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM login_failures WHERE client_key = $1", client).Scan(&n); err != nil {
			return fmt.Errorf("auth: count client failures: %w", err)
		}
		if count != nil {
			if err := count(ctx, tx, &e); err != nil {
				return err
			}
		}
		if n == s.opts.MaxClientFailures {
			// Only the failure that trips the throttle is noted: refused
			// attempts are not audited, so hammering cannot flood the log.
			e.Detail += "; client throttled"
		}
		return s.audit.Record(ctx, tx, e)
	})
	if err != nil {
		return err
	}
	return ErrLoginFailed
}

// countAccountFailure counts a wrong password from an untrusted client on
// the account; the failure that reaches the limit locks the account and
// starts the count again. One UPDATE does it, so concurrent attempts cannot
// slip past the limit.
func (s *Service) countAccountFailure(userID int64, now time.Time) func(context.Context, *sql.Tx, *audit.Entry) error {
	return func(ctx context.Context, tx *sql.Tx, e *audit.Entry) error {
		var locked sql.NullInt64
		err := tx.QueryRowContext(ctx, `UPDATE users SET
			failed_logins = CASE WHEN failed_logins + 1 >= $1 THEN 0 ELSE failed_logins + 1 END,
			locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END
			WHERE id = $3 RETURNING locked_until`,
			s.opts.MaxFailedLogins, storage.Millis(now.Add(s.opts.LockoutDuration)), userID).Scan(&locked)
		if err != nil {
			return fmt.Errorf("auth: count failed login: %w", err)
		}
		if locked.Valid && locked.Int64 > storage.Millis(now) {
			e.Detail += "; account locked"
		}
		return nil
	}
}

// countDeviceFailure counts a wrong password from a trusted device on the
// device; the failure that reaches the limit makes it untrusted.
func (s *Service) countDeviceFailure(device string, userID int64) func(context.Context, *sql.Tx, *audit.Entry) error {
	return func(ctx context.Context, tx *sql.Tx, e *audit.Entry) error {
		var n int
		err := tx.QueryRowContext(ctx, "UPDATE trusted_devices SET failures = failures + 1 WHERE device = $1 AND user_id = $2 RETURNING failures",
			digest(device), userID).Scan(&n)
		if err != nil {
			return fmt.Errorf("auth: count device failure: %w", err)
		}
		if n >= s.opts.MaxFailedLogins {
			if _, err := tx.ExecContext(ctx, "DELETE FROM trusted_devices WHERE device = $1 AND user_id = $2", digest(device), userID); err != nil {
				return fmt.Errorf("auth: untrust device: %w", err)
			}
			e.Detail += "; device no longer trusted"
		}
		return nil
	}
}

// trusted reports whether device (a device cookie's value) has signed in
// to the user's account within deviceLifetime and is still trusted.
func (s *Service) trusted(ctx context.Context, device string, userID int64, now time.Time) (bool, error) {
	if !validDevice(device) {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM trusted_devices WHERE device = $1 AND user_id = $2 AND last_login_at > $3",
		digest(device), userID, storage.Millis(now.Add(-deviceLifetime))).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("auth: read device: %w", err)
	}
	return n > 0, nil
}

// trustDevice makes the browser trusted for the user after a successful
// sign-in and returns its new device cookie value. The value changes at
// every sign-in (the browser's other accounts move with it), so a value
// planted in a browser or copied from one stops working.
func (s *Service) trustDevice(ctx context.Context, tx *sql.Tx, old string, userID int64, now time.Time) (string, error) {
	device := randomToken(32)
	if validDevice(old) {
		if _, err := tx.ExecContext(ctx, "UPDATE trusted_devices SET device = $1 WHERE device = $2", digest(device), digest(old)); err != nil {
			return "", fmt.Errorf("auth: renew device: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO trusted_devices (device, user_id, created_at, last_login_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (device, user_id) DO UPDATE SET last_login_at = excluded.last_login_at, failures = 0`,
		digest(device), userID, storage.Millis(now))
	if err != nil {
		return "", fmt.Errorf("auth: trust device: %w", err)
	}
	return device, nil
}

// validDevice reports whether v looks like a device cookie value (32 random
// bytes, base64url).
func validDevice(v string) bool { return len(v) == 43 }

// retryAfter is a Retry-After header value: whole seconds, rounded up.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
