package storage_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/storage"
)

// TestSQLiteCheckpointsInTheBackground writes enough to fill WAL pages and
// waits for the background checkpointer to copy them into the database
// file, with no commit crossing the connections' own (backstop) threshold.
func TestSQLiteCheckpointsInTheBackground(t *testing.T) {
	w, _ := openPair(t)
	if w.Dialect != storage.SQLite {
		t.Skip("SQLite only")
	}
	ctx := context.Background()
	for i := range 200 {
		if _, err := w.ExecContext(ctx, "INSERT INTO gc_specimens (barcode, site_id, payload) VALUES ($1, 1, $2)",
			"C"+strconv.Itoa(i), strings.Repeat("x", 2000)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.CheckpointedPages() < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pages checkpointed after 10 s", w.CheckpointedPages())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
