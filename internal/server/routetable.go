package server

import (
	"net/http"

	"github.com/shaobing/shaobing/internal/web"
)

// routeTable is what routes() fills: application routes go through load
// shedding, the audit and the session middleware; bare routes (health,
// metrics, static files) do not, so an overloaded or struggling server still
// reports its state and serves its assets without a session lookup. It also
// remembers every pattern, so a test can hold the OpenAPI document against
// the routes.
type routeTable struct {
	outer    *http.ServeMux // bare routes, and everything else on to app
	app      *http.ServeMux
	patterns []string
}

func newRouteTable() *routeTable {
	return &routeTable{outer: http.NewServeMux(), app: http.NewServeMux()}
}

// Handle registers an application route.
func (rt *routeTable) Handle(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.app.Handle(pattern, named(pattern, h))
}

// HandleFunc registers an application route.
func (rt *routeTable) HandleFunc(pattern string, fn func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(fn))
}

// HandleBare registers a route served without shedding, sessions or the
// audit middleware.
func (rt *routeTable) HandleBare(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.outer.Handle(pattern, named(pattern, h))
}

// handler returns the whole table: bare routes as they are, every other
// request through wrap (the middleware) to the application routes.
func (rt *routeTable) handler(wrap func(http.Handler) http.Handler) http.Handler {
	rt.outer.Handle("/", wrap(rt.app))
	return rt.outer
}

// named records the route pattern for the access log and the metrics.
func named(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.SetRoute(r.Context(), pattern)
		h.ServeHTTP(w, r)
	})
}

// Patterns lists the route patterns in the order routes() registered them.
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }
