package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The process collector's metrics the load reads from the server.
const (
	rssMetric = "process_resident_memory_bytes"
	cpuMetric = "process_cpu_seconds_total"
	// The registration group commit's histograms (their sums and counts).
	batchSizeSum   = "shaobing_specimen_batch_size_sum"
	batchSizeCount = "shaobing_specimen_batch_size_count"
	batchSecondSum = "shaobing_specimen_batch_seconds_sum"
)

// memory is what watchMemory saw.
type memory struct {
	max     int64 // bytes
	samples int
}

// watchMemory reads the server's resident memory from /metrics every
// RSSEvery until ctx ends and returns the largest reading.
func (r *runner) watchMemory(ctx context.Context) memory {
	var m memory
	tick := time.NewTicker(r.cfg.RSSEvery)
	defer tick.Stop()
	for {
		if v, err := r.metric(ctx, rssMetric); err == nil {
			m.max, m.samples = max(m.max, int64(v)), m.samples+1
		}
		select {
		case <-ctx.Done():
			return m
		case <-tick.C:
		}
	}
}

// metric reads one metric of the server's /metrics page, with a client of
// its own so that it never waits behind the load's connections.
func (r *runner) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+pathMetrics, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.metrics.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("loadgen: %s answered %s", req.URL, resp.Status)
	}
	return parseMetric(resp.Body, name)
}

// parseMetric finds an unlabelled metric in the Prometheus text format,
// where the value may be written as a float (1.2345e+08).
func parseMetric(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			return 0, fmt.Errorf("loadgen: %s value %q: %w", name, rest, err)
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("loadgen: read metrics: %w", err)
	}
	return 0, fmt.Errorf("loadgen: the metrics have no %s", name)
}

// cpuUse is the CPU time the server, this process and the whole machine
// had used at a moment.
type cpuUse struct {
	server, self, machine float64 // seconds
	at                    time.Time
	ok, machineOK         bool
	// The server's group-commit batches so far: specimens, batches and
	// seconds spent in them (batchOK false when the server has no such
	// metrics).
	specimens, batches, batchSeconds float64
	batchOK                          bool
}

// cpu reads the CPU times; ok is false when the server's or this process's
// is unknown. The moment is the middle of the request for the server's.
func (r *runner) cpu(ctx context.Context) cpuUse {
	start := time.Now()
	self, ok := selfCPU()
	machine, machineOK := machineCPU()
	server, err := r.metric(ctx, cpuMetric)
	u := cpuUse{server: server, self: self, machine: machine, at: start.Add(time.Since(start) / 2),
		ok: err == nil && ok, machineOK: machineOK}
	var errs [3]error
	u.specimens, errs[0] = r.metric(ctx, batchSizeSum)
	u.batches, errs[1] = r.metric(ctx, batchSizeCount)
	u.batchSeconds, errs[2] = r.metric(ctx, batchSecondSum)
	u.batchOK = errs[0] == nil && errs[1] == nil && errs[2] == nil
	return u
}

// batching returns the server's mean group-commit batch from u to later:
// specimens per batch and milliseconds per batch (0, 0 when not known or
// when no batch ran).
func (u cpuUse) batching(later cpuUse) (size, millis float64) {
	n := later.batches - u.batches
	if !u.batchOK || !later.batchOK || n <= 0 {
		return 0, 0
	}
	return (later.specimens - u.specimens) / n, 1000 * (later.batchSeconds - u.batchSeconds) / n
}

// cores returns the CPU used from u to later in cores: by the server, by
// this process and by everything else on the machine (-1 when not known).
func (u cpuUse) cores(later cpuUse) (server, self, others float64) {
	d := later.at.Sub(u.at).Seconds()
	if !u.ok || !later.ok || d <= 0 {
		return 0, 0, -1
	}
	server, self, others = (later.server-u.server)/d, (later.self-u.self)/d, -1
	if u.machineOK && later.machineOK {
		// The server counts only when it runs here: a remote one's CPU is
		// not in this machine's figure.
		others = max((later.machine-u.machine)/d-self-server, 0)
	}
	return server, self, others
}
