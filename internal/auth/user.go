package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

// User is an account as admins see it; the password hash never leaves the
// package.
type User struct {
	ID          int64        `json:"id"`
	Username    string       `json:"username"`
	DisplayName string       `json:"display_name"`
	Roles       []scope.Role `json:"roles"`
	// RegionCode is the user's region, or their institution's region.
	RegionCode      string    `json:"region_code"`
	InstitutionID   int64     `json:"institution_id,omitzero"`
	InstitutionName string    `json:"institution_name,omitzero"`
	Disabled        bool      `json:"disabled"`
	LockedUntil     time.Time `json:"locked_until,omitzero"`
	PasswordChanged time.Time `json:"password_changed_at"`
	CreatedAt       time.Time `json:"created_at"`
	CreatedBy       string    `json:"created_by"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// Locked reports whether failed logins have locked the account at now.
func (u User) Locked(now time.Time) bool { return !u.LockedUntil.IsZero() && now.Before(u.LockedUntil) }

// NewUser is the input for CreateUser. Exactly one of RegionCode and
// InstitutionID gives the user's scope.
type NewUser struct {
	Username      string       `json:"username"`
	DisplayName   string       `json:"display_name"`
	Password      string       `json:"password"`
	Roles         []scope.Role `json:"roles"`
	RegionCode    string       `json:"region_code"`
	InstitutionID int64        `json:"institution_id"`
}

var usernamePattern = regexp.MustCompile(`^[a-z0-9._-]{3,40}$`)

const maxDisplayName = 100

const userColumns = `u.id, u.username, u.display_name, u.roles, u.region_code, COALESCE(u.institution_id, 0), COALESCE(i.name, ''),
	u.disabled, u.locked_until, u.password_changed_at, u.created_at, u.created_by, u.updated_at`

const userFrom = ` FROM users u LEFT JOIN institutions i ON i.id = u.institution_id`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var roles string
	var locked sql.NullInt64
	var changed, created, updated int64
	if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &roles, &u.RegionCode, &u.InstitutionID, &u.InstitutionName,
		&u.Disabled, &locked, &changed, &created, &u.CreatedBy, &updated); err != nil {
		return User{}, err
	}
	u.Roles = parseRoles(roles)
	u.LockedUntil = storage.FromNullMillis(locked)
	u.PasswordChanged = storage.FromMillis(changed)
	u.CreatedAt = storage.FromMillis(created)
	u.UpdatedAt = storage.FromMillis(updated)
	return u, nil
}

// parseRoles reads the stored comma-separated role codes, dropping any the
// code no longer knows (a removed role grants nothing).
func parseRoles(s string) []scope.Role {
	var out []scope.Role
	for _, c := range strings.Split(s, ",") {
		if r, err := scope.ParseRole(c); err == nil && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// formatRoles stores roles in the canonical order of scope.Roles.
func formatRoles(roles []scope.Role) string {
	var codes []string
	for _, r := range scope.Roles {
		if slices.Contains(roles, r) {
			codes = append(codes, string(r))
		}
	}
	return strings.Join(codes, ",")
}

// requireAdmin returns the caller if they may manage users: the system or a
// bureau_admin.
func requireAdmin(ctx context.Context) (*scope.Principal, error) {
	p, err := scope.Require(ctx, scope.BureauAdmin)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// CreateUser adds a user. The caller must be a bureau_admin (or the system),
// and the new user's scope must lie within the caller's own.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (User, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return User{}, err
	}
	in.Username = strings.ToLower(strings.TrimSpace(in.Username))
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	in.RegionCode = strings.TrimSpace(in.RegionCode)
	var probs apperr.Problems
	switch {
	case in.Username == "":
		probs.Add("username", "required", "required")
	case !usernamePattern.MatchString(in.Username):
		probs.Add("username", "username.format", "3 to 40 characters: lower-case letters, digits, '.', '_' or '-'")
	}
	if in.DisplayName == "" {
		in.DisplayName = in.Username
	} else if utf8.RuneCountInString(in.DisplayName) > maxDisplayName {
		probs.Add("display_name", "display_name.too_long", "at most %v characters", maxDisplayName)
	}
	checkPassword(&probs, "password", in.Password, in.Username)
	roles, roleErr := s.grantableRoles(p, in.Roles)
	probs.AddErr("roles", roleErr)
	region, scopeErr := s.grantableScope(ctx, p, in.RegionCode, in.InstitutionID)
	probs.AddErr("", scopeErr)
	if err := probs.Err(); err != nil {
		return User{}, err
	}
	hash, err := s.hash.hash(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	now := storage.Millis(s.now())
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users (username, display_name, password_hash, roles, region_code, institution_id,
			password_changed_at, created_at, created_by, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $7) RETURNING id`,
			in.Username, in.DisplayName, hash, formatRoles(roles), region, nullID(in.InstitutionID), now, p.Username).Scan(&id)
		if storage.IsUniqueViolation(err) {
			return apperr.Field("username", "username.taken", "this username is taken")
		}
		if err != nil {
			return fmt.Errorf("auth: insert user: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "user.create", ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
			Detail: "roles " + formatRoles(roles)})
	})
	if err != nil {
		return User{}, err
	}
	return s.GetUser(ctx, id)
}

