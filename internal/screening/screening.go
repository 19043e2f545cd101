// Package screening is mass screening with pooled tubes (核酸筛查, 10合1/20合1
// 混采; DESIGN.md §5.1): campaigns, sampling points and time slots, specimen
// registration into tubes, handover to labs, results and their rules,
// recalls, positive reports and coverage.
//
// Registration is the hot path of a whole-city testing day: every specimen
// goes through one group commit (storage.GroupCommit), so thousands of
// samplers' requests share each durable transaction, and every write a
// request makes — person, tube, specimen, coverage counters, audit — is one
// set-based statement per batch.
package screening

import (
	"embed"
	"io/fs"
	"log/slog"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

//go:embed messages.json openapi.json templates/*.html
var moduleFiles embed.FS

// Migrations creates the screening tables; they reference institutions and
// persons, so they run after regions and people.
var Migrations = storage.Migrations{Module: "screening", FS: mustSub(migrationFiles, "migrations")}

// Templates are the screening pages.
var Templates = web.Templates{FS: moduleFiles, Pattern: "templates/*.html"}

// Messages are the module's translations.
var Messages = locale.Source{FS: moduleFiles, Name: "messages.json"}

// OpenAPI describes the screening API.
var OpenAPI = openapi.Fragment{FS: moduleFiles, Name: "openapi.json"}

// Roles that work on screening. Samplers register; labs receive and result;
// the bureau and the CDC plan, follow and report; township health centres
// (institution staff) run points and call recalled residents.
var (
	PlanRoles    = []scope.Role{scope.BureauAdmin}
	SampleRoles  = []scope.Role{scope.Sampler, scope.BureauAdmin}
	ResultRoles  = []scope.Role{scope.Lab, scope.BureauAdmin}
	FollowRoles  = []scope.Role{scope.BureauAdmin, scope.Epidemiologist, scope.InstitutionStaff}
	ReportRoles  = []scope.Role{scope.Epidemiologist, scope.BureauAdmin}
	ScreeningNav = []scope.Role{scope.BureauAdmin, scope.Epidemiologist, scope.InstitutionStaff, scope.Lab}
	SamplerNav   = []scope.Role{scope.Sampler, scope.BureauAdmin}
)

// TubeState is where a tube stands: open → sealed (full, or closed by hand)
// → in transit (handed to a lab in a batch) → received → resulted.
type TubeState string

// The tube states.
const (
	TubeOpen      TubeState = "open"
	TubeSealed    TubeState = "sealed"
	TubeInTransit TubeState = "in_transit"
	TubeReceived  TubeState = "received"
	TubeResulted  TubeState = "resulted"
)

// Result is a tube's test result.
type Result string

// The results. Suspicious is 可疑阳性; invalid (无效) means resample.
const (
	Negative   Result = "negative"
	Positive   Result = "positive"
	Suspicious Result = "suspicious"
	Invalid    Result = "invalid"
)

// Results lists the results in display order.
var Results = []Result{Negative, Positive, Suspicious, Invalid}

// RecallState is where a recall stands.
type RecallState string

// The recall states: the person is to be notified, has been, has been
// sampled again on their own, and that specimen has a result.
const (
	RecallToNotify  RecallState = "to_notify"
	RecallNotified  RecallState = "notified"
	RecallResampled RecallState = "resampled"
	RecallResulted  RecallState = "resulted"
)

// RecallStates lists the recall states in order.
var RecallStates = []RecallState{RecallToNotify, RecallNotified, RecallResampled, RecallResulted}

// PoolSizes are the allowed pool sizes; a pooled tube is never re-pooled.
var PoolSizes = []int{1, 5, 10, 20}

// Service is the screening module: its rules over its tables. Every method
// takes the principal from ctx and confines reads and writes to its scope.
type Service struct {
	db           *storage.DB
	tree         *regions.Tree
	people       *people.Registry
	institutions *regions.Institutions
	audit        *audit.Log
	deadlines    *deadlines.Engine
	settings     *settings.Store
	now          func() time.Time
	log          *slog.Logger

	register *storage.GroupCommit[registration, Registered]
	filer    *filer
	points   pointCache
}

// Deps are what the module is built from.
type Deps struct {
	DB           *storage.DB
	Tree         *regions.Tree
	People       *people.Registry
	Institutions *regions.Institutions
	Audit        *audit.Log
	Deadlines    *deadlines.Engine
	Settings     *settings.Store
	Log          *slog.Logger     // slog.Default() when nil
	Now          func() time.Time // time.Now when nil
}

// Options tune a Service; zero values take the defaults.
type Options struct {
	// Group commit of specimen registrations (see storage.GroupCommitOptions).
	MaxBatch   int
	QueueLimit int
	Workers    int
	// OnBatch observes each registration batch (size, time, error), e.g. to
	// feed a histogram.
	OnBatch func(size int, took time.Duration, err error)
	// holdFiling leaves acknowledged registrations queued (tests of what
	// happens before filing, or after a crash before it): no background
	// filer; reads and results still file what they need, and Close files
	// the rest.
	holdFiling bool
}

// New returns the screening module. Close stops its registration committer
// after committing what is queued.
func New(d Deps, opts Options) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Service{db: d.DB, tree: d.Tree, people: d.People, institutions: d.Institutions, audit: d.Audit,
		deadlines: d.Deadlines, settings: d.Settings, now: d.Now, log: d.Log}
	workers := opts.Workers
	if workers <= 0 {
		// One batch at a time on both databases. SQLite has a single
		// writer. On PostgreSQL a second batch overlapped little: it
		// names the open tubes the first one holds locked until it
		// commits, and waited for them (load test, 20 s runs: one worker
		// 7,803 and 6,404/s using 0.51-0.58 of a core in the database,
		// two 5,658 and 6,887/s using 0.65-0.73; with acknowledging
		// still writing persons and specimens, two had been better).
		workers = 1
	}
	s.filer = newFiler()
	onBatch := func(size int, took time.Duration, err error) {
		if err == nil {
			s.filer.lastBatch.Store(time.Now().UnixNano())
			s.filer.poke()
		}
		if opts.OnBatch != nil {
			opts.OnBatch(size, took, err)
		}
	}
	s.register = storage.NewGroupCommit(d.DB, storage.GroupCommitOptions{
		MaxBatch: opts.MaxBatch, QueueLimit: opts.QueueLimit, Workers: workers, OnBatch: onBatch,
	}, s.applyRegistrations)
	if opts.holdFiling {
		close(s.filer.done)
	} else {
		go s.runFiler()
	}
	return s
}

// Standalone builds the module over db with dependencies of its own — audit
// log, settings, deadline engine, person registry, institutions — for
// commands that work outside the server: the demo loader and the load
// test's setup. now is the clock (time.Now when nil).
func Standalone(db *storage.DB, tree *regions.Tree, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	log := audit.New(db, now)
	set := settings.New(db, log, now)
	return New(Deps{DB: db, Tree: tree, People: people.NewRegistry(db, tree, log, now),
		Institutions: regions.NewInstitutions(db, tree, log, now), Audit: log,
		Deadlines: deadlines.New(db, set, now), Settings: set, Now: now}, Options{})
}

// Close commits the registrations waiting for a batch, stops taking new
// ones, and files the acknowledged ones for up to closeFiling (the rest
// stay queued and are filed at the next start).
func (s *Service) Close() {
	s.register.Close()
	s.stopFiler(closeFiling)
}

// closeFiling bounds the filing Close does.
const closeFiling = 30 * time.Second

// Pending returns how many registrations wait for a batch.
func (s *Service) Pending() int { return s.register.Pending() }

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
