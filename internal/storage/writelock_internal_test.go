package storage

import (
	"context"
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
	_, err = db.ExecContext(ctx, "INSERT INTO t (n) VALUES (1)")
	if !apperr.Is(err, apperr.Unavailable) || !errors.Is(err, ErrWriteBusy) {
		t.Fatalf("a write behind a held transaction: %v, want Unavailable caused by ErrWriteBusy", err)
	}
	if _, err := db.BeginTx(ctx, nil); !errors.Is(err, ErrWriteBusy) {
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
