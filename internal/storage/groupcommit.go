package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shaobing/shaobing/internal/apperr"
)

// GroupCommitOptions tune a GroupCommit. Zero values take the defaults noted.
type GroupCommitOptions struct {
	// MaxBatch is the most items one transaction holds (default 512).
	MaxBatch int
	// QueueLimit is how many items may wait for a batch; beyond it Do fails at
	// once with apperr.Unavailable instead of queueing work the server cannot
	// finish in time (default 4 × MaxBatch).
	QueueLimit int
	// Workers is how many transactions may be open at once (default 1).
	// PostgreSQL overlaps one batch's commit with the next batch's
	// statements. SQLite has one writer, so it always gets 1: more would only
	// queue on the write lock, and a starved worker's BEGIN could time out.
	Workers int
	// OnBatch, when set, is called after each transaction with its size, how
	// long it took (begin to commit) and its error, e.g. to feed a histogram.
	OnBatch func(size int, took time.Duration, err error)
}

// GroupCommit batches concurrent writes into one transaction; each caller's Do
// returns only after the transaction holding its item has committed (durable),
// or with that item's own error. One fsync then covers a whole batch, which is
// how the write rate rises above the disk's fsync rate without weakening
// durability.
//
// Per-item isolation is apply's job: it returns one error per item, and an
// item whose error is non-nil must leave no trace while the others commit.
// The simplest way is SavepointEach (each item under its own SAVEPOINT,
// rolled back on error); an apply that validates before writing and uses
// statements that cannot fail per item (INSERT … ON CONFLICT DO NOTHING) may
// skip the savepoints.
//
// A caller whose ctx ends before its item is taken into a batch is dropped
// and gets ctx's error; once taken, the item's write goes ahead and Do still
// returns ctx's error, so the caller cannot tell whether it committed. Writes
// that go through a GroupCommit must therefore be idempotent by a client-
// supplied id: the client retries with the same id and gets the same outcome.
type GroupCommit[T, R any] struct {
	db    *DB
	opts  GroupCommitOptions
	apply func(ctx context.Context, tx *sql.Tx, items []T) ([]R, []error)

	mu     sync.RWMutex // guards closed against sends on the closed queue
	closed bool
	queue  chan *pending[T, R]
	wg     sync.WaitGroup
	// Work for the workers' connections besides batches (WhenIdle): idle
	// is taken when no batch waits, overdue whenever a worker is free.
	idle, overdue chan *idleJob
	stopped       chan struct{} // closed once the workers have stopped
	// The sizes of the last recentBatches batches, for Saturated.
	recent     [recentBatches]atomic.Int32
	recentNext atomic.Uint32
}

// A worker is saturated when at least half of its last recentBatches
// batches held saturatedBatch items or more: items arrive faster than
// batches commit, so each batch gathers many. Below that a batch holds the
// few items that came while the last one committed, and most of a
// worker's time goes to commits of a few items each: it is busy, but a job
// delaying the next batch costs those items some latency, not the batches
// their rate (the next batch gathers what came meanwhile).
const (
	recentBatches  = 8
	saturatedBatch = 16
)

// Saturated reports whether the workers' recent batches were large (see
// saturatedBatch).
func (g *GroupCommit[T, R]) Saturated() bool {
	large := 0
	for i := range g.recent {
		if g.recent[i].Load() >= saturatedBatch {
			large++
		}
	}
	return large*2 >= recentBatches
}

// idleJob is one WhenIdle call.
type idleJob struct {
	fn    func(ctx context.Context, tx *sql.Tx) error
	done  chan error    // buffered; the outcome when a worker ran it
	start chan struct{} // closed when the caller is to run it (PostgreSQL)
}

// An item's states: waiting in the queue, taken into a batch, or abandoned by
// its caller before any batch took it.
const (
	itemWaiting int32 = iota
	itemTaken
	itemAbandoned
)

type pending[T, R any] struct {
	item  T
	state atomic.Int32
	done  chan outcome[R] // buffered: a worker never blocks on a departed caller
}

type outcome[R any] struct {
	result R
	err    error
}

