package loadgen

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// phase counts one phase while its clients run. Throughput and latency count
// the answers that arrive inside the measured window [from, to); anything
// unexpected counts whenever it happens, warm-up included.
type phase struct {
	from, to time.Time

	latency   Histogram
	statuses  [600]atomic.Int64 // HTTP statuses in the window
	items     [600]atomic.Int64 // batch items' statuses in the window
	specimens atomic.Int64      // registrations answered 200 or 201 in the window
	// abandoned are registrations still being retried when the phase ended.
	abandoned  atomic.Int64
	transport  atomic.Int64 // requests that got no answer
	unexpected atomic.Int64

	mu       sync.Mutex
	examples []string
}

// open reports whether clients should send another request.
func (p *phase) open(ctx context.Context) bool {
	return ctx.Err() == nil && time.Now().Before(p.to)
}

// inWindow reports whether an answer at t is measured.
func (p *phase) inWindow(t time.Time) bool { return !t.Before(p.from) && t.Before(p.to) }

// sleep waits d before a retry. It reports false, without waiting, when the
// retry would come after the phase's end or ctx ends.
func (p *phase) sleep(ctx context.Context, d time.Duration) bool {
	until := time.Now().Add(d)
	return until.Before(p.to) && sleepUntil(ctx, until)
}

// answered records one HTTP answer.
func (p *phase) answered(start, end time.Time, status int) {
	if !p.inWindow(end) {
		return
	}
	p.latency.Record(end.Sub(start))
	p.statuses[statusIndex(status)].Add(1)
}

// item records the status of one specimen of a batch answer.
func (p *phase) item(at time.Time, status int) {
	if !expectedItem(status) {
		p.unexpectedAnswer(status, "batch item answered "+strconv.Itoa(status))
	}
	if p.inWindow(at) {
		p.items[statusIndex(status)].Add(1)
	}
}

// registered counts n specimens stored (or found stored) at t.
func (p *phase) registered(at time.Time, n int64) {
	if p.inWindow(at) {
		p.specimens.Add(n)
	}
}

// failed records a request that got no answer.
func (p *phase) failed(err error) {
	p.transport.Add(1)
	p.unexpected.Add(1)
	p.example(err.Error())
}

// unexpectedAnswer records an answer of a status the protocol does not
// expect (detail says what), keeping the first few for the report.
func (p *phase) unexpectedAnswer(status int, detail string) {
	p.unexpected.Add(1)
	p.example(strconv.Itoa(status) + " " + detail)
}

func (p *phase) example(s string) {
	const maxLen = 300
	if len(s) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	p.mu.Lock()
	if len(p.examples) < maxExamples {
		p.examples = append(p.examples, s)
	}
	p.mu.Unlock()
}

// statusIndex maps an HTTP status to its counter; anything outside
// 100–599 (which no server sends) shares counter 0.
func statusIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status
}

// expectedStatus reports whether a request to path may be answered status:
// success, or 503 when the server sheds load (and the client retries).
func expectedStatus(path string, status int) bool {
	switch status {
	case http.StatusOK, http.StatusServiceUnavailable:
		return true
	case http.StatusCreated:
		return path == pathSpecimen
	}
	return false
}

// expectedItem reports whether a batch item may be answered status.
func expectedItem(status int) bool {
	return status == http.StatusCreated || status == http.StatusOK || status == http.StatusServiceUnavailable
}

// result turns the counters into the phase's figures; now is when its last
// client finished, which bounds the window when the run was cut short.
func (p *phase) result(name string, now time.Time) Phase {
	end := p.to
	if now.Before(end) {
		end = now
	}
	ph := Phase{
		Name:            name,
		Seconds:         max(end.Sub(p.from).Seconds(), 0),
		Requests:        p.latency.Count(),
		Specimens:       p.specimens.Load(),
		Statuses:        counts(&p.statuses),
		ItemStatuses:    counts(&p.items),
		TransportErrors: p.transport.Load(),
		Abandoned:       p.abandoned.Load(),
		Unexpected:      p.unexpected.Load(),
		Examples:        p.examples,
		Latency: Latency{
			P50: ms(p.latency.Quantile(0.50)), P90: ms(p.latency.Quantile(0.90)), P99: ms(p.latency.Quantile(0.99)),
			P999: ms(p.latency.Quantile(0.999)), Max: ms(p.latency.Max()),
		},
	}
	if ph.Seconds > 0 {
		ph.RequestsPerSecond = float64(ph.Requests) / ph.Seconds
		ph.SpecimensPerSecond = float64(ph.Specimens) / ph.Seconds
	}
	return ph
}

// counts returns the non-zero counters by status; nil when all are zero.
func counts(c *[600]atomic.Int64) map[string]int64 {
	var out map[string]int64
	for i := range c {
		if n := c[i].Load(); n > 0 {
			if out == nil {
				out = make(map[string]int64)
			}
			key := strconv.Itoa(i)
			if i == 0 {
				key = "other"
			}
			out[key] = n
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
