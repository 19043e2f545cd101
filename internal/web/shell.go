// Package web is the web shell every module's pages and API handlers use:
// page rendering with the shared layout and navigation, translations, strict
// JSON decoding, RFC 9457 problem documents and cursor pagination. It knows
// nothing of the modules; they hand it their templates and messages.
package web

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web/assets"
)

//go:embed templates/*.html
var shellTemplates embed.FS

//go:embed messages.json
var shellMessages embed.FS

// Messages are the shell's own translations; load them into the catalog.
var Messages = locale.Source{FS: shellMessages, Name: "messages.json"}

// Templates is one module's page templates: every file matching Pattern in FS
// is a page named after the file (without .html) that defines the blocks
// "title" and "content" (and optionally "head" and "scripts"). Files whose
// name starts with "_" are partials shared by that module's pages.
type Templates struct {
	FS      fs.FS
	Pattern string // e.g. "templates/*.html"
}

// NavItem is one entry of the main navigation, shown to users holding any of
// Roles (all users when Roles is empty).
type NavItem struct {
	Key   string // message key of the label
	Path  string
	Roles []scope.Role
}

// Shell renders pages and API responses. Build one with New at start-up.
type Shell struct {
	Catalog *locale.Catalog
	Assets  *assets.Assets
	Log     *slog.Logger
	Nav     []NavItem
	// Zone returns the bureau's time zone, in which every page and export
	// shows times (they are stored in UTC). The server reads it from the
	// settings; when nil, the zone given to New is used.
	Zone func(ctx context.Context) *time.Location
	// Now is the clock (export file names); time.Now when nil.
	Now func() time.Time
	// Secure is true when served over TLS (cookies get the Secure flag).
	Secure bool
	pages  map[string]*template.Template
	zone   *time.Location // the fallback for Zone
}

// New parses every template now, so a broken template fails the boot. loc
// is the bureau's time zone until Zone is set (nil means UTC).
func New(cat *locale.Catalog, a *assets.Assets, log *slog.Logger, loc *time.Location, nav []NavItem, sets ...Templates) (*Shell, error) {
	if loc == nil {
		loc = time.UTC
	}
	s := &Shell{Catalog: cat, Assets: a, Log: log, Nav: nav, pages: map[string]*template.Template{}, zone: loc}
	base, err := template.New("layout").Funcs(s.funcs()).ParseFS(shellTemplates, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse layout: %w", err)
	}
	all := append([]Templates{{FS: shellTemplates, Pattern: "templates/*.html"}}, sets...)
	for _, set := range all {
		files, err := fs.Glob(set.FS, set.Pattern)
		if err != nil {
			return nil, fmt.Errorf("web: glob %s: %w", set.Pattern, err)
		}
		var partials, pages []string
		for _, f := range files {
			if strings.HasPrefix(path.Base(f), "_") {
				partials = append(partials, f)
			} else {
				pages = append(pages, f)
			}
		}
		for _, f := range pages {
			name := strings.TrimSuffix(path.Base(f), ".html")
			if _, dup := s.pages[name]; dup {
				return nil, fmt.Errorf("web: page %q defined twice", name)
			}
			t, err := base.Clone()
			if err != nil {
				return nil, err
			}
			if set.FS != fs.FS(shellTemplates) && len(partials) > 0 {
				if t, err = t.ParseFS(set.FS, partials...); err != nil {
					return nil, fmt.Errorf("web: parse partials for %s: %w", name, err)
				}
			}
			if t, err = t.ParseFS(set.FS, f); err != nil {
				return nil, fmt.Errorf("web: parse page %s: %w", f, err)
			}
			if err := a.CheckTemplates(t, "asset"); err != nil {
				return nil, fmt.Errorf("web: page %s: %w", name, err)
			}
			s.pages[name] = t
		}
	}
	return s, nil
}

// Page is what every template receives as ".": the request's language,
// user and CSRF token, plus the handler's own Data.
type Page struct {
	Lang  locale.Lang
	User  *scope.Principal
	CSRF  string
	Path  string
	Query map[string][]string
	Nav   []NavItem
	Data  any
	shell *Shell
	loc   *time.Location // the bureau's time zone
	// Problem holds the field errors of a rejected form, by field name.
	Problem map[string]string
	// Notice is a success message key to show once (from ?notice=).
	Notice string
}

// T translates a message key into the page's language.
func (p *Page) T(key string, args ...any) string { return p.shell.Catalog.T(p.Lang, key, args...) }

// Time formats a time in the bureau's time zone ("" for the zero time).
func (p *Page) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(p.loc).Format("2006-01-02 15:04")
}

// Seconds formats a time to the second in the bureau's time zone ("" for
// the zero time), for histories where the order within a minute matters.
func (p *Page) Seconds(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(p.loc).Format("2006-01-02 15:04:05")
}

