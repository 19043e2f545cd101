package web

import (
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
)

// Shed bounds the work in progress: at most limit requests are served at
// once, and a request that cannot get a slot within queueWait is turned away
// with 503 and Retry-After: 1 — problem+json under /api/, a small page
// elsewhere — instead of queueing until the server collapses. The server
// mounts health checks, metrics and static files outside it. Shed requests
// are counted in shaobing_http_shed_total (m may be nil).
func (s *Shell) Shed(m *Metrics, limit int, queueWait time.Duration, next http.Handler) http.Handler {
	slots := make(chan struct{}, limit)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			if !waitForSlot(r, slots, queueWait) {
				if m != nil {
					m.shed.Inc()
				}
				s.shedResponse(w, r)
				return
			}
		}
		defer func() { <-slots }()
		next.ServeHTTP(w, r)
	})
}

// waitForSlot waits up to wait for a free slot; it gives up early when the
// client has gone.
func waitForSlot(r *http.Request, slots chan struct{}, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-timer.C:
		return false
	case <-r.Context().Done():
		return false
	}
}

// shedResponse is deliberately cheap: no templates, no database (the
// bureau's time zone setting), because it is written when the server is
// short of exactly those.
func (s *Shell) shedResponse(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.Problem(w, r, apperr.New(apperr.Unavailable, "the server is busy; retry shortly"))
		return
	}
	lang := locale.FromRequest(r)
	msg := html.EscapeString(s.Catalog.T(lang, "error.unavailable"))
	h := w.Header()
	h.Set("Retry-After", "1")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = w.Write([]byte(`<!doctype html><html lang="` + string(lang) + `"><meta charset="utf-8">` +
		`<meta name="viewport" content="width=device-width, initial-scale=1"><title>503</title>` +
		`<p style="font:1rem system-ui,sans-serif;margin:2rem">` + msg + `</p></html>`))
}
