package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

// maxForm bounds the body of the auth forms, which hold a few short fields.
const maxForm = 64 << 10

// loginPage is the data of the login template.
type loginPage struct {
	Next     string
	Username string
	Failed   bool // show the one failed-login message
	// RetryMinutes is set when the client is throttled: how long to wait.
	RetryMinutes int
	Expired      bool // the form's CSRF token was missing or stale
}

// LoginPage shows the sign-in form. The form is protected by a
// double-submit token in the LoginCSRFCookie cookie, since there is no
// session yet to hold one.
func (s *Service) LoginPage(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	if _, err := web.User(r); err == nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return nil
	}
	s.renderLogin(w, r, http.StatusOK, loginPage{Next: next})
	return nil
}

// renderLogin renders the login form with a fresh or the current
// pre-session CSRF token.
func (s *Service) renderLogin(w http.ResponseWriter, r *http.Request, status int, data loginPage) {
	token := ""
	if c, err := r.Cookie(LoginCSRFCookie); err == nil && len(c.Value) == 43 {
		token = c.Value
	} else {
		token = randomToken(32)
		// Strict: the cookie is never sent on a cross-site request, so a
		// forged login post cannot carry it.
		s.setCookie(w, LoginCSRFCookie, token, 3600, http.SameSiteStrictMode)
	}
	r = r.WithContext(web.WithCSRFToken(r.Context(), token))
	p := s.shell.NewPage(r, data)
	s.shell.RenderStatus(w, r, status, "login", p)
}

// LoginSubmit signs a user in and sends them on to ?next= (a path on this
// site only).
func (s *Service) LoginSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := web.ParseForm(w, r, maxForm); err != nil {
		return err
	}
	data := loginPage{Next: safeNext(r.PostFormValue("next")), Username: r.PostFormValue("username")}
	c, err := r.Cookie(LoginCSRFCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf_token"))) != 1 {
		// Most often a form left open for over an hour: show a fresh one.
		r.Header.Del("Cookie") // so renderLogin issues a fresh token
		s.renderLogin(w, r, http.StatusForbidden, loginPage{Next: data.Next, Username: data.Username, Expired: true})
		return nil
	}
	at := Attempt{Username: r.PostFormValue("username"), Password: r.PostFormValue("password"), ClientAddr: audit.ClientAddr(r.Context()), UserAgent: r.UserAgent()}
	if c, err := r.Cookie(DeviceCookie); err == nil {
		at.Device = c.Value
	}
	in, err := s.Login(r.Context(), at)
	var throttled *Throttled
	switch {
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", retryAfter(throttled.After))
		data.RetryMinutes = int((throttled.After + time.Minute - 1) / time.Minute)
		s.renderLogin(w, r, http.StatusTooManyRequests, data)
		return nil
	case apperr.Is(err, apperr.Unauthorized):
		data.Failed = true
		s.renderLogin(w, r, http.StatusUnauthorized, data)
		return nil
	case err != nil:
		return err
	}
	s.setCookie(w, SessionCookie, in.Session, int(s.opts.AbsoluteTimeout/time.Second), http.SameSiteLaxMode)
	s.setCookie(w, DeviceCookie, in.Device, int(deviceLifetime/time.Second), http.SameSiteStrictMode)
	s.clearCookie(w, LoginCSRFCookie)
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
	return nil
}

// LogoutSubmit ends the session and returns to the login form.
func (s *Service) LogoutSubmit(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := s.Logout(r.Context(), c.Value); err != nil {
			return err
		}
	}
	s.clearCookie(w, SessionCookie)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// safeNext returns next if it is a path on this site, "/" otherwise, so the