// grantableRoles validates the roles to grant: at least one, each known.
// Duplicates are dropped. Only bureau_admins (and the system) manage users,
// and bureau_admin is the widest role, so p may grant any role; what keeps
// an admin from granting wider than their own is the scope (grantableScope).
func (s *Service) grantableRoles(p *scope.Principal, in []scope.Role) ([]scope.Role, error) {
	if len(in) == 0 {
		return nil, apperr.Field("roles", "required", "choose at least one role")
	}
	var out []scope.Role
	for _, r := range in {
		role, err := scope.ParseRole(string(r))
		if err != nil {
			return nil, apperr.Field("roles", "role.unknown", "unknown role %q", r)
		}
		if !slices.Contains(out, role) {
			out = append(out, role)
		}
	}
	return out, nil
}

// grantableScope validates a new user's scope — a 6, 9 or 12-digit region
// or an active institution, exactly one — and that it lies within p's own.
// It returns the region code to store. An institution outside p's scope is
// reported exactly like a missing one.
func (s *Service) grantableScope(ctx context.Context, p *scope.Principal, region string, instID int64) (string, error) {
	switch {
	case region == "" && instID == 0:
		return "", apperr.Field("region_code", "scope.required", "give a region or an institution")
	case region != "" && instID != 0:
		return "", apperr.Field("institution_id", "scope.one_only", "give a region or an institution, not both")
	case instID != 0:
		var instRegion string
		var active bool
		var a storage.Args
		q := "SELECT region_code, active FROM institutions WHERE id = " + a.Add(instID) + " AND " + p.Where(&a, "region_code", "id")
		err := s.db.QueryRowContext(ctx, q, a.Values()...).Scan(&instRegion, &active)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !active) {
			return "", apperr.Field("institution_id", "user_institution.unknown", "no such institution in your scope")
		}
		if err != nil {
			return "", fmt.Errorf("auth: read institution: %w", err)
		}
		return instRegion, nil
	}
	d, err := s.tree.Resolve(region)
	if err != nil {
		return "", err
	}
	// A city health commission (市卫健委) works city-wide; provinces are
	// beyond what one shaobing deployment serves.
	if d.Level == regions.Province {
		return "", apperr.Field("region_code", "user_region.level", "a user's region is a city, district, township or village")
	}
	if !p.CoversScope(region, 0) {
		return "", apperr.Field("region_code", "region_code.out_of_scope", "region %v is outside your scope", region)
	}
	return region, nil
}

// UserChange is the input of UpdateUser. A nil field is left as it is.
// A region_code or institution_id that is given replaces the user's whole
// scope, which is then exactly one of the two, as for NewUser.
type UserChange struct {
	DisplayName   *string       `json:"display_name"`
	Roles         *[]scope.Role `json:"roles"`
	RegionCode    *string       `json:"region_code"`
	InstitutionID *int64        `json:"institution_id"`
}

