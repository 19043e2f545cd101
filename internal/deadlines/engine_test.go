package deadlines_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

var migrations = []storage.Migrations{audit.Migrations, settings.Migrations, deadlines.Migrations}

// clock is a settable test clock, safe for concurrent use.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock                { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)                 { c.ms.Store(t.UnixMilli()) }
func (c *clock) add(d time.Duration)             { c.ms.Add(d.Milliseconds()) }
func (c *clock) now() time.Time                  { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) after(d time.Duration) time.Time { return c.now().Add(d) }

// t0 is 09:00 in Shanghai.
var t0 = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

type fixture struct {
	db       *storage.DB
	clock    *clock
	settings *settings.Store
	engine   *deadlines.Engine
}

func setup(t *testing.T) *fixture {
	t.Helper()
	db := storagetest.Open(t, migrations...)
	c := newClock(t0)
	s := settings.New(db, audit.New(db, c.now), c.now)
	return &fixture{db: db, clock: c, settings: s, engine: deadlines.New(db, s, c.now)}
}

var (
	system = scope.WithPrincipal(context.Background(), scope.System())
	admin  = scope.WithPrincipal(context.Background(), &scope.Principal{UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"})
)

// open opens a deadline in its own transaction.
func (f *fixture) open(t *testing.T, d deadlines.Deadline) int64 {
	t.Helper()
	var id int64
	err := f.db.InTx(context.Background(), func(tx *sql.Tx) error {
		var err error
		id, err = f.engine.Open(context.Background(), tx, d)
		return err
	})
	if err != nil {
		t.Fatalf("open %+v: %v", d, err)
	}
	return id
}

func (f *fixture) meet(t *testing.T, kind, subjectType, subjectID string) {
	t.Helper()
	err := f.db.InTx(context.Background(), func(tx *sql.Tx) error {
		return f.engine.Meet(context.Background(), tx, kind, subjectType, subjectID)
	})
	if err != nil {
		t.Fatalf("meet: %v", err)
	}
}

func (f *fixture) get(t *testing.T, id int64) (deadlines.Deadline, []deadlines.Event) {
	t.Helper()
	d, evs, err := f.engine.Get(system, id)
	if err != nil {
		t.Fatalf("get %d: %v", id, err)
	}
	return d, evs
}

func (f *fixture) tick(t *testing.T) deadlines.TickResult {
	t.Helper()
	res, err := f.engine.Tick(context.Background())
	if err != nil {
		t.Fatalf("tick: %v", err)
	}
	return res
}

func positive(subject string) deadlines.Deadline {
	return deadlines.Deadline{Kind: deadlines.PositiveReport, SubjectType: "tube", SubjectID: subject, Title: "阳性管 " + subject, RegionCode: "330305001", InstitutionID: 7}
}

func TestDurationsComeFromSettings(t *testing.T) {
	f := setup(t)
	first := f.open(t, positive("T1"))
	if err := f.settings.Set(admin, settings.PositiveReport, "30m"); err != nil {
		t.Fatal(err)
	}
	second := f.open(t, positive("T2"))
	if d, _ := f.get(t, first); !d.DueAt.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("first due %v, want %v (the default 2h)", d.DueAt, t0.Add(2*time.Hour))
	}
	if d, _ := f.get(t, second); !d.DueAt.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("second due %v, want %v (the new setting)", d.DueAt, t0.Add(30*time.Minute))
	}
	// Each kind with a duration reads its own key.
	for kind, want := range map[string]time.Duration{deadlines.Recall: 12 * time.Hour, deadlines.InvestigationCore: 4 * time.Hour,
		deadlines.InvestigationInitial: 24 * time.Hour, deadlines.WasteStorage: 48 * time.Hour} {
		id := f.open(t, deadlines.Deadline{Kind: kind, SubjectType: "x", SubjectID: kind, Title: kind, RegionCode: "330305001"})
		if d, _ := f.get(t, id); d.DueAt.Sub(t0) != want {
			t.Errorf("%s due after %v, want %v", kind, d.DueAt.Sub(t0), want)
		}
	}
}

