package tabular

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"
)

// BenchmarkWrite writes 100,000 roster rows per op and reports the cost per row.
func BenchmarkWrite(b *testing.B) {
	const rows = 100_000
	sample := make([][]any, 1000)
	for i := range sample {
		sample[i] = []any{
			fmt.Sprintf("张%d", i), fmt.Sprintf("1101011990%08d", i), "=note", i,
			sampled.Add(time.Duration(i) * time.Minute), born.AddDate(0, 0, i),
		}
	}
	for _, f := range []Format{CSV, XLSX} {
		b.Run(string(f), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				w, err := NewWriter(io.Discard, f, "bench", personColumns, nil)
				if err != nil {
					b.Fatal(err)
				}
				for i := range rows {
					if err := w.Write(sample[i%len(sample)]); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			n := float64(b.N) * rows
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/row")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/row")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/n, "B/row")
		})
	}
}

// BenchmarkRead imports 100,000 rows per op written by BenchmarkWrite's writer.
func BenchmarkRead(b *testing.B) {
	const rows = 100_000
	for _, f := range []Format{CSV, XLSX} {
		b.Run(string(f), func(b *testing.B) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, f, "bench", personColumns, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range rows {
				row := []any{fmt.Sprintf("张%d", i), fmt.Sprintf("1101011990%08d", i), "=note", i, sampled, born}
				if err := w.Write(row); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			im := Import{Required: []string{"name", "id_number"}}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				n := 0
				errs, err := im.Read(bytes.NewReader(buf.Bytes()), f, func(int, Record) error { n++; return nil })
				if err != nil || len(errs) > 0 || n != rows {
					b.Fatalf("read %d rows: %v %v", n, errs, err)
				}
			}
			runtime.ReadMemStats(&after)
			n := float64(b.N) * rows
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/row")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/n, "allocs/row")
		})
	}
}