// UpdateUser changes a user's display name, roles or scope under the same
// rules as CreateUser: the caller is a bureau_admin, the user lies in the
// caller's scope (else not found), each role is grantable and the new
// scope lies within the caller's own. The user's sessions and tokens carry
// the change from their next request on this instance (their cached
// principals are dropped), and within Options.CacheTTL on others.
func (s *Service) UpdateUser(ctx context.Context, id int64, in UserChange) (User, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return User{}, err
	}
	u, err := s.GetUser(ctx, id)
	if err != nil {
		return User{}, err
	}
	self := !p.IsSystem() && p.UserID == u.ID
	var probs apperr.Problems
	name := u.DisplayName
	if in.DisplayName != nil {
		if name = strings.TrimSpace(*in.DisplayName); name == "" {
			name = u.Username
		} else if utf8.RuneCountInString(name) > maxDisplayName {
			probs.Add("display_name", "display_name.too_long", "at most %v characters", maxDisplayName)
		}
	}
	roles := u.Roles
	if in.Roles != nil {
		var roleErr error
		if roles, roleErr = s.grantableRoles(p, *in.Roles); roleErr != nil {
			probs.AddErr("roles", roleErr)
		} else if self && !slices.Contains(roles, scope.BureauAdmin) {
			// An admin who drops their own bureau_admin role can no longer
			// undo it: they would lock themselves out of user management.
			probs.Add("roles", "user.own_admin_role", "you cannot remove your own bureau_admin role")
		}
	}
	region, instID := u.RegionCode, u.InstitutionID
	if in.RegionCode != nil || in.InstitutionID != nil {
		newRegion, newInst := "", int64(0)
		if in.RegionCode != nil {
			newRegion = strings.TrimSpace(*in.RegionCode)
		}
		if in.InstitutionID != nil {
			newInst = *in.InstitutionID
		}
		// The scope as given equals the current one: nothing to grant (and
		// an institution since deactivated does not block other edits).
		same := (newInst != 0 && newInst == u.InstitutionID && newRegion == "") ||
			(newInst == 0 && u.InstitutionID == 0 && newRegion == u.RegionCode)
		if !same {
			field := "region_code"
			if newInst != 0 {
				field = "institution_id"
			}
			got, scopeErr := s.grantableScope(ctx, p, newRegion, newInst)
			switch {
			case scopeErr != nil:
				probs.AddErr("", scopeErr)
			case self:
				// The new scope lies within the admin's own, so it can only
				// narrow it, and nobody narrower can widen it again: moving
				// themselves would lock the admin out of the rest of their area.
				probs.Add(field, "user.own_scope", "you cannot change your own scope")
			default:
				region, instID = got, newInst
			}
		}
	}
	if err := probs.Err(); err != nil {
		return User{}, err
	}
	var changed []string
	if name != u.DisplayName {
		changed = append(changed, "display_name") // a person's name: not in the audit detail
	}
	if before, after := formatRoles(u.Roles), formatRoles(roles); before != after {
		changed = append(changed, "roles "+before+" -> "+after)
	}
	if region != u.RegionCode || instID != u.InstitutionID {
		changed = append(changed, "scope "+scopeLabel(u.RegionCode, u.InstitutionID)+" -> "+scopeLabel(region, instID))
	}
	if len(changed) == 0 {
		return u, nil
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var a storage.Args
		q := "UPDATE users SET display_name = " + a.Add(name) + ", roles = " + a.Add(formatRoles(roles)) +
			", region_code = " + a.Add(region) + ", institution_id = " + a.Add(nullID(instID)) +
			", updated_at = " + a.Add(storage.Millis(s.now())) +
			" WHERE id = " + a.Add(id) + " AND " + p.Where(&a, "region_code", "institution_id")
		if err := execOne(ctx, tx, q, a.Values()...); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "user.update", ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
			Detail: strings.Join(changed, "; ")})
	})
	s.forgetUser(id) // even after an error: a failed commit may have committed
	if err != nil {
		return User{}, err
	}
	return s.GetUser(ctx, id)
}

// scopeLabel names a scope for the audit log: codes and ids only.
func scopeLabel(region string, instID int64) string {
	if instID != 0 {
		return "institution " + strconv.FormatInt(instID, 10)
	}
	return "region " + region
}