func TestDailyReportIsDueAtTheNextCutoff(t *testing.T) {
	f := setup(t)
	daily := func(subject string) deadlines.Deadline {
		return deadlines.Deadline{Kind: deadlines.DailyReport, SubjectType: "institution_day", SubjectID: subject, Title: "日报", RegionCode: "330305001", InstitutionID: 7}
	}
	// 09:00 Shanghai: today's 10:00 cut-off (02:00 UTC).
	if d, _ := f.get(t, f.open(t, daily("7:2026-11-23"))); !d.DueAt.Equal(time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("due %v, want today 10:00 Shanghai", d.DueAt)
	}
	// 11:00 Shanghai: tomorrow's cut-off; and a changed cut-off applies.
	f.clock.add(2 * time.Hour)
	if err := f.settings.Set(admin, settings.DailyReportCutoff, "09:30"); err != nil {
		t.Fatal(err)
	}
	if d, _ := f.get(t, f.open(t, daily("7:2026-11-24"))); !d.DueAt.Equal(time.Date(2026, 11, 24, 1, 30, 0, 0, time.UTC)) {
		t.Errorf("due %v, want tomorrow 09:30 Shanghai", d.DueAt)
	}
}

func TestOpenValidates(t *testing.T) {
	f := setup(t)
	due := t0.Add(72 * time.Hour)
	tests := []struct {
		name string
		d    deadlines.Deadline
		ok   bool
	}{
		{"explicit kind with due time", deadlines.Deadline{Kind: deadlines.Rectification, SubjectType: "finding", SubjectID: "1", Title: "整改", RegionCode: "330305001", DueAt: due}, true},
		{"explicit kind without due time", deadlines.Deadline{Kind: deadlines.Rectification, SubjectType: "finding", SubjectID: "2", Title: "整改", RegionCode: "330305001"}, false},
		{"unknown kind", deadlines.Deadline{Kind: "lunch", SubjectType: "x", SubjectID: "1", Title: "x", RegionCode: "330305001"}, false},
		{"no region", deadlines.Deadline{Kind: deadlines.Recall, SubjectType: "x", SubjectID: "1", Title: "x"}, false},
		{"no title", deadlines.Deadline{Kind: deadlines.Recall, SubjectType: "x", SubjectID: "1", RegionCode: "330305001"}, false},
		{"no subject", deadlines.Deadline{Kind: deadlines.Recall, Title: "x", RegionCode: "330305001"}, false},
	}
	for _, tt := range tests {
		err := f.db.InTx(context.Background(), func(tx *sql.Tx) error {
			_, err := f.engine.Open(context.Background(), tx, tt.d)
			return err
		})
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.name, err)
		}
	}
}

func TestOpenIsIdempotent(t *testing.T) {
	f := setup(t)
	a := f.open(t, positive("T1"))
	f.clock.add(time.Minute)
	b := f.open(t, positive("T1"))
	if a != b {
		t.Fatalf("second Open returned %d, first %d", b, a)
	}
	// A rolled-back Open leaves nothing behind.
	_ = f.db.InTx(context.Background(), func(tx *sql.Tx) error {
		if _, err := f.engine.Open(context.Background(), tx, positive("T2")); err != nil {
			return err
		}
		return fmt.Errorf("module failed")
	})
	var rows, events int
	_ = f.db.QueryRow("SELECT COUNT(*) FROM deadlines").Scan(&rows)
	_ = f.db.QueryRow("SELECT COUNT(*) FROM deadline_events").Scan(&events)
	if rows != 1 || events != 1 {
		t.Errorf("rows = %d, events = %d; want 1 and 1", rows, events)
	}
	if d, _ := f.get(t, a); !d.CreatedAt.Equal(t0) {
		t.Errorf("second Open changed the deadline: created %v", d.CreatedAt)
	}
	// An explicit dedupe key lets one subject have several of a kind.
	d := positive("T1")
	d.DedupeKey = "positive_report|tube|T1|retest"
	if c := f.open(t, d); c == a {
		t.Error("a different dedupe key returned the same deadline")
	}
}