// login form cannot be used to send users elsewhere.
func safeNext(next string) string {
	if next == "" || next[0] != '/' || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

// usersPage is the data of the users template.
type usersPage struct {
	Users []User
	Next  string
	Roles []scope.Role
}

// UserList lists the users in the admin's scope.
func (s *Service) UserList(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	q := r.URL.Query()
	users, next, err := s.ListUsers(r.Context(), UserFilter{Q: q.Get("q"), Role: scope.Role(q.Get("role"))}, q.Get("cursor"))
	if err != nil {
		return err
	}
	s.shell.Render(w, r, "users", usersPage{Users: users, Next: next, Roles: scope.Roles})
	return nil
}

// exportPage is how many users an export reads at a time.
const exportPage = 500

// UserExport downloads the users the list shows — same scope, same filters
// — as CSV or .xlsx (?format=csv|xlsx), and records the export.
func (s *Service) UserExport(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	ctx := r.Context()
	q := r.URL.Query()
	f := UserFilter{Q: q.Get("q"), Role: scope.Role(q.Get("role")), Limit: exportPage}
	lang := locale.FromRequest(r)
	t := func(key string) string { return s.shell.Catalog.T(lang, key) }
	cols := []tabular.Column{
		{Header: "ID", Kind: tabular.Number},
		{Header: t("auth.username")},
		{Header: t("auth.display_name")},
		{Header: t("auth.roles"), Width: 30},
		{Header: t("auth.region_code")},
		{Header: t("auth.institution"), Width: 30},
		{Header: t("auth.state")},
		{Header: t("auth.password_changed_at"), Kind: tabular.Time},
		{Header: t("common.created_at"), Kind: tabular.Time},
	}
	return s.shell.Export(w, r, "users", t("auth.users.title"), cols, func(format tabular.Format, write func([]any) error) error {
		// The first page checks the filters before the export is recorded
		// and the file starts.
		users, next, err := s.ListUsers(ctx, f, "")
		if err != nil {
			return err
		}
		detail := "format=" + string(format)
		if f.Q != "" || f.Role != "" {
			detail += " q=" + strconv.Quote(f.Q) + " role=" + string(f.Role)
		}
		if err := s.audit.RecordOutside(ctx, audit.Entry{Action: "user.export", ObjectType: "user", Detail: detail}); err != nil {
			return fmt.Errorf("auth: audit export: %w", err)
		}
		now := s.now()
		for {
			for _, u := range users {
				roles := make([]string, len(u.Roles))
				for i, role := range u.Roles {
					roles[i] = t("auth.role." + string(role))
				}
				state := t("auth.enabled")
				switch {
				case u.Disabled:
					state = t("auth.disabled")
				case u.Locked(now):
					state = t("auth.locked")
				}
				var inst any
				if u.InstitutionID != 0 {
					inst = u.InstitutionName
				}
				if err := write([]any{u.ID, u.Username, u.DisplayName, strings.Join(roles, "、"), u.RegionCode, inst, state,
					u.PasswordChanged, u.CreatedAt}); err != nil {
					return err
				}
			}
			if next == "" {
				return nil
			}
			if users, next, err = s.ListUsers(ctx, f, next); err != nil {
				return err
			}
		}
	})
}

// userForm is the data of the new-user and edit-user templates.
type userForm struct {
	In           NewUser
	User         User // the user being edited; zero on the new-user form
	Roles        []scope.Role
	Institutions []institutionOption
	Region       regions.Picker // the region_code field
}

// Checked reports whether the form had role r ticked.
func (f userForm) Checked(r scope.Role) bool {
	for _, x := range f.In.Roles {
		if x == r {
			return true
		}
	}
	return false
}

type institutionOption struct {
	ID         int64
	Name       string
	RegionCode string
}

// UserNew shows the new-user form.
func (s *Service) UserNew(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	data, err := s.userForm(r.Context(), NewUser{})
	if err != nil {
		return err
	}
	s.shell.Render(w, r, "user_new", data)
	return nil
}

// UserCreate adds a user from the new-user form.
func (s *Service) UserCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	if err := web.ParseForm(w, r, maxForm); err != nil {
		return err
	}
	in := NewUser{
		Username:    r.PostFormValue("username"),
		DisplayName: r.PostFormValue("display_name"),
		Password:    r.PostFormValue("password"),
		RegionCode:  r.PostFormValue("region_code"),
	}
	for _, role := range r.PostForm["roles"] {
		in.Roles = append(in.Roles, scope.Role(role))
	}
	if v := strings.TrimSpace(r.PostFormValue("institution_id")); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return s.renderUserForm(w, r, in, apperr.Field("institution_id", "user_institution.unknown", "no such institution in your scope"))
		}
		in.InstitutionID = id
	}
	u, err := s.CreateUser(r.Context(), in)
	if err != nil {
		return s.renderUserForm(w, r, in, err)
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=user_created", u.ID), http.StatusSeeOther)
	return nil
}

