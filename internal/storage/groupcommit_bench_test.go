package storage_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// The benchmarks compare, on each database, writers that each commit their
// own transaction per row with writers that share a GroupCommit. Every row is
// ~200 bytes and every acknowledged row is durable in both cases. Reported:
// rows/s, and p50/p99 of one write's latency as its caller sees it.
//
//	go test -run x -bench GroupCommit -benchtime 20000x ./internal/storage/
//
// The PostgreSQL benchmark needs SHAOBING_TEST_POSTGRES (scripts/test sets it).

func BenchmarkGroupCommitSQLite(b *testing.B) {
	benchmarkGroupCommit(b, func(b *testing.B) *storage.DB {
		db := storagetest.OpenSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
		if err := db.Migrate(context.Background(), specimenMigrations); err != nil {
			b.Fatal(err)
		}
		return db
	}, 1)
}

func BenchmarkGroupCommitPostgres(b *testing.B) {
	benchmarkGroupCommit(b, func(b *testing.B) *storage.DB {
		b.Setenv("SHAOBING_TEST_DB", "postgres")
		return storagetest.Open(b, specimenMigrations)
	}, 2)
}

func benchmarkGroupCommit(b *testing.B, open func(*testing.B) *storage.DB, workers int) {
	payload := strings.Repeat("x", 180) // with the barcode and site, ~200 bytes a row
	var run atomic.Int64
	for _, writers := range []int{64, 256} {
		b.Run(fmt.Sprintf("per-row/writers=%d", writers), func(b *testing.B) {
			db := open(b)
			write := func(ctx context.Context, s specimen) error {
				return db.InTx(ctx, func(tx *sql.Tx) error {
					_, err := insertSpecimen(ctx, tx, s)
					return err
				})
			}
			measureWriters(b, writers, run.Add(1), payload, write)
		})
		b.Run(fmt.Sprintf("group/writers=%d", writers), func(b *testing.B) {
			db := open(b)
			var batches, items atomic.Int64
			gc := storage.NewGroupCommit(db, storage.GroupCommitOptions{
				Workers: workers,
				OnBatch: func(size int, _ time.Duration, _ error) { batches.Add(1); items.Add(int64(size)) },
			}, storage.SavepointEach(insertSpecimen))
			defer gc.Close()
			write := func(ctx context.Context, s specimen) error {
				_, err := gc.Do(ctx, s)
				return err
			}
			measureWriters(b, writers, run.Add(1), payload, write)
			if n := batches.Load(); n > 0 {
				b.ReportMetric(float64(items.Load())/float64(n), "rows/txn")
			}
		})
		b.Run(fmt.Sprintf("group-bulk/writers=%d", writers), func(b *testing.B) {
			db := open(b)
			var batches, items atomic.Int64
			gc := storage.NewGroupCommit(db, storage.GroupCommitOptions{
				Workers: workers,
				OnBatch: func(size int, _ time.Duration, _ error) { batches.Add(1); items.Add(int64(size)) },
			}, insertSpecimensBulk)
			defer gc.Close()
			write := func(ctx context.Context, s specimen) error {
				_, err := gc.Do(ctx, s)
				return err
			}
			measureWriters(b, writers, run.Add(1), payload, write)
			if n := batches.Load(); n > 0 {
				b.ReportMetric(float64(items.Load())/float64(n), "rows/txn")
			}
		})
	}
}

// insertSpecimensBulk is the validate-then-write alternative to savepoints:
// one multi-row INSERT … ON CONFLICT DO NOTHING per batch, which no single
// item can make fail; an item whose row did not come back was a duplicate.
// It costs one round trip per batch instead of three per item.
func insertSpecimensBulk(ctx context.Context, tx *sql.Tx, items []specimen) ([]int64, []error) {
	var args storage.Args
	var q strings.Builder
	q.WriteString("INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ")
	for i, s := range items {
		if i > 0 {
			q.WriteString(", ")
		}
		site := s.Site
		if site == 0 {
			site = 1
		}
		fmt.Fprintf(&q, "(%s, %s, %s)", args.Add(s.Barcode), args.Add(site), args.Add(s.Payload))
	}
	q.WriteString(" ON CONFLICT (barcode) DO NOTHING RETURNING barcode, id")
	ids := make([]int64, len(items))
	errs := make([]error, len(items))
	fail := func(err error) ([]int64, []error) {
		for i := range errs {
			errs[i] = err
		}
		return ids, errs
	}
	rows, err := tx.QueryContext(ctx, q.String(), args.Values()...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	inserted := make(map[string]int64, len(items))
	for rows.Next() {
		var code string
		var id int64
		if err := rows.Scan(&code, &id); err != nil {
			return fail(err)
		}
		inserted[code] = id
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	for i, s := range items {
		id, ok := inserted[s.Barcode]
		if !ok {
			errs[i] = fmt.Errorf("specimen %s is already registered", s.Barcode)
			continue
		}
		ids[i] = id
		delete(inserted, s.Barcode) // a later duplicate in the same batch is not the one stored
	}
	return ids, errs
}

// measureWriters spreads b.N writes over the given number of goroutines and
// reports throughput and per-write latency percentiles.
func measureWriters(b *testing.B, writers int, run int64, payload string, write func(context.Context, specimen) error) {
	ctx := context.Background()
	latencies := make([][]time.Duration, writers)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := write(ctx, specimen{Barcode: fmt.Sprintf("B%d-%010d", run, i), Payload: payload}); err != nil {
					failed.Store(err)
					return
				}
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
