// Package server assembles shaobing's HTTP server: it builds each module's
// handlers from the shared dependencies and lists every route in routes.go.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/buildinfo"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/screening"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/assets"
)

// Migrations lists every module's schema, in dependency order.
func Migrations() []storage.Migrations {
	return []storage.Migrations{
		regions.Migrations,
		auth.Migrations,
		audit.Migrations,
		settings.Migrations,
		deadlines.Migrations,
		people.Migrations,
		screening.Migrations,
	}
}

// Messages lists every module's translations.
func Messages() []locale.Source {
	return []locale.Source{
		web.Messages,
		tabular.Messages,
		audit.Messages,
		auth.Messages,
		settings.Messages,
		deadlines.Messages,
		regions.Messages,
		people.Messages,
		screening.Messages,
	}
}

// OpenAPI lists every module's part of the JSON API's OpenAPI document.
func OpenAPI() []openapi.Fragment {
	return []openapi.Fragment{
		openapi.Platform,
		audit.OpenAPI,
		auth.OpenAPI,
		deadlines.OpenAPI,
		regions.OpenAPI,
		people.OpenAPI,
		screening.OpenAPI,
	}
}

// Config is what the server needs from its caller.
type Config struct {
	DB     *storage.DB
	Tree   *regions.Tree
	Log    *slog.Logger
	Secure bool             // served over TLS (or behind a TLS proxy): cookies get Secure
	Now    func() time.Time // the clock; time.Now when nil
	// TrustProxy makes the audit log take the client address from the last
	// X-Forwarded-For hop: set it only behind a reverse proxy.
	TrustProxy bool
	// Load shedding: at most MaxInFlight requests are served at once (default
	// 512); one that waits ShedWait (default 100ms) for a slot gets 503.
	MaxInFlight int
	ShedWait    time.Duration
}

// Server is the assembled application.
type Server struct {
	cfg      Config
	shell    *web.Shell
	registry *prometheus.Registry
	metrics  *web.Metrics
	handler  http.Handler
	openapi  *openapi.Document // served at /api/v1/openapi.json
	patterns []string          // every route pattern, for the OpenAPI sync test
	build    buildinfo.Info    // shown on /healthz, /readyz and /metrics
	audit    *audit.Log
	auditH   *audit.Handler
	auth     *auth.Service
	regions  *regions.Handlers
	people   *people.Handlers

	// Mass screening.
	screening  *screening.Service
	screeningH *screening.Handlers

	// Deadlines and settings.
	settings   *settings.Store
	zone       *zoneCache
	settingsH  *settings.Handler
	deadlines  *deadlines.Engine
	deadlinesH *deadlines.Handler
}

// unfiledMaxAge is how long the metrics reuse a count of unfiled registrations.
const unfiledMaxAge = 10 * time.Second

