package loadgen

import (
	"encoding/json"
	"strings"
	"testing"
)

func sampleReport() Report {
	return Report{
		URL: "http://127.0.0.1:8080", RunID: "LTABC", Clients: 256, Points: 64, ClientIDs: "v7", HTTPClient: "raw", WarmupSeconds: 3, DurationSeconds: 30,
		Baseline: &Phase{Name: "GET /api/v1/me", Seconds: 30, Requests: 750_000, RequestsPerSecond: 25_000,
			Latency: Latency{P50: 9.04, P90: 14.2, P99: 22, P999: 31.5, Max: 45.1}, Statuses: map[string]int64{"200": 750_000}},
		Write: Phase{Name: "POST /api/v1/specimens", Seconds: 30, Requests: 330_012, RequestsPerSecond: 11_000.4, Specimens: 330_000,
			SpecimensPerSecond: 11_000, Latency: Latency{P50: 19, P90: 30, P99: 48.25, P999: 70, Max: 120},
			Statuses: map[string]int64{"201": 330_000, "503": 12}, Abandoned: 2, ServerCores: 1.234, LoadCores: 0.7, OtherCores: 0.05,
			MeanBatch: 250.4, MeanBatchMillis: 22.04},
		Ratio: 0.44, MaxRSSBytes: 300 << 20, RSSSamples: 33, Cores: 2,
	}
}

func TestWriteText(t *testing.T) {
	var b strings.Builder
	if err := sampleReport().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"load on http://127.0.0.1:8080: 256 clients at 64 sampling points, one specimen per request, v7 client ids, raw HTTP/1.1 client; 3s warm-up, 30s measured per phase (run LTABC)",
		"GET /api/v1/me  750,000  25,000  9.0  14.2  22.0  31.5  45.1",
		"POST /api/v1/specimens  330,012  11,000  19.0  30.0  48.2  70.0  120.0",
		"POST /api/v1/specimens: statuses 201 ×330,000, 503 ×12; 2 still being retried at the end; CPU: server 1.23, load generator 0.70, rest of the machine (a database server here, other work) 0.05 of 2 cores; group commit: 250 specimens per transaction, 22.0 ms each",
		"GET /api/v1/me: statuses 200 ×750,000\n", // no CPU figures: not known
		"specimens registered: 330,000 in 30s = 11,000 per second",
		"registrations per second / no-op requests per second: 0.44",
		"at most 300 MiB resident (33 readings)",
	} {
		if !strings.Contains(squeeze(out), squeeze(want)) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "UNEXPECTED") {
		t.Errorf("a clean run reported as unexpected:\n%s", out)
	}
	// The baseline comes first, as it was run.
	if strings.Index(out, "GET /api/v1/me") > strings.Index(out, "POST /api/v1/specimens") {
		t.Errorf("phases out of order:\n%s", out)
	}
}

func TestWriteTextUnexpected(t *testing.T) {
	r := sampleReport()
	r.Baseline = nil
	r.BatchSize = 50
	r.Write.Name = "POST /api/v1/specimens/batch (50 each)"
	r.Write.Statuses = map[string]int64{"200": 600, "500": 1}
	r.Write.ItemStatuses = map[string]int64{"201": 30_000, "409": 3}
	r.Write.Unexpected, r.Write.TransportErrors = 5, 1
	r.Write.Examples = []string{`500 POST /api/v1/specimens/batch: {"title":"internal error"}`}
	r.RSSSamples = 0
	r.HTTPClient = "std"
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"50 specimens per request, v7 client ids, net/http client;",
		"statuses 200 ×600, 500 ×1; specimens 201 ×30,000, 409 ×3; 1 without an answer",
		"UNEXPECTED: 5 requests or specimens",
		`  500 POST /api/v1/specimens/batch: {"title":"internal error"}`,
		"memory during the registrations: not known",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "no-op") {
		t.Errorf("a ratio without a baseline:\n%s", out)
	}
}

// squeeze collapses runs of spaces, so table columns compare regardless of padding.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestReportJSON(t *testing.T) {
	data, err := json.Marshal(sampleReport())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	write := got["write"].(map[string]any)
	lat := write["latency_ms"].(map[string]any)
	if write["specimens_per_second"] != 11_000.0 || lat["p99"] != 48.25 || lat["p99_9"] != 70.0 ||
		got["write_to_baseline_ratio"] != 0.44 || got["server_max_rss_bytes"] != float64(300<<20) ||
		write["statuses"].(map[string]any)["503"] != 12.0 {
		t.Errorf("JSON %s", data)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -45000: "-45,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