// GetUser returns a user within the caller's scope; others are not found.
// Only admins read user records.
func (s *Service) GetUser(ctx context.Context, id int64) (User, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return User{}, err
	}
	var a storage.Args
	q := "SELECT " + userColumns + userFrom + " WHERE u.id = " + a.Add(id) + " AND " + p.Where(&a, "u.region_code", "u.institution_id")
	u, err := scanUser(s.db.QueryRowContext(ctx, q, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, apperr.NotFoundf("no such user")
	}
	if err != nil {
		return User{}, fmt.Errorf("auth: read user: %w", err)
	}
	return u, nil
}

// UserByUsername returns a user within the caller's scope by username.
func (s *Service) UserByUsername(ctx context.Context, username string) (User, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return User{}, err
	}
	var a storage.Args
	q := "SELECT " + userColumns + userFrom + " WHERE u.username = " + a.Add(strings.ToLower(strings.TrimSpace(username))) +
		" AND " + p.Where(&a, "u.region_code", "u.institution_id")
	u, err := scanUser(s.db.QueryRowContext(ctx, q, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, apperr.NotFoundf("no such user")
	}
	if err != nil {
		return User{}, fmt.Errorf("auth: read user: %w", err)
	}
	return u, nil
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	Q     string     // part of the username or display name
	Role  scope.Role // holds this role; "" for any
	Limit int        // page size; 50 when 0
}

type userCursor struct {
	Username string `json:"u"`
}

// ListUsers returns a page of the users in the caller's scope, by username,
// and the cursor of the next page ("" after the last).
func (s *Service) ListUsers(ctx context.Context, f UserFilter, cursor string) ([]User, string, error) {
	p, err := requireAdmin(ctx)
	if err != nil {
		return nil, "", err
	}
	var pos userCursor
	if err := web.DecodeCursor(cursor, &pos); err != nil {
		return nil, "", err
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	var a storage.Args
	where := []string{p.Where(&a, "u.region_code", "u.institution_id")}
	if q := strings.ToLower(strings.TrimSpace(f.Q)); q != "" {
		like := a.Add("%" + storage.EscapeLike(q) + "%")
		where = append(where, "(u.username LIKE "+like+` ESCAPE '\' OR LOWER(u.display_name) LIKE `+like+` ESCAPE '\')`)
	}
	if f.Role != "" {
		role, err := scope.ParseRole(string(f.Role))
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(',' || u.roles || ',') LIKE "+a.Add("%,"+storage.EscapeLike(string(role))+",%")+` ESCAPE '\'`)
	}
	if pos.Username != "" {
		where = append(where, "u.username > "+a.Add(pos.Username))
	}
	q := "SELECT " + userColumns + userFrom + " WHERE " + strings.Join(where, " AND ") +
		" ORDER BY u.username LIMIT " + a.Add(limit+1)
	users, err := storage.Query(ctx, s.db, scanUser, q, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("auth: list users: %w", err)
	}
	users, next := web.NextPage(users, limit, func(u User) any { return userCursor{Username: u.Username} })
	return users, next, nil
}

// SetDisabled disables or re-enables a user in the caller's scope. A
// disabled user's sessions end at once and their tokens stop working.
func (s *Service) SetDisabled(ctx context.Context, id int64, disabled bool) error {
	p, err := requireAdmin(ctx)
	if err != nil {
		return err
	}
	if disabled && id == p.UserID {
		return apperr.New(apperr.Conflict, "you cannot disable your own account")
	}
	action := "user.enable"
	if disabled {
		action = "user.disable"
	}
	defer s.forgetUser(id) // after the commit; even a failed one may have committed
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var a storage.Args
		q := "UPDATE users SET disabled = " + a.Add(disabled) + ", updated_at = " + a.Add(storage.Millis(s.now())) +
			" WHERE id = " + a.Add(id) + " AND " + p.Where(&a, "region_code", "institution_id")
		if err := execOne(ctx, tx, q, a.Values()...); err != nil {
			return err
		}
		if disabled {
			if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = $1", id); err != nil {
				return fmt.Errorf("auth: end sessions: %w", err)
			}
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: action, ObjectType: "user", ObjectID: strconv.FormatInt(id, 10)})
	})
}