// Has reports whether the page's user holds any of the roles.
func (p *Page) Has(roles ...string) bool {
	if p.User == nil {
		return false
	}
	for _, r := range roles {
		if p.User.Has(scope.Role(r)) {
			return true
		}
	}
	return false
}

// Q returns a query parameter of the current request.
func (p *Page) Q(name string) string {
	if v := p.Query[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// FieldError returns the translated error for a form field, if any.
func (p *Page) FieldError(field string) string { return p.Problem[field] }

func (s *Shell) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":     func(name string) (string, error) { return s.Assets.Path(name) },
		"add":       func(a, b int) int { return a + b },
		"join":      strings.Join,
		"hasPrefix": strings.HasPrefix,
		"dict":      dict,
	}
}

// dict builds a map from key, value pairs, to hand a partial template
// several named arguments: {{template "region_picker" (dict "Page" . "Picker" .Data.Region)}}.
func dict(pairs ...any) (map[string]any, error) {
	if len(pairs)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		k, ok := pairs[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", pairs[i])
		}
		m[k] = pairs[i+1]
	}
	return m, nil
}

// Location returns the bureau's time zone for a request: the one way pages,
// exports and date filters turn stored UTC times into local ones.
func (s *Shell) Location(ctx context.Context) *time.Location {
	if s.Zone != nil {
		if loc := s.Zone(ctx); loc != nil {
			return loc
		}
	}
	if s.zone == nil {
		return time.UTC
	}
	return s.zone
}

func (s *Shell) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// NewPage builds the template data for a request.
func (s *Shell) NewPage(r *http.Request, data any) *Page {
	p := &Page{Lang: locale.FromRequest(r), CSRF: CSRFToken(r.Context()), Path: r.URL.Path, Query: r.URL.Query(), Data: data, shell: s,
		loc: s.Location(r.Context())}
	if u, err := scope.FromContext(r.Context()); err == nil {
		p.User = u
		for _, n := range s.Nav {
			if len(n.Roles) == 0 || u.HasAny(n.Roles...) {
				p.Nav = append(p.Nav, n)
			}
		}
	}
	if n := r.URL.Query().Get("notice"); n != "" && s.Catalog.Has("notice."+n) {
		p.Notice = "notice." + n
	}
	return p
}

// Render writes page name with status 200.
func (s *Shell) Render(w http.ResponseWriter, r *http.Request, name string, data any) {
	s.RenderStatus(w, r, http.StatusOK, name, s.NewPage(r, data))
}

// RenderForm re-renders a form page after a rejected submission, showing each
// field's error next to it (status 422), or the error page for other errors.
func (s *Shell) RenderForm(w http.ResponseWriter, r *http.Request, name string, data any, err error) {
	e := apperr.As(err)
	if e == nil || e.Code != apperr.Invalid {
		s.Error(w, r, err)
		return
	}
	p := s.NewPage(r, data)
	p.Problem = map[string]string{}
	for _, f := range e.Fields {
		p.Problem[f.Field] = s.fieldMessage(p.Lang, f)
	}
	s.RenderStatus(w, r, e.Code.Status(), name, p)
}

// RenderStatus writes a page with an explicit status.
func (s *Shell) RenderStatus(w http.ResponseWriter, r *http.Request, status int, name string, p *Page) {
	t, ok := s.pages[name]
	if !ok {
		s.Log.Error("unknown page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		s.Log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Error renders an error page for a browser request: 404 for not found and
// out of scope alike, the login page redirect for 401, and "internal error"
// (cause logged) for anything unexpected.
func (s *Shell) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := apperr.CodeOf(err)
	if code == apperr.Unauthorized {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	s.logIfInternal(r.Context(), err)
	p := s.NewPage(r, nil)
	msg := p.T("error." + string(code))
	if e := apperr.As(err); e != nil && code != apperr.Internal {
		for _, f := range e.Fields {
			msg += " " + s.fieldMessage(p.Lang, f)
		}
	}
	p.Data = map[string]any{"Status": code.Status(), "Message": msg}
	s.RenderStatus(w, r, code.Status(), "error", p)
}

func (s *Shell) logIfInternal(ctx context.Context, err error) {
	if apperr.CodeOf(err) == apperr.Internal {
		s.Log.ErrorContext(ctx, "internal error", "err", err, "request_id", RequestID(ctx))
	}
}

// fieldMessage translates a field error by its code, falling back to the
// English message it carries.
func (s *Shell) fieldMessage(lang locale.Lang, f apperr.FieldError) string {
	key := "error." + f.Code
	if s.Catalog.Has(key) {
		return s.Catalog.T(lang, key, f.Args...)
	}
	return f.Message
}
