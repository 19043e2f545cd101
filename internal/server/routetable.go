package server

import (
	"net/http"

	"github.com/shaobing/shaobing/internal/web"
)

// routeTable is the ServeMux that routes() fills. It also remembers every
// pattern, so a test can hold the OpenAPI document against the routes.
type routeTable struct {
	mux      *http.ServeMux
	patterns []string
}

func newRouteTable() *routeTable { return &routeTable{mux: http.NewServeMux()} }

// Handle registers h for pattern.
// The pattern is recorded for the access log and the metrics (web.SetRoute).
func (rt *routeTable) Handle(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		web.SetRoute(r.Context(), pattern)
		h.ServeHTTP(w, r)
	}))
}

// HandleFunc registers fn for pattern.
func (rt *routeTable) HandleFunc(pattern string, fn func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(fn))
}

// Patterns lists the route patterns in the order routes() registered them.
func (s *Server) Patterns() []string { return append([]string(nil), s.patterns...) }
