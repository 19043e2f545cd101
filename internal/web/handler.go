package web

import (
	"net/http"

	"github.com/shaobing/shaobing/internal/scope"
)

// HandlerFunc is a handler that returns its error instead of writing it, so
// every failure is shown the same way: Page renders the error page (or sends
// an unauthenticated visitor to the login page), API writes a problem document.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Page adapts a page handler.
func (s *Shell) Page(fn HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.Error(w, r, err)
		}
	})
}

// API adapts a JSON API handler.
func (s *Shell) API(fn HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			s.Problem(w, r, err)
		}
	})
}

// User returns the signed-in principal, or an Unauthorized error (which Page
// turns into a redirect to the login page and API into a 401).
func User(r *http.Request) (*scope.Principal, error) { return scope.FromContext(r.Context()) }

// UserWith returns the signed-in principal if they hold one of the roles; a
// Forbidden error otherwise.
func UserWith(r *http.Request, roles ...scope.Role) (*scope.Principal, error) {
	p, err := scope.FromContext(r.Context())
	if err != nil {
		return nil, err
	}
	if err := p.Require(roles...); err != nil {
		return nil, err
	}
	return p, nil
}