func TestTickTransitions(t *testing.T) {
	f := setup(t)
	late := f.open(t, positive("late"))
	early := f.open(t, positive("early"))
	never := f.open(t, positive("never"))

	f.clock.add(30 * time.Minute)
	f.meet(t, deadlines.PositiveReport, "tube", "early")
	if res := f.tick(t); res.Overdue != 0 || res.Escalated != 0 {
		t.Errorf("tick before due = %+v", res)
	}

	f.clock.set(t0.Add(2*time.Hour + time.Second)) // just past due
	if res := f.tick(t); res.Overdue != 2 || res.Escalated != 0 {
		t.Errorf("tick after due = %+v; want 2 overdue", res)
	}
	f.clock.set(t0.Add(3 * time.Hour))
	f.meet(t, deadlines.PositiveReport, "tube", "late")

	// Due at t0+2h, escalate after 24h: not yet at t0+26h, yes just after.
	f.clock.set(t0.Add(26 * time.Hour))
	if res := f.tick(t); res.Escalated != 0 {
		t.Errorf("tick at exactly due+24h escalated %d", res.Escalated)
	}
	f.clock.add(time.Second)
	if res := f.tick(t); res.Overdue != 0 || res.Escalated != 1 {
		t.Errorf("tick after due+24h = %+v; want 1 escalated", res)
	}
	if res := f.tick(t); res != (deadlines.TickResult{}) {
		t.Errorf("idle tick = %+v", res)
	}

	d, evs := f.get(t, early)
	if d.State != deadlines.Met || !d.MetAt.Equal(t0.Add(30*time.Minute)) || d.Late() || len(evs) != 2 {
		t.Errorf("early: %+v, %d events", d, len(evs))
	}
	d, evs = f.get(t, late)
	if d.State != deadlines.Met || !d.MetAt.Equal(t0.Add(3*time.Hour)) || !d.Late() || d.OverdueAt.IsZero() || len(evs) != 3 || evs[2].From != deadlines.Overdue {
		t.Errorf("late: %+v, events %+v", d, evs)
	}
	d, evs = f.get(t, never)
	if d.State != deadlines.Escalated || !d.EscalatedAt.Equal(t0.Add(26*time.Hour+time.Second)) {
		t.Errorf("never: %+v", d)
	}
	want := []deadlines.State{deadlines.Open, deadlines.Overdue, deadlines.Escalated}
	for i, ev := range evs {
		if ev.To != want[i] || ev.ByInstance != f.engine.Instance {
			t.Errorf("never event %d = %+v", i, ev)
		}
	}
	// An escalated duty done at last is met, late.
	f.meet(t, deadlines.PositiveReport, "tube", "never")
	if d, _ := f.get(t, never); d.State != deadlines.Met || !d.Late() {
		t.Errorf("never after meet: %+v", d)
	}
	// Meeting again changes nothing.
	f.meet(t, deadlines.PositiveReport, "tube", "never")
	var n int
	_ = f.db.QueryRow("SELECT COUNT(*) FROM deadline_events WHERE to_state = 'met'").Scan(&n)
	if n != 3 {
		t.Errorf("met events = %d, want 3", n)
	}
}