func (s *Service) renderUserForm(w http.ResponseWriter, r *http.Request, in NewUser, err error) error {
	in.Password = ""
	data, ferr := s.userForm(r.Context(), in)
	if ferr != nil {
		return ferr
	}
	s.shell.RenderForm(w, r, "user_new", data, err)
	return nil
}

// userForm gathers the choices of the new-user form: every role and the
// active institutions in the admin's scope.
func (s *Service) userForm(ctx context.Context, in NewUser) (userForm, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return userForm{}, err
	}
	var a storage.Args
	rows, err := s.db.QueryContext(ctx, "SELECT id, name, region_code FROM institutions WHERE active AND "+
		p.Where(&a, "region_code", "id")+" ORDER BY region_code, name LIMIT 1000", a.Values()...)
	if err != nil {
		return userForm{}, fmt.Errorf("auth: list institutions: %w", err)
	}
	defer rows.Close()
	f := userForm{In: in, Roles: scope.Roles, Region: s.tree.Picker(p, in.RegionCode)}
	for rows.Next() {
		var o institutionOption
		if err := rows.Scan(&o.ID, &o.Name, &o.RegionCode); err != nil {
			return userForm{}, fmt.Errorf("auth: list institutions: %w", err)
		}
		f.Institutions = append(f.Institutions, o)
	}
	if err := rows.Err(); err != nil {
		return userForm{}, fmt.Errorf("auth: list institutions: %w", err)
	}
	return f, nil
}

// UserEdit shows the form that changes a user's name, roles and scope.
func (s *Service) UserEdit(w http.ResponseWriter, r *http.Request) error {
	data, err := s.userPage(r)
	if err != nil {
		return err
	}
	u := data.User
	in := NewUser{Username: u.Username, DisplayName: u.DisplayName, Roles: u.Roles, InstitutionID: u.InstitutionID}
	if u.InstitutionID == 0 {
		in.RegionCode = u.RegionCode
	}
	return s.renderEditForm(w, r, u, in, nil)
}

// UserUpdate saves the edit-user form. The form always holds every field,
// so each is passed on; no ticked role is an empty list, not "unchanged".
func (s *Service) UserUpdate(w http.ResponseWriter, r *http.Request) error {
	data, err := s.userPage(r)
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, maxForm); err != nil {
		return err
	}
	in := NewUser{
		Username:    data.User.Username,
		DisplayName: r.PostFormValue("display_name"),
		RegionCode:  r.PostFormValue("region_code"),
		Roles:       []scope.Role{},
	}
	for _, role := range r.PostForm["roles"] {
		in.Roles = append(in.Roles, scope.Role(role))
	}
	if v := strings.TrimSpace(r.PostFormValue("institution_id")); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			return s.renderEditForm(w, r, data.User, in, apperr.Field("institution_id", "user_institution.unknown", "no such institution in your scope"))
		}
		in.InstitutionID = id
	}
	_, err = s.UpdateUser(r.Context(), data.User.ID, UserChange{
		DisplayName: &in.DisplayName, Roles: &in.Roles, RegionCode: &in.RegionCode, InstitutionID: &in.InstitutionID,
	})
	if err != nil {
		return s.renderEditForm(w, r, data.User, in, err)
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=user_updated", data.User.ID), http.StatusSeeOther)
	return nil
}

