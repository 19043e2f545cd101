package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// specimenMigrations is a stand-in for the screening module's hot table: a
// client-supplied id that must be stored once, and a deferred foreign key that
// is checked only at commit (to make a whole batch fail).
var specimenMigrations = storage.Migrations{Module: "gc", FS: fstest.MapFS{
	"0001_specimens.sql": {Data: []byte(`
CREATE TABLE gc_sites (id INTEGER PRIMARY KEY);
INSERT INTO gc_sites (id) VALUES (1);
CREATE TABLE gc_specimens (
  id {{pk}},
  barcode TEXT NOT NULL UNIQUE,
  site_id INTEGER NOT NULL REFERENCES gc_sites (id) DEFERRABLE INITIALLY DEFERRED,
  payload TEXT NOT NULL
);
`)},
}}

type specimen struct {
	Barcode string
	Site    int
	Payload string
}

func insertSpecimen(ctx context.Context, tx *sql.Tx, s specimen) (int64, error) {
	site := s.Site
	if site == 0 {
		site = 1
	}
	var id int64
	err := tx.QueryRowContext(ctx, "INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ($1, $2, $3) RETURNING id",
		s.Barcode, site, s.Payload).Scan(&id)
	return id, err
}

// openPair returns two handles on one fresh database: the committer writes
// through the first, the test checks visibility through the second.
func openPair(t *testing.T) (*storage.DB, *storage.DB) {
	t.Helper()
	url := storagetest.URL(t)
	ctx := context.Background()
	open := func() *storage.DB {
		db, err := storage.Open(ctx, url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	w := open()
	if err := w.Migrate(ctx, specimenMigrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return w, open()
}

// gate makes the first batch wait until release is closed, so a test can line
// up the items of the next batch deterministically.
type gate struct {
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func newGate() *gate { return &gate{started: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) wrap(apply func(context.Context, *sql.Tx, []specimen) ([]int64, []error)) func(context.Context, *sql.Tx, []specimen) ([]int64, []error) {
	return func(ctx context.Context, tx *sql.Tx, items []specimen) ([]int64, []error) {
		first := false
		g.once.Do(func() { first = true })
		if first {
			close(g.started)
			<-g.release
		}
		return apply(ctx, tx, items)
	}
}

// waitPending waits until n items are queued behind the gated batch.
func waitPending[T, R any](t *testing.T, gc *storage.GroupCommit[T, R], n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for gc.Pending() < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d items queued", gc.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func countRows(t *testing.T, db *storage.DB, where string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM gc_specimens WHERE "+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGroupCommitConcurrentWritesAreDurableOnReturn(t *testing.T) {
	w, r := openPair(t)
	var batches, maxBatch atomic.Int64
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{
		MaxBatch: 128,
		OnBatch: func(size int, _ time.Duration, err error) {
			batches.Add(1)
			if int64(size) > maxBatch.Load() {
				maxBatch.Store(int64(size))
			}
		},
	}, storage.SavepointEach(insertSpecimen))
	defer gc.Close()
	ctx := context.Background()
	const writers, each = 200, 20
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for wi := range writers {
		wg.Go(func() {
			for i := range each {
				code := fmt.Sprintf("S%03d-%02d", wi, i)
				id, err := gc.Do(ctx, specimen{Barcode: code, Payload: "p"})
				if err != nil {
					errc <- fmt.Errorf("%s: %w", code, err)
					return
				}
				// Another connection must already see the row: Do returned
				// only after the commit.
				var got int64
				if err := r.QueryRowContext(ctx, "SELECT id FROM gc_specimens WHERE barcode = $1", code).Scan(&got); err != nil || got != id {
					errc <- fmt.Errorf("%s not visible after Do returned: id %d, got %d, %v", code, id, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if n := countRows(t, r, "1 = 1"); n != writers*each {
		t.Errorf("rows = %d, want %d", n, writers*each)
	}
	var distinct int
	if err := r.QueryRowContext(ctx, "SELECT COUNT(DISTINCT barcode) FROM gc_specimens").Scan(&distinct); err != nil || distinct != writers*each {
		t.Errorf("distinct barcodes = %d (%v), want %d", distinct, err, writers*each)
	}
	if batches.Load() >= writers*each || maxBatch.Load() < 2 {
		t.Errorf("%d transactions for %d writes (largest %d): nothing was grouped", batches.Load(), writers*each, maxBatch.Load())
	}
	t.Logf("%d writes in %d transactions, largest %d", writers*each, batches.Load(), maxBatch.Load())
}

func TestGroupCommitFailingItemLeavesBatchMatesAlone(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	if _, err := w.ExecContext(ctx, "INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ('TAKEN', 1, 'old')"); err != nil {
		t.Fatal(err)
	}
	g := newGate()
	var sizes []int
	var mu sync.Mutex
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{OnBatch: func(size int, _ time.Duration, _ error) {
		mu.Lock()
		sizes = append(sizes, size)
		mu.Unlock()
	}}, g.wrap(storage.SavepointEach(insertSpecimen)))
	defer gc.Close()

	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	codes := []string{"A", "TAKEN", "B", "B", "C"}
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	for i, code := range codes {
		wg.Go(func() { _, errs[i] = gc.Do(ctx, specimen{Barcode: code, Payload: "new"}) })
		waitPending(t, gc, i+1) // queue them in order, so the first B wins
	}
	close(g.release)
	wg.Wait()

	want := []bool{true, false, true, false, true}
	for i, code := range codes {
		if ok := errs[i] == nil; ok != want[i] {
			t.Errorf("item %d (%s): err = %v, want success %v", i, code, errs[i], want[i])
		}
		if !want[i] && !storage.IsUniqueViolation(errs[i]) {
			t.Errorf("item %d (%s): err = %v, want a unique violation", i, code, errs[i])
		}
	}
	for code, n := range map[string]int{"A": 1, "B": 1, "C": 1, "FIRST": 1, "TAKEN": 1} {
		if got := countRows(t, r, "barcode = $1", code); got != n {
			t.Errorf("%s rows = %d, want %d", code, got, n)
		}
	}
	if got := countRows(t, r, "barcode = 'TAKEN' AND payload = 'old'"); got != 1 {
		t.Error("the failed duplicate changed the existing row")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[1] != len(codes) {
		t.Errorf("batch sizes = %v, want [1 %d]", sizes, len(codes))
	}
}

func TestGroupCommitFailedCommitFailsWholeBatch(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	g := newGate()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, g.wrap(storage.SavepointEach(insertSpecimen)))
	defer gc.Close()
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	// Site 99 does not exist; the deferred foreign key fails only at commit,
	// after every item's own statement succeeded.
	items := []specimen{{Barcode: "X1", Payload: "p"}, {Barcode: "X2", Site: 99, Payload: "p"}, {Barcode: "X3", Payload: "p"}}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { _, errs[i] = gc.Do(ctx, it) })
	}
	waitPending(t, gc, len(items))
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Errorf("item %d committed although its transaction failed", i)
		}
	}
	if n := countRows(t, r, "barcode LIKE 'X%'"); n != 0 {
		t.Errorf("%d rows of the failed batch are stored", n)
	}
	// The committer goes on working after a failed batch.
	if _, err := gc.Do(ctx, specimen{Barcode: "AFTER", Payload: "p"}); err != nil {
		t.Fatalf("write after failed batch: %v", err)
	}
}

// TestGroupCommitAbortBatch has apply write every item and then fail as a
// whole: nothing of the batch is stored and every caller gets the error.
func TestGroupCommitAbortBatch(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	g := newGate()
	broken := errors.New("a set-based statement failed")
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, g.wrap(func(ctx context.Context, tx *sql.Tx, items []specimen) ([]int64, []error) {
		ids := make([]int64, len(items))
		errs := make([]error, len(items))
		for i, it := range items {
			if ids[i], errs[i] = insertSpecimen(ctx, tx, it); errs[i] != nil {
				return ids, errs
			}
		}
		if len(items) > 1 {
			for i := range errs {
				errs[i] = storage.AbortBatch(broken)
			}
		}
		return ids, errs
	}))
	defer gc.Close()
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	items := []specimen{{Barcode: "Y1", Payload: "p"}, {Barcode: "Y2", Payload: "p"}, {Barcode: "Y3", Payload: "p"}}
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { _, errs[i] = gc.Do(ctx, it) })
	}
	waitPending(t, gc, len(items))
	close(g.release)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, broken) {
			t.Errorf("item %d: %v, want the batch's error", i, err)
		}
	}
	if n := countRows(t, r, "barcode LIKE 'Y%'"); n != 0 {
		t.Errorf("%d rows of the abandoned batch are stored", n)
	}
	if _, err := gc.Do(ctx, specimen{Barcode: "AFTER", Payload: "p"}); err != nil {
		t.Fatalf("write after an abandoned batch: %v", err)
	}
}

func TestGroupCommitRetriesSerializationFailureOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures int // how many attempts of item "R" fail with 40001
		wantOK   bool
	}{
		{"first attempt fails", 1, true},
		{"both attempts fail", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, r := openPair(t)
			ctx := context.Background()
			g := newGate()
			var attempts atomic.Int32
			write := func(ctx context.Context, tx *sql.Tx, s specimen) (int64, error) {
				if s.Barcode == "R" && int(attempts.Add(1)) <= tc.failures {
					return 0, &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
				}
				return insertSpecimen(ctx, tx, s)
			}
			gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, g.wrap(storage.SavepointEach(write)))
			defer gc.Close()
			go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
			<-g.started
			var errR, errOK error
			var wg sync.WaitGroup
			wg.Go(func() { _, errR = gc.Do(ctx, specimen{Barcode: "R", Payload: "p"}) })
			wg.Go(func() { _, errOK = gc.Do(ctx, specimen{Barcode: "OK", Payload: "p"}) })
			waitPending(t, gc, 2)
			close(g.release)
			wg.Wait()
			if errOK != nil {
				t.Errorf("batch-mate failed: %v", errOK)
			}
			if (errR == nil) != tc.wantOK {
				t.Errorf("R: err = %v, want success %v", errR, tc.wantOK)
			}
			want := 0
			if tc.wantOK {
				want = 1
			}
			if n := countRows(t, r, "barcode = 'R'"); n != want {
				t.Errorf("R rows = %d, want %d", n, want)
			}
			if got := attempts.Load(); got != 2 {
				t.Errorf("R attempted %d times, want 2", got)
			}
		})
	}
}