// NewGroupCommit starts the workers of a group committer over db. apply writes
// one batch inside tx and returns a result and an error for each item, in
// order; it must not commit or roll back tx.
func NewGroupCommit[T, R any](db *DB, opts GroupCommitOptions, apply func(ctx context.Context, tx *sql.Tx, items []T) ([]R, []error)) *GroupCommit[T, R] {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 512
	}
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = 4 * opts.MaxBatch
	}
	if opts.Workers <= 0 || db.Dialect == SQLite {
		opts.Workers = 1
	}
	g := &GroupCommit[T, R]{db: db, opts: opts, apply: apply, queue: make(chan *pending[T, R], opts.QueueLimit),
		idle: make(chan *idleJob), overdue: make(chan *idleJob), stopped: make(chan struct{})}
	for range opts.Workers {
		g.wg.Add(1)
		go g.work()
	}
	go func() {
		g.wg.Wait()
		close(g.stopped)
	}()
	return g
}

// idleGrace is how long the queue must stay empty before a worker takes an
// idle job (WhenIdle).
const idleGrace = 2 * time.Millisecond

// ErrClosed is the cause of the Unavailable error Do returns after Close.
var ErrClosed = errors.New("storage: group commit closed")

// Do queues item for the next batch and waits until that batch has committed.
// It fails at once with apperr.Unavailable (HTTP 503 with Retry-After) when
// the queue is full or the committer is closed.
func (g *GroupCommit[T, R]) Do(ctx context.Context, item T) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	p := &pending[T, R]{item: item, done: make(chan outcome[R], 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return zero, apperr.Wrap(ErrClosed, apperr.Unavailable, "the server is shutting down; retry shortly")
	}
	select {
	case g.queue <- p:
		g.mu.RUnlock()
	default:
		g.mu.RUnlock()
		return zero, apperr.New(apperr.Unavailable, "the server is busy; retry shortly")
	}
	select {
	case o := <-p.done:
		return o.result, o.err
	case <-ctx.Done():
		// If no batch has taken it, the item is dropped; otherwise its write
		// proceeds and the client's retry with the same id settles it.
		p.state.CompareAndSwap(itemWaiting, itemAbandoned)
		return zero, ctx.Err()
	}
}

// Pending returns how many items wait for a batch, e.g. for a queue-depth gauge.
func (g *GroupCommit[T, R]) Pending() int { return len(g.queue) }

