package screening

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/storage"
)

// Filing (归档) turns acknowledged registrations, waiting in specimen_queue,
// into persons, specimens, coverage counts and audit entries. A
// registration's group commit writes only its queue row and its tube's
// fill: the few pages that decide its answer. The rest — about six pages of
// indexes a registration, most of them at random places (a person's ID
// number, name and phone) — is written here in batches of its own. On a
// testing day's peak the queue grows and the lists lag behind the
// registrations by the queue's length; the filer catches up as the peak
// passes. Nothing acknowledged is lost: the queue row and its filing are
// each committed, and filing deletes the row in the transaction that files
// it. What depends on a registration being filed waits for it:
//   - a result files its tube's queued members first, in its own
//     transaction (fileTubes), so recalls and coverage see every member;
//   - reads that show filed data (coverage, a tube's members, a person's
//     specimens, recalls) first file a small backlog (settle): a sampler
//     or a lab sees what they just did. A backlog larger than settleLimit
//     is a peak: the read shows what is filed and says how much is queued.

// Sizes of a filing transaction, and the filer's pace (see fileQueued).
// While registrations arrive, a filing transaction is kept short, so an
// acknowledgement never waits long behind it: fileChunkPeak rows while the
// group commit is saturated, fileChunkBusy below that, fileChunk once
// registrations stop.
const (
	fileChunk      = 512
	fileChunkBusy  = 96
	fileChunkPeak  = 48
	settleLimit    = 5000
	filerIdlePoll  = time.Second
	filerBackoff   = time.Second
	filerMaxYield  = 250 * time.Millisecond
	filerQuiet     = 100 * time.Millisecond
	settleLockWait = 5 * time.Millisecond
)

// filer files the queue in the background: woken after each committed
// registration batch, and every filerIdlePoll for rows another instance
// (or a previous run) left.
type filer struct {
	lastBatch atomic.Int64 // when the last registration batch committed, Unix ns
	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	stopOnce  sync.Once
}