func TestGroupCommitShedsWhenQueueIsFull(t *testing.T) {
	w, _ := openPair(t)
	ctx := context.Background()
	g := newGate()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{QueueLimit: 4}, g.wrap(storage.SavepointEach(insertSpecimen)))
	defer gc.Close()
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { gc.Do(ctx, specimen{Barcode: fmt.Sprint("Q", i), Payload: "p"}) })
	}
	waitPending(t, gc, 4)
	start := time.Now()
	_, err := gc.Do(ctx, specimen{Barcode: "OVER", Payload: "p"})
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("shedding took %v; it must not wait", took)
	}
	if !apperr.Is(err, apperr.Unavailable) || apperr.Unavailable.Status() != 503 {
		t.Errorf("over the limit: err = %v, want Unavailable", err)
	}
	close(g.release)
	wg.Wait()
	if _, err := gc.Do(ctx, specimen{Barcode: "LATER", Payload: "p"}); err != nil {
		t.Errorf("after the queue drained: %v", err)
	}
}

func TestGroupCommitDropsCallersThatLeaveBeforeTheirBatch(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	g := newGate()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, g.wrap(storage.SavepointEach(insertSpecimen)))
	defer gc.Close()
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() {
		_, err := gc.Do(cctx, specimen{Barcode: "GONE", Payload: "p"})
		done <- err
	}()
	waitPending(t, gc, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Do: err = %v", err)
	}
	close(g.release)
	if _, err := gc.Do(ctx, specimen{Barcode: "STAYED", Payload: "p"}); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, r, "barcode = 'GONE'"); n != 0 {
		t.Error("an item whose caller left before its batch was written")
	}
}

