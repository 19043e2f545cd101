package audit

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/shaobing/shaobing/internal/scope"
)

// BenchmarkRecordBatch appends 1,000 entries per transaction, the shape of a
// bulk import or a group commit of specimen registrations.
func BenchmarkRecordBatch(b *testing.B) {
	l, db := newLog(b)
	ctx := WithClient(scope.WithPrincipal(context.Background(), &scope.Principal{UserID: 1, Username: "sampler01", RegionCode: "330305001"}), "10.1.2.3", "shaobing-app/1.0")
	entries := make([]Entry, 1000)
	for i := range entries {
		entries[i] = Entry{Action: "specimen.create", ObjectType: "specimen", ObjectID: fmt.Sprintf("T2026030100%06d", i)}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := db.InTx(ctx, func(tx *sql.Tx) error { return l.RecordBatch(ctx, tx, entries) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(entries))/b.Elapsed().Seconds(), "entries/s")
}