func newFiler() *filer {
	return &filer{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// registering reports whether registrations are arriving: some wait for a batch,
// or a batch committed within filerQuiet.
func (s *Service) registering() bool {
	return s.register.Pending() > 0 || time.Since(time.Unix(0, s.filer.lastBatch.Load())) < filerQuiet
}

// poke wakes the filer without blocking.
func (f *filer) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (s *Service) runFiler() {
	defer close(s.filer.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.filer.stop:
			cancel() // a filing waiting for its turn gives it up
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(filerIdlePoll)
	defer tick.Stop()
	for {
		select {
		case <-s.filer.stop:
			return
		case <-s.filer.wake:
		case <-tick.C:
		}
		for {
			n, err := s.fileQueued(ctx)
			if err != nil && ctx.Err() != nil {
				return
			}
			if err != nil {
				s.log.Error("screening: filing registrations failed; retrying", "err", err)
				select {
				case <-s.filer.stop:
					return
				case <-time.After(filerBackoff):
				}
				break
			}
			if n == 0 {
				break
			}
			select {
			case <-s.filer.stop:
				return
			default:
			}
		}
	}
}

// stopFiler stops the background filer and files what is left, for up to
// timeout: a command that registered specimens (the demo loader) leaves
// them filed. What is not filed stays queued for the next start.
func (s *Service) stopFiler(timeout time.Duration) {
	s.filer.stopOnce.Do(func() { close(s.filer.stop) })
	<-s.filer.done
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for ctx.Err() == nil {
		n, err := s.fileQueued(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("screening: filing registrations at shutdown", "err", err)
			}
			return
		}
		if n == 0 {
			return
		}
	}
}

// Queued returns how many acknowledged registrations wait to be filed.
func (s *Service) Queued(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM specimen_queue").Scan(&n); err != nil {
		return 0, fmt.Errorf("screening: count queued registrations: %w", err)
	}
	return n, nil
}

// fileQueued files one transaction's worth of queued registrations, oldest
// first, and returns how many it filed. A deadlock or serialization failure
// (PostgreSQL) is tried once more.
//
// The transaction runs through the registration group commit
// (storage.GroupCommit.WhenIdle): once no batch has waited for 2 ms, or once
// it has waited filerMaxYield (a tenth of it while the group commit is not
// saturated). At a peak the acknowledgements keep the writer (SQLite) or
// the cores (PostgreSQL), filing takes a short chunk each filerMaxYield,
// and catches up as the peak passes; at a steady lower rate it takes turns
// with the batches, so coverage keeps up with sampling (load test, 2,000
// registrations a second: 236 left queued on SQLite, none on PostgreSQL).
// Filing that waited for registrations to pause never kept up with a
// steady rate above about 190 a second: the queue grew all day. On SQLite
// the group commit's worker runs it on a connection of its own, so it does
// not queue for the write lock between batches. After Close (the final
// filing) it runs on a pooled connection.
func (s *Service) fileQueued(ctx context.Context) (int, error) {
	limit := fileChunk
	switch {
	case s.register.Saturated():
		limit = fileChunkPeak
	case s.registering():
		limit = fileChunkBusy
	}
	var n int
	fileIn := func(ctx context.Context, tx *sql.Tx) error {
		var err error
		n, err = s.fileIn(ctx, tx, limit, nil, true)
		return err
	}
	file := func() error {
		err := s.register.WhenIdle(ctx, filerMaxYield, fileIn)
		if errors.Is(err, storage.ErrClosed) {
			err = s.db.InTx(ctx, func(tx *sql.Tx) error { return fileIn(ctx, tx) })
		}
		return err
	}
	err := file()
	if err != nil && storage.IsRetryable(err) {
		err = file()
	}
	return n, err
}

// fileIn files up to limit queued registrations inside tx and returns how
// many. On PostgreSQL skipLocked passes over rows another filer holds
// (the background filers); otherwise it waits for them, and finds them
// gone once that filer commits.
func (s *Service) fileIn(ctx context.Context, tx *sql.Tx, limit int, codes []string, skipLocked bool) (int, error) {
	items, rows, err := s.readQueue(ctx, tx, limit, codes, skipLocked)
	if err != nil || len(items) == 0 {
		return 0, err
	}
	b := s.newRegBatch(tx, items)
	b.rows = rows
	// The shared rows last, next to the commit, and in the order every
	// writer takes them — tubes (registrations, handovers, results), then
	// coverage counters (results), then the audit chain — so that on
	// PostgreSQL they are held briefly and never deadlock.
	err = b.run(ctx, b.findPersons, b.findCampaignPersons, b.insertSpecimens, b.insertCampaignPersons, b.markResampled,
		b.dequeue, b.countRegions, b.countCoverage, b.record)
	if err != nil {
		return 0, err
	}
	return len(items), nil
}

const queueColumns = `q.id, q.client_id, q.body_hash, q.sampling_point_id, q.tube_id, t.code, q.id_type, q.id_number, q.name, q.sex,
	q.birth_date, q.phone, q.no_phone, q.region_code, q.sampled_at, q.sampled_by, q.created_at,
	q.origin_user_id, q.origin_username, q.origin_region, q.origin_addr, q.origin_agent`

// readQueue reads (and on PostgreSQL locks) up to limit queued
// registrations, oldest first, as the registrations and rows a batch files.
func (s *Service) readQueue(ctx context.Context, tx *sql.Tx, limit int, codes []string, skipLocked bool) ([]registration, []regRow, error) {
	a := s.db.Dialect.BulkArgs()
	query := "SELECT " + queueColumns + " FROM specimen_queue q JOIN tubes t ON t.id = q.tube_id"
	if codes != nil {
		query += " WHERE q.tube_id IN (SELECT id FROM tubes WHERE " + storage.InList(s.db.Dialect, &a, "code", codes) + ")"
	}
	query += " ORDER BY q.id LIMIT " + a.Add(limit)
	if s.db.Dialect == storage.Postgres {
		query += " FOR UPDATE OF q"
		if skipLocked {
			query += " SKIP LOCKED"
		}
	}
	rows, err := tx.QueryContext(ctx, query, s.db.Dialect.FreshPlan(a.Values())...)
	if err != nil {
		return nil, nil, fmt.Errorf("screening: read queued registrations: %w", err)
	}
	defer rows.Close()
	var items []registration
	var out []regRow
	tubes := make(map[int64]*tubeRow)
	for rows.Next() {
		var it registration
		var r regRow
		var pointID, tubeID int64
		var tubeCode, idType, sex string
		var birth sql.NullString
		var by, originUser sql.NullInt64
		p := &it.person
		o := &it.origin
		if err := rows.Scan(&r.specimenID, &it.clientID, &it.hash, &pointID, &tubeID, &tubeCode, &idType, &p.IDNumber, &p.Name, &sex,
			&birth, &p.Phone, &p.NoPhone, &p.RegionCode, &it.sampledAt, &by, &it.acceptedAt,
			&originUser, &o.Username, &o.RegionCode, &o.ClientAddr, &o.UserAgent); err != nil {
			return nil, nil, fmt.Errorf("screening: read queued registrations: %w", err)
		}
		p.IDType, p.Sex, it.by, o.UserID, it.tubeCode = people.IDType(idType), people.Sex(sex), by.Int64, originUser.Int64, tubeCode
		if birth.Valid {
			if p.BirthDate, err = time.Parse(time.DateOnly, birth.String); err != nil {
				return nil, nil, fmt.Errorf("screening: queued registration %d: birth date %q: %w", r.specimenID, birth.String, err)
			}
		}
		it.point.id = pointID // read below, once the rows are closed
		t := tubes[tubeID]
		if t == nil {
			t = &tubeRow{id: tubeID, code: tubeCode}
			tubes[tubeID] = t
		}
		r.tube = t
		items = append(items, it)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("screening: read queued registrations: %w", err)
	}
	rows.Close() // PostgreSQL runs one statement at a time on a connection
	for i := range items {
		it := &items[i]
		if it.point, err = s.points.get(ctx, s, tx, it.point.id); err != nil {
			return nil, nil, fmt.Errorf("screening: queued registration %d: %w", out[i].specimenID, err)
		}
	}
	return items, out, nil
}

// dequeue deletes the filed registrations from the queue.
func (b *regBatch) dequeue(ctx context.Context) error {
	d := b.s.db.Dialect
	a := d.BulkArgs()
	ids := make([]int64, len(b.rows))
	for i, r := range b.rows {
		ids[i] = r.specimenID
	}
	res, err := b.tx.ExecContext(ctx, "DELETE FROM specimen_queue WHERE "+storage.InList(d, &a, "id", ids), d.FreshPlan(a.Values())...)
	if err != nil {
		return fmt.Errorf("screening: dequeue filed registrations: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || int(n) != len(b.rows) {
		return fmt.Errorf("screening: dequeued %d of %d filed registrations (%v)", n, len(b.rows), err)
	}
	return nil
}

// fileTubes files, inside a results transaction, the queued registrations
// of the tubes named: a result must reach every member of its tube. Almost
// always the queue holds none of them (tubes reach a lab long after their
// members were filed) and this is one probe of an empty index.
func (s *Service) fileTubes(ctx context.Context, tx *sql.Tx, codes []string) error {
	var any int
	err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM specimen_queue ORDER BY id LIMIT 1) q", s.db.Dialect.FreshPlan(nil)...).Scan(&any)
	if err != nil {
		return fmt.Errorf("screening: probe the filing queue: %w", err)
	}
	if any == 0 {
		return nil
	}
	if s.db.Dialect == storage.Postgres {
		// Lock every queued row of these tubes first, waiting for those a
		// background filer holds (gone once it commits) while this
		// transaction holds nothing yet. Waiting later, between chunks,
		// would hold the tubes, counters and audit chain the first chunk
		// locked, which that filer wants next: a deadlock.
		var a storage.Args
		err := lockRows(ctx, tx, "SELECT q.id FROM specimen_queue q WHERE q.tube_id IN (SELECT id FROM tubes WHERE "+
			storage.InList(s.db.Dialect, &a, "code", codes)+") FOR UPDATE", s.db.Dialect.FreshPlan(a.Values()))
		if err != nil {
			return fmt.Errorf("screening: lock queued registrations: %w", err)
		}
	}
	for {
		n, err := s.fileIn(ctx, tx, fileChunk, codes, false)
		if err != nil || n == 0 {
			return err
		}
	}
}

// lockRows runs a SELECT … FOR UPDATE for its locks alone, reading its
// rows to the end: an error (a deadlock, on PostgreSQL) can come with the
// rows, and ignoring it would leave the transaction aborted.
func lockRows(ctx context.Context, tx *sql.Tx, query string, args []any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return storage.EachRow(rows, func(*sql.Rows) error { return nil })
}

// settle files a small backlog before a read of filed data, so that what a
// user just registered shows (see the package comment on filing). It
// returns how many registrations are still queued: 0 after filing, or the
// backlog (at least settleLimit) that it left to the filer.
func (s *Service) settle(ctx context.Context) (int, error) {
	var queued int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM specimen_queue ORDER BY id LIMIT $1) q",
		s.db.Dialect.FreshPlan([]any{settleLimit + 1})...).Scan(&queued)
	if err != nil {
		return 0, fmt.Errorf("screening: count queued registrations: %w", err)
	}
	if queued == 0 {
		return 0, nil
	}
	if queued > settleLimit {
		return s.Queued(ctx)
	}
	return 0, s.FileQueued(ctx)
}

// FileQueued files every registration acknowledged before the call, however
// many: for commands and tests that read the tables directly.
func (s *Service) FileQueued(ctx context.Context) error {
	var head int64
	if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM specimen_queue").Scan(&head); err != nil {
		return fmt.Errorf("screening: read the filing queue: %w", err)
	}
	for {
		// Filing takes the oldest first: done once nothing acknowledged
		// before this read is left, whatever came since.
		var left int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM specimen_queue WHERE id <= $1", s.db.Dialect.FreshPlan([]any{head})...).Scan(&left); err != nil {
			return fmt.Errorf("screening: read the filing queue: %w", err)
		}
		if left == 0 {
			return nil
		}
		n, err := s.fileQueued(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		// Another filer holds the rest (PostgreSQL): wait for it.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(settleLockWait):
		}
	}
}

// settled is settle for reads that show no backlog figure.
func (s *Service) settled(ctx context.Context) error {
	_, err := s.settle(ctx)
	return err
}