// ResetPassword sets a new password for a user in the caller's scope,
// unlocks the account, ends the user's sessions and revokes their API
// tokens: an admin resets a password because the account may be
// compromised, and a token taken with it must stop working too.
func (s *Service) ResetPassword(ctx context.Context, id int64, password string) error {
	p, err := requireAdmin(ctx)
	if err != nil {
		return err
	}
	target, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	var probs apperr.Problems
	checkPassword(&probs, "password", password, target.Username)
	if err := probs.Err(); err != nil {
		return err
	}
	hash, err := s.hash.hash(ctx, password)
	if err != nil {
		return err
	}
	defer s.forgetUser(id) // after the commit; even a failed one may have committed
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		var a storage.Args
		now := a.Add(storage.Millis(s.now()))
		q := "UPDATE users SET password_hash = " + a.Add(hash) + ", password_changed_at = " + now + ", updated_at = " + now +
			", failed_logins = 0, locked_until = NULL WHERE id = " + a.Add(id) + " AND " + p.Where(&a, "region_code", "institution_id")
		if err := execOne(ctx, tx, q, a.Values()...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = $1", id); err != nil {
			return fmt.Errorf("auth: end sessions: %w", err)
		}
		res, err := tx.ExecContext(ctx, "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
			storage.Millis(s.now()), id)
		if err != nil {
			return fmt.Errorf("auth: revoke tokens: %w", err)
		}
		revoked, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("auth: revoke tokens: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "user.reset_password", ObjectType: "user", ObjectID: strconv.FormatInt(id, 10),
			Detail: "sessions ended; API tokens revoked: " + strconv.FormatInt(revoked, 10)})
	})
}

// ChangePassword changes the caller's own password after checking the
// current one, and ends all of the caller's sessions (start a new one for
// the browser that asked).
func (s *Service) ChangePassword(ctx context.Context, current, password string) error {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return err
	}
	if p.UserID == 0 {
		return apperr.New(apperr.Forbidden, "only a user has a password")
	}
	var stored string
	if err := s.db.QueryRowContext(ctx, "SELECT password_hash FROM users WHERE id = $1", p.UserID).Scan(&stored); err != nil {
		return fmt.Errorf("auth: read password: %w", err)
	}
	var probs apperr.Problems
	ok, err := s.hash.verify(ctx, current, stored)
	if err != nil {
		return err
	}
	if !ok {
		probs.Add("current_password", "password.wrong", "this is not your current password")
	}
	checkPassword(&probs, "password", password, p.Username)
	if err := probs.Err(); err != nil {
		return err
	}
	hash, err := s.hash.hash(ctx, password)
	if err != nil {
		return err
	}
	defer s.forgetUser(p.UserID) // after the commit; even a failed one may have committed
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := storage.Millis(s.now())
		if _, err := tx.ExecContext(ctx, "UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3",
			hash, now, p.UserID); err != nil {
			return fmt.Errorf("auth: change password: %w", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = $1", p.UserID); err != nil {
			return fmt.Errorf("auth: end sessions: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "user.change_password", ObjectType: "user", ObjectID: strconv.FormatInt(p.UserID, 10)})
	})
}

// execOne runs an UPDATE that must touch exactly one row; none means the
// row is missing or out of scope.
func execOne(ctx context.Context, q storage.Querier, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("auth: update: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("auth: update: %w", err)
	}
	if n == 0 {
		return apperr.NotFoundf("no such user")
	}
	return nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// CountInstitutionUsers counts the enabled users of an institution that the
// caller's scope covers, for the institution's detail page.
func (s *Service) CountInstitutionUsers(ctx context.Context, institutionID int64) (int, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return 0, err
	}
	var a storage.Args
	q := "SELECT COUNT(*) FROM users u WHERE u.institution_id = " + a.Add(institutionID) + " AND NOT u.disabled AND " +
		p.Where(&a, "u.region_code", "u.institution_id")
	var n int
	if err := s.db.QueryRowContext(ctx, q, a.Values()...).Scan(&n); err != nil {
		return 0, fmt.Errorf("auth: count institution users: %w", err)
	}
	return n, nil
}
