package storage_test

import (
	"context"
	"database/sql"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/storage"
)

// TestSQLiteWritersQueueInOrder runs a writer that commits transaction after
// transaction without pause, as the registration group commit does on a
// testing day, and meanwhile ten small writes outside it. Each must get its
// turn within a few of the hot writer's transactions. Left to SQLite's
// busy_timeout, a waiting writer polls with sleeps of up to 100 ms and
// nearly always finds the lock taken again: it waited seconds and then
// failed with SQLITE_BUSY.
func TestSQLiteWritersQueueInOrder(t *testing.T) {
	w, _ := openPair(t)
	if w.Dialect != storage.SQLite {
		t.Skip("PostgreSQL has row locks, not one writer")
	}
	ctx := context.Background()
	var hot atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			err := w.InTx(ctx, func(tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, "INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ($1, 1, 'hot')", "H"+time.Now().Format("150405.000000000"))
				time.Sleep(2 * time.Millisecond) // a batch's statements
				return err
			})
			if err != nil {
				done <- err
				return
			}
			hot.Add(1)
		}
	}()
	for hot.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	for i := range 10 {
		before := hot.Load()
		if _, err := w.ExecContext(ctx, "INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ($1, 1, 'small')", "S"+strconv.Itoa(i)); err != nil {
			t.Fatalf("small write %d: %v", i, err)
		}
		// In order: at most the transaction holding the lock and the one
		// already queued ran before this write.
		if waited := hot.Load() - before; waited > 3 {
			t.Errorf("small write %d waited for %d of the hot writer's transactions", i, waited)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("hot writer: %v", err)
	}
}