// renderEditForm shows the edit-user form with in, and err's field errors
// when there is one.
func (s *Service) renderEditForm(w http.ResponseWriter, r *http.Request, u User, in NewUser, err error) error {
	data, ferr := s.userForm(r.Context(), in)
	if ferr != nil {
		return ferr
	}
	data.User = u
	// The user's institution stays choosable even if it has since been
	// deactivated or lies past the listed first 1000.
	if u.InstitutionID != 0 && !slices.ContainsFunc(data.Institutions, func(o institutionOption) bool { return o.ID == u.InstitutionID }) {
		data.Institutions = append(data.Institutions, institutionOption{ID: u.InstitutionID, Name: u.InstitutionName, RegionCode: u.RegionCode})
	}
	if err != nil {
		s.shell.RenderForm(w, r, "user_edit", data, err)
		return nil
	}
	s.shell.Render(w, r, "user_edit", data)
	return nil
}

// userPage is the data of the user detail template.
type userPage struct {
	User     User
	Locked   bool
	Self     bool
	Sessions int // the user's active sessions
}

// UserDetail shows one user with the disable and reset-password actions.
func (s *Service) UserDetail(w http.ResponseWriter, r *http.Request) error {
	data, err := s.userPage(r)
	if err != nil {
		return err
	}
	s.shell.Render(w, r, "user_detail", data)
	return nil
}

func (s *Service) userPage(r *http.Request) (userPage, error) {
	p, err := web.UserWith(r, scope.BureauAdmin)
	if err != nil {
		return userPage{}, err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return userPage{}, err
	}
	u, err := s.GetUser(r.Context(), id)
	if err != nil {
		return userPage{}, err
	}
	n, err := s.countSessions(r.Context(), u.ID)
	if err != nil {
		return userPage{}, err
	}
	return userPage{User: u, Locked: u.Locked(s.now()), Self: u.ID == p.UserID, Sessions: n}, nil
}

// UserSessionsRevoke signs a user out everywhere (an admin action, scoped
// like the others: a user out of scope is not found).
func (s *Service) UserSessionsRevoke(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := s.EndUserSessions(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=user_sessions_revoked", id), http.StatusSeeOther)
	return nil
}

// UserDisable disables a user.
func (s *Service) UserDisable(w http.ResponseWriter, r *http.Request) error {
	return s.setDisabled(w, r, true)
}

// UserEnable re-enables a disabled user.
func (s *Service) UserEnable(w http.ResponseWriter, r *http.Request) error {
	return s.setDisabled(w, r, false)
}

func (s *Service) setDisabled(w http.ResponseWriter, r *http.Request, disabled bool) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.SetDisabled(r.Context(), id, disabled); err != nil {
		return err
	}
	notice := "user_enabled"
	if disabled {
		notice = "user_disabled"
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=%s", id, notice), http.StatusSeeOther)
	return nil
}

// UserResetPassword sets a new password chosen by the admin.
func (s *Service) UserResetPassword(w http.ResponseWriter, r *http.Request) error {
	data, err := s.userPage(r)
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, maxForm); err != nil {
		return err
	}
	if err := s.ResetPassword(r.Context(), data.User.ID, r.PostFormValue("password")); err != nil {
		s.shell.RenderForm(w, r, "user_detail", data, err)
		return nil
	}
	http.Redirect(w, r, fmt.Sprintf("/users/%d?notice=password_reset", data.User.ID), http.StatusSeeOther)
	return nil
}

// accountPage is the data of the account template.
type accountPage struct {
	Tokens   []Token
	Sessions []Session
	// NewToken is a token just made, shown this once.
	NewToken string
	now      time.Time
}

// Active reports whether t still works (for the template).
func (a accountPage) Active(t Token) bool { return t.Active(a.now) }