// New builds the server: it loads the translations and parses every template,
// so a broken one fails here rather than on a user's request.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 512
	}
	if cfg.ShedWait <= 0 {
		cfg.ShedWait = 100 * time.Millisecond
	}
	cat := locale.NewCatalog()
	if err := cat.LoadAll(Messages()...); err != nil {
		return nil, err
	}
	a, err := assets.New()
	if err != nil {
		return nil, fmt.Errorf("server: assets: %w", err)
	}
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return nil, fmt.Errorf("server: time zone: %w", err)
	}
	shell, err := web.New(cat, a, cfg.Log, loc, navigation(), templates()...)
	if err != nil {
		return nil, err
	}
	shell.Secure = cfg.Secure
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// Pool figures (go_sql_open_connections, go_sql_wait_count_total …) show a
		// pool too small for the load before requests start to queue.
		collectors.NewDBStatsCollector(cfg.DB.DB, cfg.DB.Dialect.String()))
	s := &Server{cfg: cfg, shell: shell, registry: reg, metrics: web.NewMetrics(reg), build: buildinfo.Read()}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shaobing_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": s.build.Version, "revision": s.build.Revision}},
		func() float64 { return 1 }))
	if cfg.DB.Dialect == storage.SQLite {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shaobing_sqlite_checkpointed_pages_total",
			Help: "WAL pages copied back into the SQLite database file by checkpoints."},
			func() float64 { return float64(cfg.DB.CheckpointedPages()) }))
	}
	if s.openapi, err = openapi.Build(OpenAPI()...); err != nil {
		return nil, err
	}
	s.audit = audit.New(cfg.DB, cfg.Now)
	s.auditH = audit.NewHandler(s.audit, shell)
	// Deadlines and settings.
	s.settings = settings.New(cfg.DB, s.audit, cfg.Now)
	// Every page and export shows times in the bureau's time zone setting.
	s.zone = &zoneCache{store: s.settings, now: cfg.Now, log: cfg.Log, fallback: loc}
	shell.Zone = s.zone.Location
	shell.Now = cfg.Now
	s.settingsH = settings.NewHandler(s.settings, shell)
	s.deadlines = deadlines.New(cfg.DB, s.settings, cfg.Now)
	s.deadlines.Log = cfg.Log
	s.deadlinesH = deadlines.NewHandler(s.deadlines, shell)
	// Accounts, then regions and institutions (whose detail page counts an
	// institution's users).
	s.auth = auth.New(cfg.DB, cfg.Tree, shell, cfg.Now, auth.Options{})
	institutions := regions.NewInstitutions(cfg.DB, cfg.Tree, s.audit, cfg.Now)
	institutions.Changed = s.auth.ForgetInstitution
	s.regions = regions.NewHandlers(shell, institutions, s.auth.CountInstitutionUsers)
	// People.
	registry := people.NewRegistry(cfg.DB, cfg.Tree, s.audit, cfg.Now)
	s.people = people.NewHandlers(shell, registry)
	// Mass screening: its registrations go through a group commit, which
	// Close drains.
	batches := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shaobing_specimen_batch_size",
		Help: "Specimen registrations per group-commit transaction.", Buckets: prometheus.ExponentialBuckets(1, 2, 11)})
	batchTime := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shaobing_specimen_batch_seconds",
		Help: "Time from begin to commit of each specimen group-commit transaction.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)})
	reg.MustRegister(batches, batchTime)
	s.screening = screening.New(screening.Deps{DB: cfg.DB, Tree: cfg.Tree, People: registry, Institutions: institutions,
		Audit: s.audit, Deadlines: s.deadlines, Settings: s.settings, Log: cfg.Log, Now: cfg.Now},
		screening.Options{OnBatch: func(size int, took time.Duration, _ error) {
			batches.Observe(float64(size))
			batchTime.Observe(took.Seconds())
		}})
	s.screeningH = screening.NewHandlers(shell, s.screening)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shaobing_specimen_queue_depth",
		Help: "Specimen registrations waiting for a group-commit batch; at the queue limit new ones get 503."},
		func() float64 { return float64(s.screening.Pending()) }))
	// Counting the queue reads it whole (a peak's 100,000 rows: 80 ms of
	// the database's CPU), so a scrape within unfiledMaxAge of the last
	// count gets that count: the load test's once-a-second scrapes took
	// 8% of a core from PostgreSQL.
	var unfiled struct {
		sync.Mutex
		at time.Time
		n  float64
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shaobing_specimens_unfiled",
		Help: "Specimen registrations acknowledged and not yet filed (persons, specimens, coverage, audit); grows during a registration peak. Counted at most every 10s."},
		func() float64 {
			unfiled.Lock()
			defer unfiled.Unlock()
			if !unfiled.at.IsZero() && time.Since(unfiled.at) < unfiledMaxAge {
				return unfiled.n
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			n, err := s.screening.Queued(ctx)
			if err != nil {
				return math.NaN()
			}
			unfiled.at, unfiled.n = time.Now(), float64(n)
			return unfiled.n
		}))
	rt := newRouteTable()
	s.routes(rt)
	s.patterns = rt.patterns
	// Shedding sits inside Observe (so shed requests are logged and counted)
	// and before authentication (so an overloaded server does no session
	// lookups for requests it turns away); bare routes skip all three.
	s.handler = shell.Observe(s.metrics, rt.handler(func(app http.Handler) http.Handler {
		return shell.Shed(s.metrics, cfg.MaxInFlight, cfg.ShedWait, audit.MiddlewareWith(cfg.TrustProxy)(s.auth.Middleware(app)))
	}))
	return s, nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// RunBackground runs the server's background work — the deadline scheduler —
