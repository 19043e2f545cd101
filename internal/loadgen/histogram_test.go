package loadgen

import (
	"sync"
	"testing"
	"time"
)

func TestBucketsTileTheRange(t *testing.T) {
	// Every bucket starts right after the previous one ends, and is narrower
	// than 1/subBuckets of its values.
	for i := 0; i <= numBuckets-2; i++ {
		high := bucketHigh(i)
		if got := bucketOf(high); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d) = %d) = %d", i, high, got)
		}
		if got := bucketOf(high + 1); got != i+1 {
			t.Fatalf("bucketOf(%d) = %d, want %d", high+1, got, i+1)
		}
		if i >= subBuckets {
			low := bucketHigh(i-1) + 1
			if width := high - low + 1; float64(width) > float64(low)/subBuckets {
				t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, low, high, subBuckets)
			}
		}
	}
	if got := bucketOf(1 << 62); got != numBuckets-1 {
		t.Errorf("a huge value went to bucket %d, want the last (%d)", got, numBuckets-1)
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values func(h *Histogram)
		q      float64
		want   time.Duration
	}{
		{"median of 1..10000 µs", uniform(10000, time.Microsecond), 0.5, 5000 * time.Microsecond},
		{"p90 of 1..10000 µs", uniform(10000, time.Microsecond), 0.9, 9000 * time.Microsecond},
		{"p99 of 1..10000 µs", uniform(10000, time.Microsecond), 0.99, 9900 * time.Microsecond},
		{"p99.9 of 1..10000 µs", uniform(10000, time.Microsecond), 0.999, 9990 * time.Microsecond},
		{"p100 is the max", uniform(10000, time.Microsecond), 1, 10000 * time.Microsecond},
		{"p0 is the smallest", uniform(10000, time.Microsecond), 0, time.Microsecond},
		{"one slow request in a thousand", func(h *Histogram) {
			for range 999 {
				h.Record(2 * time.Millisecond)
			}
			h.Record(3 * time.Second)
		}, 0.999, 2 * time.Millisecond},
		{"two slow requests in a thousand", func(h *Histogram) {
			for range 998 {
				h.Record(2 * time.Millisecond)
			}
			h.Record(3 * time.Second)
			h.Record(3 * time.Second)
		}, 0.999, 3 * time.Second},
		{"small exact values", func(h *Histogram) {
			for _, v := range []time.Duration{5, 7, 9, 11} {
				h.Record(v)
			}
		}, 0.5, 7},
		{"negative counts as zero", func(h *Histogram) { h.Record(-time.Second) }, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Histogram{}
			tt.values(h)
			got := h.Quantile(tt.q)
			// Never below the true value, above it by less than a bucket.
			if got < tt.want || float64(got-tt.want) > float64(tt.want)/subBuckets {
				t.Errorf("Quantile(%v) = %v, want %v (+%.1f%%)", tt.q, got, tt.want, 100.0/subBuckets)
			}
		})
	}
}

func uniform(n int, unit time.Duration) func(h *Histogram) {
	return func(h *Histogram) {
		for i := 1; i <= n; i++ {
			h.Record(time.Duration(i) * unit)
		}
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h Histogram
	if h.Count() != 0 || h.Quantile(0.99) != 0 || h.Max() != 0 {
		t.Errorf("empty histogram: count %d, p99 %v, max %v", h.Count(), h.Quantile(0.99), h.Max())
	}
}

func TestConcurrentRecords(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 {
		t.Errorf("count %d, want 8000", h.Count())
	}
	if h.Max() != 7999*time.Microsecond {
		t.Errorf("max %v, want 7.999ms exactly", h.Max())
	}
}