func TestTickWorksOffABacklogInBatches(t *testing.T) {
	f := setup(t)
	f.engine.Batch = 7
	err := f.db.InTx(context.Background(), func(tx *sql.Tx) error {
		for i := range 30 {
			if _, err := f.engine.Open(context.Background(), tx, positive(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(100 * time.Hour)
	// Both transitions are past; one Tick does them all, batch by batch.
	if res := f.tick(t); res.Overdue != 30 || res.Escalated != 30 {
		t.Errorf("tick = %+v; want 30 and 30", res)
	}
}

// TestConcurrentInstancesMoveEachDeadlineOnce runs two engines on two
// database handles (two app instances) ticking at once, many times, and
// checks that every transition of every deadline was made exactly once.
func TestConcurrentInstancesMoveEachDeadlineOnce(t *testing.T) {
	ctx := context.Background()
	url := storagetest.URL(t)
	c := newClock(t0)
	var engines []*deadlines.Engine
	var dbs []*storage.DB
	for i := range 2 {
		db, err := storage.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, migrations...); err != nil {
			t.Fatal(err)
		}
		e := deadlines.New(db, settings.New(db, nil, c.now), c.now)
		e.Instance = fmt.Sprintf("instance-%d", i)
		e.Batch = 60 // several batches per tick, so batches interleave
		engines = append(engines, e)
		dbs = append(dbs, db)
	}
	const n = 500
	err := dbs[0].InTx(ctx, func(tx *sql.Tx) error {
		for i := range n {
			d := positive(fmt.Sprint(i))
			d.DueAt = t0.Add(time.Duration(i) * time.Second)
			if _, err := engines[0].Open(ctx, tx, d); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// tickAll has both instances tick rounds times concurrently and returns
	// the transitions they report.
	tickAll := func(rounds int) (overdue, escalated int64) {
		var wg sync.WaitGroup
		var o, e atomic.Int64
		for _, eng := range engines {
			wg.Go(func() {
				for range rounds {
					res, err := eng.Tick(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					o.Add(int64(res.Overdue))
					e.Add(int64(res.Escalated))
				}
			})
		}
		wg.Wait()
		return o.Load(), e.Load()
	}
	c.set(t0.Add(time.Hour)) // all due, none escalated
	if o, e := tickAll(15); o != n || e != 0 {
		t.Errorf("first phase reported %d overdue, %d escalated; want %d, 0", o, e, n)
	}
	c.set(t0.Add(48 * time.Hour))
	if o, e := tickAll(15); o != 0 || e != n {
		t.Errorf("second phase reported %d overdue, %d escalated; want 0, %d", o, e, n)
	}

	for _, to := range []string{"overdue", "escalated"} {
		var events, distinct int
		if err := dbs[1].QueryRow("SELECT COUNT(*), COUNT(DISTINCT deadline_id) FROM deadline_events WHERE to_state = $1", to).Scan(&events, &distinct); err != nil {
			t.Fatal(err)
		}
		if events != n || distinct != n {
			t.Errorf("→ %s: %d events for %d deadlines; want exactly one for each of %d", to, events, distinct, n)
		}
	}
	var left int
	_ = dbs[1].QueryRow("SELECT COUNT(*) FROM deadlines WHERE state <> 'escalated'").Scan(&left)
	if left != 0 {
		t.Errorf("%d deadlines not escalated", left)
	}
}

func TestMeetUnknownKind(t *testing.T) {
	f := setup(t)
	err := f.db.InTx(context.Background(), func(tx *sql.Tx) error {
		return f.engine.Meet(context.Background(), tx, "lunch", "x", "1")
	})
	if err == nil || apperr.CodeOf(err) != apperr.Internal {
		t.Errorf("Meet(unknown kind) = %v", err)
	}
}

func TestRunTicksUntilCancelled(t *testing.T) {
	f := setup(t)
	f.open(t, positive("R1"))
	f.clock.add(3 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.engine.Run(ctx, 10*time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var state string
		_ = f.db.QueryRow("SELECT state FROM deadlines").Scan(&state)
		if state == "overdue" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not mark the deadline overdue")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop when its context was cancelled")
	}
}

// TestTickSkipsWhileAnotherInstanceTicks: on PostgreSQL a tick gives way to
// the instance holding the scheduler lock, rather than relying only on its
// conditional updates; on SQLite the write lock serialises ticks instead.
func TestTickSkipsWhileAnotherInstanceTicks(t *testing.T) {
	f := setup(t)
	if f.db.Dialect != storage.Postgres {
		t.Skip("PostgreSQL-only: SQLite serialises writers with its own lock")
	}
	ctx := context.Background()
	f.open(t, positive("held"))
	f.clock.add(3 * time.Hour)

	other, err := f.db.BeginTx(ctx, nil) // another instance, mid-tick
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, "SELECT pg_advisory_xact_lock(727003)"); err != nil {
		t.Fatal(err)
	}
	res, err := f.engine.Tick(ctx)
	if err != nil || !res.Skipped || res.Overdue != 0 {
		t.Errorf("tick while another holds the lock = %+v, %v; want skipped, nothing moved", res, err)
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	if res, err := f.engine.Tick(ctx); err != nil || res.Skipped || res.Overdue != 1 {
		t.Errorf("tick after the lock is released = %+v, %v; want one overdue", res, err)
	}
}