// until ctx is done. Every instance may run it: the scheduler coordinates
// through the database, so each due deadline moves once.
func (s *Server) RunBackground(ctx context.Context) {
	s.deadlines.Run(ctx, 30*time.Second)
}

// Close drains the work the server holds in memory — the queued specimen
// registrations — into the database. Call it after the HTTP server has
// stopped taking requests.
func (s *Server) Close() { s.screening.Close() }

// Shell returns the web shell, for tests.
func (s *Server) Shell() *web.Shell { return s.shell }

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// healthz answers 200 while the process runs, naming the build so the
// instances behind a load balancer can be told apart.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	web.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.build.Version})
}

// readiness is the body of /readyz.
type readiness struct {
	Status   string `json:"status"`
	Database string `json:"database"`
	// Schema is "current", "newer" (the database has migrations this binary
	// does not know: a rolling upgrade is under way) or "behind".
	Schema  string   `json:"schema,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Warning string   `json:"warning,omitempty"`
	Missing []string `json:"missing,omitempty"`
	Unknown []string `json:"unknown,omitempty"`
}

// readyz answers 200 only when the database answers and holds every
// migration this binary embeds. Instances share one database, so an old
// instance keeps serving (with a warning) after a newer one migrated it, but
// one whose schema is missing would fail on its first query and takes no
// traffic.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	rd := readiness{Status: "ready", Database: s.cfg.DB.Dialect.String(), Schema: "current"}
	if err := s.cfg.DB.PingContext(ctx); err != nil {
		s.cfg.Log.Warn("not ready", "err", err)
		web.WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "database unavailable", Database: rd.Database,
			Reason: "the database does not answer"})
		return
	}
	missing, unknown, err := s.cfg.DB.Pending(ctx, Migrations()...)
	if err != nil {
		s.cfg.Log.Warn("not ready: cannot read the schema version", "err", err)
		web.WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "database unavailable", Database: rd.Database,
			Reason: "cannot read schema_migrations"})
		return
	}
	rd.Unknown = unknown
	if len(missing) > 0 {
		s.cfg.Log.Warn("not ready: the database lacks migrations", "missing", missing)
		rd.Status, rd.Schema, rd.Missing = "schema behind", "behind", missing
		rd.Reason = fmt.Sprintf("the database lacks %d migration(s) this build (%s) needs: run shaobing migrate", len(missing), s.build.Version)
		web.WriteJSON(w, http.StatusServiceUnavailable, rd)
		return
	}
	if len(unknown) > 0 {
		rd.Schema = "newer"
		rd.Warning = fmt.Sprintf("the database has %d migration(s) this build (%s) does not know: upgrade this instance", len(unknown), s.build.Version)
	}
	web.WriteJSON(w, http.StatusOK, rd)
}

// setLanguage stores the chosen language in a cookie and goes back.
func (s *Server) setLanguage(w http.ResponseWriter, r *http.Request) {
	lang, ok := locale.Parse(r.URL.Query().Get("to"))
	if !ok {
		lang = locale.ZhCN
	}
	http.SetCookie(w, &http.Cookie{Name: locale.CookieName, Value: string(lang), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.cfg.Secure})
	next := r.URL.Query().Get("next")
	if next == "" || next[0] != '/' || (len(next) > 1 && (next[1] == '/' || next[1] == '\\')) {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
