package storage

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
)

// TestWriteLockGivesUpAsBusy: a writer that waits longer than writeLockWait
// behind another gets an Unavailable error (503, retry) whose cause is
// ErrWriteBusy, and writes nothing; once the lock is free it gets in.
func TestWriteLockGivesUpAsBusy(t *testing.T) {
	defer func(d time.Duration) { writeLockWait = d }(writeLockWait)
	writeLockWait = 50 * time.Millisecond
	ctx := context.Background()
	db, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "busy.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	holder, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The writers that wait are other goroutines: the holder's own would
	// trip checkHolder.
	elsewhere(func() { _, err = db.ExecContext(ctx, "INSERT INTO t (n) VALUES (1)") })
	if !apperr.Is(err, apperr.Unavailable) || !errors.Is(err, ErrWriteBusy) {
		t.Fatalf("a write behind a held transaction: %v, want Unavailable caused by ErrWriteBusy", err)
	}
	elsewhere(func() { _, err = db.BeginTx(ctx, nil) })
	if !errors.Is(err, ErrWriteBusy) {
		t.Fatalf("a transaction behind a held one: %v, want ErrWriteBusy", err)
	}
	if err := holder.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO t (n) VALUES (2)"); err != nil {
		t.Fatalf("a write once the lock is free: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want only the last write", n, err)
	}
}

// elsewhere runs fn on another goroutine and waits for it.
func elsewhere(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// TestHolderTakingASecondConnectionPanics: in a test binary, the goroutine
// holding the write lock that asks the pool for another connection panics
// (checkHolder) — outside tests it could wait for writers that hold every
// connection while they wait for it. Other goroutines, and the holder
// querying through its transaction, are unaffected.
func TestHolderTakingASecondConnectionPanics(t *testing.T) {
	if !checkHolder {
		t.Fatal("checkHolder is off in a test binary")
	}
	ctx := context.Background()
	db, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "holder.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Two idle connections, so the second one comes from the pool's idle
	// list (ResetSession) as well as from Connect.
	for range 2 {
		if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (n INTEGER)"); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
		t.Fatalf("the holder through its transaction: %v", err)
	}
	elsewhere(func() { err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n) })
	if err != nil {
		t.Fatalf("another goroutine reading while the lock is held: %v", err)
	}
	for attempt := range 3 { // an idle connection, then new ones
		func() {
			defer func() {
				if p := recover(); p == nil {
					t.Errorf("attempt %d: the holder took a second connection without a panic", attempt)
				}
			}()
			var c *sql.Conn
			c, err = db.Conn(ctx)
			if err == nil {
				c.Close()
			}
		}()
	}
}