// Account shows the caller's password form and API tokens.
func (s *Service) Account(w http.ResponseWriter, r *http.Request) error {
	return s.renderAccount(w, r, "", nil)
}

func (s *Service) renderAccount(w http.ResponseWriter, r *http.Request, newToken string, formErr error) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	tokens, err := s.Tokens(r.Context())
	if err != nil {
		return err
	}
	sessions, err := s.Sessions(r.Context(), sessionCookie(r))
	if err != nil {
		return err
	}
	data := accountPage{Tokens: tokens, Sessions: sessions, NewToken: newToken, now: s.now()}
	if formErr != nil {
		s.shell.RenderForm(w, r, "account", data, formErr)
		return nil
	}
	s.shell.Render(w, r, "account", data)
	return nil
}

// AccountPassword changes the caller's own password. Every session of the
// user ends; this browser gets a new one.
func (s *Service) AccountPassword(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	if err := web.ParseForm(w, r, maxForm); err != nil {
		return err
	}
	password := r.PostFormValue("password")
	if password != r.PostFormValue("password_confirm") {
		return s.renderAccount(w, r, "", apperr.Field("password_confirm", "password.mismatch", "the two new passwords differ"))
	}
	if err := s.ChangePassword(r.Context(), r.PostFormValue("current_password"), password); err != nil {
		if apperr.Is(err, apperr.Invalid) {
			return s.renderAccount(w, r, "", err)
		}
		return err
	}
	cookie, err := s.newSession(r.Context(), audit.ClientAddr(r.Context()), r.UserAgent())
	if err != nil {
		return err
	}
	s.setCookie(w, SessionCookie, cookie, int(s.opts.AbsoluteTimeout/time.Second), http.SameSiteLaxMode)
	http.Redirect(w, r, "/account?notice=password_changed", http.StatusSeeOther)
	return nil
}

// TokenCreate makes an API token for the caller and shows it once.
func (s *Service) TokenCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := web.User(r)
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, maxForm); err != nil {
		return err
	}
	var expires time.Time
	if v := strings.TrimSpace(r.PostFormValue("expires_days")); v != "" {
		days, err := strconv.Atoi(v)
		if err != nil || days < 1 || days > 3650 {
			return s.renderAccount(w, r, "", apperr.Field("expires_days", "token.expiry_days", "a whole number of days from 1 to 3650"))
		}
		expires = s.now().AddDate(0, 0, days)
	}
	_, secret, err := s.CreateToken(r.Context(), p.UserID, r.PostFormValue("name"), expires)
	if apperr.Is(err, apperr.Invalid) {
		return s.renderAccount(w, r, "", err)
	}
	if err != nil {
		return err
	}
	// Rendered, not redirected: the secret must not land in a URL or a
	// page that can be fetched again.
	return s.renderAccount(w, r, secret, nil)
}

// TokenRevoke ends one of the caller's tokens.
func (s *Service) TokenRevoke(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.RevokeToken(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/account?notice=token_revoked", http.StatusSeeOther)
	return nil
}

// sessionCookie is the request's session cookie value, "" without one.
func sessionCookie(r *http.Request) string {
	if c, err := r.Cookie(SessionCookie); err == nil {
		return c.Value
	}
	return ""
}

// SessionRevoke signs out one of the caller's sessions. Signing out the
// current one is signing out.
func (s *Service) SessionRevoke(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.EndSession(r.Context(), id); err != nil {
		return err
	}
	if current := sessionCookie(r); current != "" && digest(current) == id {
		s.clearCookie(w, SessionCookie)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/account?notice=session_revoked", http.StatusSeeOther)
	return nil
}

// SessionRevokeOthers signs out every session of the caller but this one.
func (s *Service) SessionRevokeOthers(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	if _, err := s.EndOtherSessions(r.Context(), sessionCookie(r)); err != nil {
		return err
	}
	http.Redirect(w, r, "/account?notice=sessions_revoked", http.StatusSeeOther)
	return nil
}