func TestGroupCommitCloseDrainsQueue(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	g := newGate()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{MaxBatch: 3}, g.wrap(storage.SavepointEach(insertSpecimen)))
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = gc.Do(ctx, specimen{Barcode: fmt.Sprint("D", i), Payload: "p"}) })
	}
	waitPending(t, gc, n)
	closed := make(chan struct{})
	go func() { gc.Close(); close(closed) }()
	// Close must not return while queued items are unwritten.
	select {
	case <-closed:
		t.Fatal("Close returned before the queue drained")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := gc.Do(ctx, specimen{Barcode: "LATE", Payload: "p"}); !apperr.Is(err, apperr.Unavailable) || !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Do while closing: err = %v, want Unavailable", err)
	}
	close(g.release)
	<-closed
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("queued item %d: %v", i, err)
		}
	}
	if got := countRows(t, r, "barcode LIKE 'D%'"); got != n {
		t.Errorf("rows after Close = %d, want %d", got, n)
	}
}

func TestSavepointRollsBackOnlyItsOwnWrites(t *testing.T) {
	db := storagetest.Open(t, specimenMigrations)
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := insertSpecimen(ctx, tx, specimen{Barcode: "KEEP", Payload: "p"}); err != nil {
			return err
		}
		boom := errors.New("boom")
		err := storage.Savepoint(ctx, tx, "sp", func() error {
			if _, err := insertSpecimen(ctx, tx, specimen{Barcode: "DROP", Payload: "p"}); err != nil {
				return err
			}
			_, err := insertSpecimen(ctx, tx, specimen{Barcode: "KEEP", Payload: "dup"})
			return errors.Join(boom, err)
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("savepoint error = %v, want boom", err)
		}
		return storage.Savepoint(ctx, tx, "sp", func() error {
			_, err := insertSpecimen(ctx, tx, specimen{Barcode: "ALSO", Payload: "p"})
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[string]int{"KEEP": 1, "DROP": 0, "ALSO": 1} {
		if got := countRows(t, db, "barcode = $1", code); got != want {
			t.Errorf("%s rows = %d, want %d", code, got, want)
		}
	}
}

// TestGroupCommitBatchesStayWithinMaxBatch: concurrent writers are batched,
// never more than MaxBatch to a transaction.
func TestGroupCommitBatchesStayWithinMaxBatch(t *testing.T) {
	w, _ := openPair(t)
	ctx := context.Background()
	var sizes []int
	var mu sync.Mutex
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{MaxBatch: 4, OnBatch: func(size int, _ time.Duration, _ error) {
		mu.Lock()
		sizes = append(sizes, size)
		mu.Unlock()
	}}, storage.SavepointEach(insertSpecimen))
	defer gc.Close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := gc.Do(ctx, specimen{Barcode: fmt.Sprint("M", i), Payload: "p"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, n := range sizes {
		if n > 4 {
			t.Errorf("batch of %d over MaxBatch 4", n)
		}
	}
	t.Logf("batch sizes %v", sizes)
}

// TestGroupCommitKeepsItsConnection checks every batch of a worker runs on
// the same connection (a temporary table lives on one connection only), so
// SQLite's page cache stays warm from batch to batch. Other traffic on the
// pool runs in between.
func TestGroupCommitKeepsItsConnection(t *testing.T) {
	w, _ := openPair(t)
	ctx := context.Background()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, func(ctx context.Context, tx *sql.Tx, items []int) ([]int, []error) {
		results, errs := make([]int, len(items)), make([]error, len(items))
		if _, err := tx.ExecContext(ctx, "CREATE TEMP TABLE IF NOT EXISTS gc_probe (n INTEGER)"); err != nil {
			errs[0] = err
			return results, errs
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO gc_probe (n) VALUES (1)"); err != nil {
			errs[0] = err
			return results, errs
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM gc_probe").Scan(&n); err != nil {
			errs[0] = err
			return results, errs
		}
		for i := range results {
			results[i] = n
		}
		return results, errs
	})
	defer gc.Close()
	for i := 1; i <= 5; i++ {
		// Requests use the pool between batches: the connection they
		// return last is the pool's next pick.
		var used []*sql.Conn
		for range 3 {
			c, err := w.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			used = append(used, c)
		}
		for _, c := range used {
			c.Close()
		}
		n, err := gc.Do(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		if n != i {
			t.Fatalf("batch %d saw %d probe rows: it ran on another connection than the batches before it", i, n)
		}
	}
}

// TestGroupCommitReplacesABrokenConnection ends the worker's PostgreSQL
// backend between two batches (as a database restart would): the next
// batch runs on a fresh connection instead of failing.
func TestGroupCommitReplacesABrokenConnection(t *testing.T) {
	w, other := openPair(t)
	if w.Dialect != storage.Postgres {
		t.Skip("a SQLite connection does not break this way")
	}
	ctx := context.Background()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{Workers: 1}, func(ctx context.Context, tx *sql.Tx, items []int) ([]int64, []error) {
		results, errs := make([]int64, len(items)), make([]error, len(items))
		var pid int64
		err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid)
		for i := range items {
			results[i], errs[i] = pid, err
		}
		return results, errs
	})
	defer gc.Close()
	pid, err := gc.Do(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	// Wait until the backend is gone.
	for {
		var n int
		if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	again, err := gc.Do(ctx, 2)
	if err != nil {
		t.Fatalf("the batch after the connection broke: %v", err)
	}
	if again == pid {
		t.Fatalf("the batch ran on backend %d, which was terminated", pid)
	}
}

// TestQueryReadsEveryRow: storage.Query returns each row through scan, in
// order, and a scan's error as its own.
func TestQueryReadsEveryRow(t *testing.T) {
	w, _ := openPair(t)
	ctx := context.Background()
	for _, b := range []string{"Q1", "Q2", "Q3"} {
		if _, err := w.ExecContext(ctx, "INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ($1, 1, 'x')", b); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(r storage.Scanner) (string, error) {
		var b string
		err := r.Scan(&b)
		return b, err
	}
	got, err := storage.Query(ctx, w, scan, "SELECT barcode FROM gc_specimens WHERE barcode LIKE $1 ORDER BY barcode", "Q%")
	if err != nil || fmt.Sprint(got) != "[Q1 Q2 Q3]" {
		t.Fatalf("Query = %v, %v", got, err)
	}
	bad := errors.New("bad row")
	if _, err := storage.Query(ctx, w, func(storage.Scanner) (string, error) { return "", bad }, "SELECT barcode FROM gc_specimens"); !errors.Is(err, bad) {
		t.Fatalf("a scan error: %v, want %v", err, bad)
	}
}

// TestGroupCommitWhenIdleWaitsForQueuedBatches: a job waits while items
// wait for a batch, runs in a transaction of its own once none does, and
// is durable when WhenIdle returns; a failing job writes nothing.
func TestGroupCommitWhenIdleWaitsForQueuedBatches(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	g := newGate()
	var mu sync.Mutex
	var order []string
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	apply := g.wrap(func(ctx context.Context, tx *sql.Tx, items []specimen) ([]int64, []error) {
		for _, it := range items {
			note(it.Barcode)
		}
		return storage.SavepointEach(insertSpecimen)(ctx, tx, items)
	})
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, apply)
	defer gc.Close()
	done := make(chan error, 2)
	go func() { _, err := gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"}); done <- err }()
	<-g.started
	go func() { _, err := gc.Do(ctx, specimen{Barcode: "SECOND", Payload: "p"}); done <- err }()
	waitPending(t, gc, 1)
	jobDone := make(chan error, 1)
	go func() {
		jobDone <- gc.WhenIdle(ctx, time.Hour, func(ctx context.Context, tx *sql.Tx) error {
			note("JOB")
			_, err := insertSpecimen(ctx, tx, specimen{Barcode: "JOB", Payload: "p"})
			return err
		})
	}()
	close(g.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-jobDone; err != nil {
		t.Fatalf("job: %v", err)
	}
	if want := []string{"FIRST", "SECOND", "JOB"}; !slices.Equal(order, want) {
		t.Errorf("order %v, want %v: the job runs once no item waits", order, want)
	}
	if got := countRows(t, r, "barcode = 'JOB'"); got != 1 {
		t.Errorf("job rows = %d after WhenIdle returned, want 1", got)
	}
	failed := errors.New("job failed")
	err := gc.WhenIdle(ctx, time.Hour, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := insertSpecimen(ctx, tx, specimen{Barcode: "FAILED", Payload: "p"}); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Errorf("failing job: %v, want its error", err)
	}
	if got := countRows(t, r, "barcode = 'FAILED'"); got != 0 {
		t.Errorf("a failed job left %d rows", got)
	}
}

// TestGroupCommitWhenIdleRunsOverdueUnderSteadyLoad: items that never stop
// coming do not starve a job; once it has waited maxWait it takes the next
// turn.
func TestGroupCommitWhenIdleRunsOverdueUnderSteadyLoad(t *testing.T) {
	w, r := openPair(t)
	ctx := context.Background()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, storage.SavepointEach(insertSpecimen))
	defer gc.Close()
	stop := make(chan struct{})
	var load sync.WaitGroup
	var n atomic.Int64
	for c := range 16 {
		load.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := gc.Do(ctx, specimen{Barcode: fmt.Sprint("L", c, "-", i), Payload: "p"}); err == nil {
					n.Add(1)
				}
			}
		})
	}
	for n.Load() < 100 { // the load is on
		time.Sleep(time.Millisecond)
	}
	jobCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := gc.WhenIdle(jobCtx, 10*time.Millisecond, func(ctx context.Context, tx *sql.Tx) error {
		_, err := insertSpecimen(ctx, tx, specimen{Barcode: "JOB", Payload: "p"})
		return err
	})
	close(stop)
	load.Wait()
	if err != nil {
		t.Fatalf("a job under steady load: %v", err)
	}
	if got := countRows(t, r, "barcode = 'JOB'"); got != 1 {
		t.Errorf("job rows = %d, want 1", got)
	}
}

// TestGroupCommitWhenIdleAfterClose: with the workers gone a job is refused
// as Unavailable (ErrClosed), and a job waiting for its turn is refused
// when they stop.
func TestGroupCommitWhenIdleAfterClose(t *testing.T) {
	w, _ := openPair(t)
	ctx := context.Background()
	g := newGate()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{}, g.wrap(storage.SavepointEach(insertSpecimen)))
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	waiting := make(chan error, 1)
	go func() {
		waiting <- gc.WhenIdle(ctx, time.Hour, func(context.Context, *sql.Tx) error { return nil })
	}()
	closed := make(chan struct{})
	go func() { gc.Close(); close(closed) }()
	close(g.release)
	<-closed
	// The waiting job either ran before the worker stopped or was refused.
	if err := <-waiting; err != nil && (!apperr.Is(err, apperr.Unavailable) || !errors.Is(err, storage.ErrClosed)) {
		t.Errorf("a job waiting through Close: %v, want nil or Unavailable (ErrClosed)", err)
	}
	err := gc.WhenIdle(ctx, time.Hour, func(context.Context, *sql.Tx) error { return nil })
	if !apperr.Is(err, apperr.Unavailable) || !errors.Is(err, storage.ErrClosed) {
		t.Errorf("a job after Close: %v, want Unavailable (ErrClosed)", err)
	}
}

// TestGroupCommitSaturated: batches that gather many items mark the
// workers saturated; batches of one item at a time do not.
func TestGroupCommitSaturated(t *testing.T) {
	w, _ := openPair(t)
	ctx := context.Background()
	g := newGate()
	gc := storage.NewGroupCommit(w, storage.GroupCommitOptions{MaxBatch: 16, QueueLimit: 128}, g.wrap(storage.SavepointEach(insertSpecimen)))
	defer gc.Close()
	if gc.Saturated() {
		t.Fatal("saturated before any batch")
	}
	go gc.Do(ctx, specimen{Barcode: "FIRST", Payload: "p"})
	<-g.started
	var wg sync.WaitGroup
	for i := range 5 * 16 { // five full batches behind the gated one
		wg.Go(func() { gc.Do(ctx, specimen{Barcode: fmt.Sprint("S", i), Payload: "p"}) })
	}
	waitPending(t, gc, 5*16)
	close(g.release)
	wg.Wait()
	if !gc.Saturated() {
		t.Error("not saturated after five full batches of 16")
	}
	for i := range 8 {
		if _, err := gc.Do(ctx, specimen{Barcode: fmt.Sprint("ONE", i), Payload: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	if gc.Saturated() {
		t.Error("saturated after eight batches of one")
	}
}
