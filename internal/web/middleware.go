package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/shaobing/shaobing/internal/apperr"
)

// Metrics are the HTTP metrics exported at /metrics.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	shed     prometheus.Counter // requests turned away by Shed
}

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shaobing_http_requests_total", Help: "HTTP requests by route pattern and status class.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shaobing_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "shaobing_http_in_flight_requests", Help: "HTTP requests being served.",
		}),
		shed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shaobing_http_shed_total", Help: "HTTP requests turned away with 503 because the server was at its in-flight limit.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.shed)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Observe wraps the whole handler: request ID, security headers, panic
// recovery, an access log line (method, route pattern, status, duration —
// never query strings or bodies, which may hold personal data) and metrics.
func (s *Shell) Observe(m *Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-ID")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		slot := &routeSlot{}
		ctx := context.WithValue(WithRequestID(r.Context(), id), routeKey{}, slot)
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-ID", id)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
		if s.Secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		sw := &statusWriter{ResponseWriter: w}
		// Every body is capped before anything reads it, including the CSRF
		// check that parses forms ahead of the handler; handlers narrow it.
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(sw, r.Body, MaxRequestBody)
		}
		if m != nil {
			m.inFlight.Inc()
			defer m.inFlight.Dec()
		}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.Log.ErrorContext(ctx, "panic", "request_id", id, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					s.Problem(sw, r, apperr.New(apperr.Internal, "internal error"))
				}
			}
			route := slot.pattern
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			if m != nil {
				m.requests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Inc()
				m.duration.WithLabelValues(route).Observe(d.Seconds())
			}
			level := slog.LevelInfo
			switch {
			case status == http.StatusServiceUnavailable:
				level = slog.LevelWarn // shed under overload: counted in metrics, not an error per request
			case status >= 500:
				level = slog.LevelError
			}
			s.Log.LogAttrs(ctx, level, "http", slog.String("request_id", id), slog.String("method", r.Method),
				slog.String("route", route), slog.Int("status", status), slog.Int("bytes", sw.bytes),
				slog.Duration("duration", d))
		}()
		next.ServeHTTP(sw, r)
	})
}