// Close stops accepting items, commits every item already queued, and returns
// when the workers have stopped. Do after Close fails with apperr.Unavailable.
func (g *GroupCommit[T, R]) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.queue)
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// work is one worker: it takes batches off the queue until it is closed and
// empty.
//
// A worker keeps one connection for its batches. A pooled connection per
// batch would rotate through the pool, and on SQLite a connection that
// finds the database written by another connection since its last
// transaction drops its whole page cache: every batch would start cold,
// reading and allocating again the index pages the last batch had in
// memory.
func (g *GroupCommit[T, R]) work() {
	defer g.wg.Done()
	w := &heldConn{db: g.db}
	defer w.release()
	// SQLite's idle jobs run on a connection of their own. Filing on the
	// batches' connection made each batch's statements take 1.3-1.6 times
	// as long (presumably its page cache, never dropped, filled with the
	// filing's index pages), and the load test registered 7,923 and
	// 7,349/s in 20 s against 10,290 and 10,540/s with two connections.
	jobs := &heldConn{db: g.db}
	defer jobs.release()
	batch := make([]*pending[T, R], 0, g.opts.MaxBatch)
	grace := time.NewTimer(time.Hour)
	defer grace.Stop()
	for {
		p, job, ok := g.next(grace)
		if !ok {
			return
		}
		if job != nil {
			job.take(g.db, jobs)
			continue
		}
		batch = g.take(batch[:0], p)
		// Whatever queued while the previous batch committed joins this one.
	drain:
		for len(batch) < g.opts.MaxBatch {
			select {
			case p, ok := <-g.queue:
				if !ok {
					break drain
				}
				batch = g.take(batch, p)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			continue
		}
		g.commit(w, batch)
	}
}

// WhenIdle runs fn in a transaction of its own once no batch waits for the
// workers, or once it has waited maxWait (a tenth of it when the workers
// are not Saturated), and returns fn's error or the commit's. Background
// writes that may wait — filing acknowledged registrations — use it to
// stay out of the batches' way without starving.
//   - On SQLite a worker runs fn between two batches, on a second
//     connection it keeps: the one writer is the worker's to share out, and
//     a background writer queueing for it on its own would take turns with
//     the batches at a peak, on a connection whose page cache the batches
//     had made stale.
//   - On PostgreSQL fn runs on a pooled connection, alongside the batches.
//
// On SQLite fn must not use the DB (with the write lock held), and a
// caller inside fn must not call WhenIdle or Do. After Close it fails with
// apperr.Unavailable (cause ErrClosed).
func (g *GroupCommit[T, R]) WhenIdle(ctx context.Context, maxWait time.Duration, fn func(ctx context.Context, tx *sql.Tx) error) error {
	j := &idleJob{fn: fn, done: make(chan error, 1), start: make(chan struct{})}
	if !g.Saturated() {
		maxWait /= 10
	}
	t := time.NewTimer(maxWait)
	defer t.Stop()
	closed := func() error {
		return apperr.Wrap(ErrClosed, apperr.Unavailable, "the server is shutting down; retry shortly")
	}
	select {
	case g.idle <- j:
	case <-t.C:
		select {
		case g.overdue <- j:
		case <-g.stopped:
			return closed()
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-g.stopped:
		return closed()
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-j.start:
		return g.db.InTx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
}

// take is what a worker does with a job it took: on SQLite it runs it on
// its jobs connection; on PostgreSQL it lets the caller run it.
func (j *idleJob) take(db *DB, jobs *heldConn) {
	if db.Dialect == SQLite {
		j.run(jobs)
		return
	}
	close(j.start)
}

// run runs the job on w's connection and hands back its outcome.
func (j *idleJob) run(w *heldConn) {
	// Like a batch, the job finishes once a worker took it.
	ctx := context.Background()
	tx, err := w.begin(ctx)
	if err != nil {
		j.done <- fmt.Errorf("storage: begin: %w", err)
		return
	}
	defer func() {
		if p := recover(); p != nil { // finishTx rolled back
			j.done <- fmt.Errorf("storage: idle job panicked: %v", p)
		}
	}()
	fnFailed := false
	err = finishTx(tx, func(tx *sql.Tx) error {
		err := j.fn(ctx, tx)
		fnFailed = err != nil
		return err
	})
	if err != nil && !fnFailed {
		w.release() // the commit failed: the next job takes a fresh connection
	}
	j.done <- err
}

// next waits for a worker's next work: an item to start a batch with, or
// a job. Items and overdue jobs go first; an idle job only once no item has
// come for idleGrace (at a peak the queue empties for a moment after each
// drain, and a job taken then delays the next batch by its length). ok is
// false once the queue is closed and drained.
func (g *GroupCommit[T, R]) next(grace *time.Timer) (p *pending[T, R], job *idleJob, ok bool) {
	select {
	case p, ok = <-g.queue:
		return p, nil, ok
	case job = <-g.overdue:
		return nil, job, true
	default:
	}
	grace.Reset(idleGrace)
	select {
	case p, ok = <-g.queue:
		return p, nil, ok
	case job = <-g.overdue:
		return nil, job, true
	case <-grace.C:
	}
	select {
	case p, ok = <-g.queue:
		return p, nil, ok
	case job = <-g.overdue:
		return nil, job, true
	case job = <-g.idle:
		return nil, job, true
	}
}

// heldConn is a connection a worker keeps between its transactions.
type heldConn struct {
	db   *DB
	conn *sql.Conn
}

// begin starts a transaction on the worker's connection, taking one from
// the pool first if it has none. If BEGIN fails — the connection broke
// since the last batch, e.g. the database restarted — it is tried once more
// on a fresh connection: a failed BEGIN did nothing, and the pool retries a
// broken connection the same way.
func (w *heldConn) begin(ctx context.Context) (*sql.Tx, error) {
	for attempt := 0; ; attempt++ {
		if w.conn == nil {
			c, err := w.db.Conn(ctx)
			if err != nil {
				return nil, err
			}
			w.conn = c
		}
		tx, err := w.conn.BeginTx(ctx, nil)
		if err == nil {
			return tx, nil
		}
		w.release() // the next try takes a fresh connection
		if attempt > 0 || ctx.Err() != nil || errors.Is(err, ErrWriteBusy) {
			return nil, err
		}
	}
}

// release hands the connection back to the pool (which drops it if it is
// broken).
func (w *heldConn) release() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// take adds p to batch unless its caller has already gone.
func (g *GroupCommit[T, R]) take(batch []*pending[T, R], p *pending[T, R]) []*pending[T, R] {
	if p.state.CompareAndSwap(itemWaiting, itemTaken) {
		batch = append(batch, p)
	}
	return batch
}

// commit runs one batch and hands every caller its outcome. Items that failed
// with a serialization failure or deadlock (PostgreSQL 40001/40P01) — or the
// whole batch, when the commit itself failed that way — are tried once more
// in a fresh transaction.
func (g *GroupCommit[T, R]) commit(w *heldConn, batch []*pending[T, R]) {
	items := make([]T, len(batch))
	for i, p := range batch {
		items[i] = p.item
	}
	g.recent[g.recentNext.Add(1)%recentBatches].Store(int32(len(items)))
	results, errs, err := g.run(w, items)
	if err != nil && IsRetryable(err) {
		results, errs, err = g.run(w, items)
	}
	if err != nil {
		for _, p := range batch {
			p.done <- outcome[R]{err: err}
		}
		return
	}
	var again []int
	for i, e := range errs {
		if e != nil && IsRetryable(e) {
			again = append(again, i)
		}
	}
	if len(again) > 0 {
		retry := make([]T, len(again))
		for j, i := range again {
			retry[j] = items[i]
		}
		rres, rerrs, rerr := g.run(w, retry)
		for j, i := range again {
			if rerr != nil {
				errs[i] = rerr
			} else {
				results[i], errs[i] = rres[j], rerrs[j]
			}
		}
	}
	for i, p := range batch {
		if errs[i] != nil {
			p.done <- outcome[R]{err: errs[i]}
		} else {
			p.done <- outcome[R]{result: results[i]}
		}
	}
}

// run applies items in one transaction and commits it. A non-nil error means
// nothing was committed; otherwise errs says which items were left out.
func (g *GroupCommit[T, R]) run(w *heldConn, items []T) (results []R, errs []error, err error) {
	start := time.Now()
	defer func() {
		if g.opts.OnBatch != nil {
			g.opts.OnBatch(len(items), time.Since(start), err)
		}
	}()
	// The batch serves many callers, so no one caller's ctx may cancel it.
	ctx := context.Background()
	tx, err := w.begin(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: group commit begin: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			err = fmt.Errorf("storage: group commit apply panicked: %v", p)
		}
	}()
	results, errs = g.apply(ctx, tx, items)
	if len(results) != len(items) || len(errs) != len(items) {
		_ = tx.Rollback()
		return nil, nil, fmt.Errorf("storage: group commit apply returned %d results and %d errors for %d items", len(results), len(errs), len(items))
	}
	for _, e := range errs {
		var abort *abortError
		if errors.As(e, &abort) {
			_ = tx.Rollback()
			return nil, nil, abort.err
		}
	}
	if err := tx.Commit(); err != nil {
		w.release()
		return nil, nil, fmt.Errorf("storage: group commit: %w", err)
	}
	return results, errs, nil
}

// AbortBatch marks an apply's failure of the whole batch — a set-based
// statement for all its items failed. Returned as any item's error, it makes
// the group commit roll the transaction back instead of committing the
// other items, and every item gets err (a serialization failure or deadlock
// is retried like a failed commit). It is cheaper than a savepoint around
// the batch, which on SQLite copies every page the batch touches.
func AbortBatch(err error) error { return &abortError{err: err} }

type abortError struct{ err error }

func (e *abortError) Error() string { return e.err.Error() }
func (e *abortError) Unwrap() error { return e.err }

// IsRetryable reports a PostgreSQL serialization failure or deadlock: the
// transaction lost a race and may succeed if simply run again.
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// Savepoint runs fn under a savepoint of tx: if fn fails, everything it wrote
// is rolled back and tx stays usable (on PostgreSQL a failed statement would
// otherwise abort the whole transaction). name must be a plain SQL identifier.
func Savepoint(ctx context.Context, tx *sql.Tx, name string, fn func() error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("storage: savepoint %s: %w", name, err)
	}
	if err := fn(); err != nil {
		if _, rbErr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); rbErr != nil {
			return errors.Join(err, fmt.Errorf("storage: rollback to savepoint %s: %w", name, rbErr))
		}
		if _, relErr := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); relErr != nil {
			return errors.Join(err, fmt.Errorf("storage: release savepoint %s: %w", name, relErr))
		}
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return fmt.Errorf("storage: release savepoint %s: %w", name, err)
	}
	return nil
}

// SavepointEach is an apply function for GroupCommit built from a per-item
// write: each item runs under its own savepoint, so a failing item leaves no
// trace while the rest of the batch commits.
func SavepointEach[T, R any](write func(ctx context.Context, tx *sql.Tx, item T) (R, error)) func(ctx context.Context, tx *sql.Tx, items []T) ([]R, []error) {
	return func(ctx context.Context, tx *sql.Tx, items []T) ([]R, []error) {
		results := make([]R, len(items))
		errs := make([]error, len(items))
		for i, item := range items {
			errs[i] = Savepoint(ctx, tx, "group_item", func() error {
				var err error
				results[i], err = write(ctx, tx, item)
				return err
			})
		}
		return results, errs
	}
}
