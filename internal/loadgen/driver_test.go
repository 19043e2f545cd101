package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/screening"
)

// fakeServer plays the registration protocol: it sheds the first attempt of
// every shedEvery-th client id with 503, answers a repeated client id 200
// when the body is the same and 409 when not, refuses an 11th specimen in a
// tube, and checks every specimen as the real server would.
type fakeServer struct {
	t         *testing.T
	shedEvery int
	failEvery int // answer every failEvery-th registration 422; 0 never
	poolSize  int

	mu     sync.Mutex
	seen   int
	bodies map[string]string // client id → the body first sent
	shed   map[string]bool   // client ids shed once
	stored map[string]bool   // client ids stored
	tubes  map[string]int    // tube code → members
	ids    map[string]bool   // ID numbers stored
	shedRetried,
	conflicts,
	noops int
	conns atomic.Int64 // connections opened to it
}

func newFakeServer(t *testing.T, shedEvery, failEvery int) (*fakeServer, *httptest.Server) {
	f := &fakeServer{t: t, shedEvery: shedEvery, failEvery: failEvery, poolSize: 10, bodies: map[string]string{},
		shed: map[string]bool{}, stored: map[string]bool{}, tubes: map[string]int{}, ids: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	start := time.Now()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		// The fake server "uses" half a core all along.
		fmt.Fprintf(w, "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n"+
			"process_resident_memory_bytes 1.5e+08\nprocess_cpu_seconds_total %g\n", time.Since(start).Seconds()/2)
	})
	mux.HandleFunc("GET /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sbt_admin" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		f.noops++
		f.mu.Unlock()
		io.WriteString(w, `{"user_id":1}`)
	})
	mux.HandleFunc("POST /api/v1/specimens", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		status := f.register(r.Header.Get("Authorization"), body)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		io.WriteString(w, `{}`)
	})
	mux.HandleFunc("POST /api/v1/specimens/batch", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Specimens []json.RawMessage }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type item struct {
			ClientID string `json:"client_id"`
			Status   int    `json:"status"`
		}
		out := make([]item, len(in.Specimens))
		for i, sp := range in.Specimens {
			var s screening.NewSpecimen
			_ = json.Unmarshal(sp, &s)
			out[i] = item{ClientID: s.ClientID, Status: f.register(r.Header.Get("Authorization"), sp)}
			if out[i].Status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "0")
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"results": out})
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeServer) register(auth string, body []byte) int {
	var s screening.NewSpecimen
	if err := json.Unmarshal(body, &s); err != nil || auth != "Bearer sbt_point_"+fmt.Sprint(s.SamplingPointID) {
		return http.StatusBadRequest
	}
	if _, err := people.ParseResidentID(s.Person.IDNumber, time.Now()); err != nil {
		f.t.Errorf("invalid ID number %s: %v", s.Person.IDNumber, err)
		return http.StatusUnprocessableEntity
	}
	if _, err := people.NormalizePhone(s.Person.Phone); err != nil || s.CampaignID != 7 || s.SampledAt == "" {
		f.t.Errorf("bad specimen %s", body)
		return http.StatusUnprocessableEntity
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if first, ok := f.bodies[s.ClientID]; ok && first != string(body) {
		f.conflicts++
		return http.StatusConflict
	}
	f.bodies[s.ClientID] = string(body)
	if f.stored[s.ClientID] {
		return http.StatusOK
	}
	f.seen++
	if f.shed[s.ClientID] {
		f.shedRetried++
	} else if f.shedEvery > 0 && f.seen%f.shedEvery == 0 {
		f.shed[s.ClientID] = true
		return http.StatusServiceUnavailable
	}
	if f.failEvery > 0 && f.seen%f.failEvery == 0 {
		return http.StatusUnprocessableEntity
	}
	if f.tubes[s.TubeCode] >= f.poolSize {
		return http.StatusConflict
	}
	if f.ids[s.Person.IDNumber] {
		f.t.Errorf("person %s sampled twice", s.Person.IDNumber)
	}
	f.ids[s.Person.IDNumber] = true
	f.tubes[s.TubeCode]++
	f.stored[s.ClientID] = true
	return http.StatusCreated
}

// eachHTTPClient runs test with each client the load can send through.
func eachHTTPClient(t *testing.T, test func(t *testing.T, httpClient string)) {
	for _, hc := range []string{"raw", "std"} {
		t.Run(hc, func(t *testing.T) { test(t, hc) })
	}
}

func testConfig(url string, batch int, httpClient string) Config {
	return Config{
		URL: url, HTTPClient: httpClient, Clients: 6, Warmup: 50 * time.Millisecond, Duration: 400 * time.Millisecond,
		CampaignID: 7, PoolSize: 10, BatchSize: batch, IDPrefix: "330305", FirstPerson: 1000,
		Baseline: true, AdminToken: "sbt_admin", RSSEvery: 50 * time.Millisecond,
		Points: []Point{
			{ID: 1, Token: "sbt_point_1", Villages: []string{"330305001001", "330305001002"}},
			{ID: 2, Token: "sbt_point_2", Villages: []string{"330305002001"}},
		},
	}
}

func TestShedRegistrationsAreRetriedWithTheSameClientID(t *testing.T) {
	eachHTTPClient(t, testShedRegistrationsAreRetried)
}

func testShedRegistrationsAreRetried(t *testing.T, httpClient string) {
	f, srv := newFakeServer(t, 5, 0)
	rep, err := Run(context.Background(), testConfig(srv.URL, 0, httpClient))
	if err != nil {
		t.Fatal(err)
	}
	if rep.HTTPClient != httpClient {
		t.Errorf("report says the %s client, want %s", rep.HTTPClient, httpClient)
	}
	// Every client keeps its connection: one per client and phase at most,
	// and a few for /healthz and /metrics.
	if n := f.conns.Load(); n > 2*6+4 {
		t.Errorf("%d connections for 6 clients in 2 phases: they are not kept alive", n)
	}
	w := rep.Write
	if rep.Unexpected() != 0 || f.conflicts != 0 {
		t.Fatalf("unexpected %d, conflicts %d: %+v", rep.Unexpected(), f.conflicts, w)
	}
	if w.Statuses["201"] == 0 || w.Statuses["503"] == 0 {
		t.Fatalf("statuses %v: want both 201 and 503", w.Statuses)
	}
	// Every shed registration came back with the same client id and body
	// (or the run ended first, and it was abandoned).
	f.mu.Lock()
	shed := len(f.shed)
	f.mu.Unlock()
	if int64(f.shedRetried)+w.Abandoned != int64(shed) {
		t.Errorf("%d shed, %d retried, %d abandoned", shed, f.shedRetried, w.Abandoned)
	}
	if w.Specimens != w.Statuses["201"] || w.Requests != w.Statuses["201"]+w.Statuses["503"] {
		t.Errorf("specimens %d, requests %d, statuses %v", w.Specimens, w.Requests, w.Statuses)
	}
	if w.Seconds < 0.39 || w.Seconds > 0.41 || w.SpecimensPerSecond <= 0 || w.Latency.P50 <= 0 || w.Latency.Max < w.Latency.P99 {
		t.Errorf("write phase %+v", w)
	}
	if rep.Baseline == nil || rep.Baseline.Requests == 0 || rep.Baseline.Statuses["200"] != rep.Baseline.Requests {
		t.Fatalf("baseline %+v", rep.Baseline)
	}
	if want := w.SpecimensPerSecond / rep.Baseline.RequestsPerSecond; rep.Ratio != want {
		t.Errorf("ratio %v, want %v", rep.Ratio, want)
	}
	if rep.MaxRSSBytes != 150_000_000 || rep.RSSSamples < 2 {
		t.Errorf("RSS %d bytes over %d samples, want 150000000 over several", rep.MaxRSSBytes, rep.RSSSamples)
	}
	// The fake server's CPU is half its wall time, read when the phase's
	// scrapes happen: on a busy test machine a scrape of a 400 ms phase
	// can be 100-150 ms late (CI once read 0.32), so the bounds check the
	// arithmetic, not the scheduling.
	for _, p := range []Phase{*rep.Baseline, w} {
		if p.ServerCores < 0.2 || p.ServerCores > 0.8 || p.LoadCores <= 0 {
			t.Errorf("%s: CPU server %.2f cores (want 0.5), load generator %.2f", p.Name, p.ServerCores, p.LoadCores)
		}
	}
}

func TestUnexpectedStatusesAreReported(t *testing.T) {
	eachHTTPClient(t, testUnexpectedStatuses)
}

func testUnexpectedStatuses(t *testing.T, httpClient string) {
	_, srv := newFakeServer(t, 0, 7)
	cfg := testConfig(srv.URL, 0, httpClient)
	cfg.Baseline = false
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Baseline != nil {
		t.Error("a baseline without asking")
	}
	if rep.Unexpected() == 0 || rep.Write.Statuses["422"] == 0 || len(rep.Write.Examples) == 0 {
		t.Fatalf("unexpected %d, statuses %v, examples %q", rep.Unexpected(), rep.Write.Statuses, rep.Write.Examples)
	}
	if !strings.HasPrefix(rep.Write.Examples[0], "422 POST /api/v1/specimens") {
		t.Errorf("example %q", rep.Write.Examples[0])
	}
}

func TestBatchesRetryShedItems(t *testing.T) {
	eachHTTPClient(t, testBatchesRetryShedItems)
}

func testBatchesRetryShedItems(t *testing.T, httpClient string) {
	f, srv := newFakeServer(t, 4, 0)
	rep, err := Run(context.Background(), testConfig(srv.URL, 25, httpClient))
	if err != nil {
		t.Fatal(err)
	}
	w := rep.Write
	if rep.Unexpected() != 0 || f.conflicts != 0 {
		t.Fatalf("unexpected %d (%q), conflicts %d", rep.Unexpected(), w.Examples, f.conflicts)
	}
	if w.ItemStatuses["201"] == 0 || w.ItemStatuses["503"] == 0 || w.Statuses["200"] != w.Requests {
		t.Fatalf("statuses %v, items %v", w.Statuses, w.ItemStatuses)
	}
	if w.Specimens != w.ItemStatuses["201"] || w.Specimens < 10*w.Requests {
		t.Errorf("%d specimens in %d requests", w.Specimens, w.Requests)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if int64(f.shedRetried)+w.Abandoned != int64(len(f.shed)) {
		t.Errorf("%d shed, %d retried, %d abandoned", len(f.shed), f.shedRetried, w.Abandoned)
	}
}

func TestTransportErrorsAreUnexpected(t *testing.T) {
	eachHTTPClient(t, testTransportErrors)
}

func testTransportErrors(t *testing.T, httpClient string) {
	_, srv := newFakeServer(t, 0, 0)
	cfg := testConfig(srv.URL, 0, httpClient)
	cfg.Baseline = false
	cfg.Timeout = 20 * time.Millisecond
	// A server that holds every registration longer than the timeout.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == pathHealth {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}))
	defer slow.Close()
	cfg.URL = slow.URL
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Write.TransportErrors == 0 || rep.Unexpected() < rep.Write.TransportErrors {
		t.Errorf("transport errors %d, unexpected %d", rep.Write.TransportErrors, rep.Unexpected())
	}
}

func TestRunRefusesAnAbsentServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	eachHTTPClient(t, func(t *testing.T, httpClient string) {
		if _, err := Run(context.Background(), testConfig(url, 0, httpClient)); err == nil || !strings.Contains(err.Error(), "does not answer") {
			t.Errorf("Run against a closed port: %v", err)
		}
	})
}

func TestParseMetric(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"process_resident_memory_bytes 1.2345678e+08\n", 123456780, false},
		{"# TYPE x gauge\nprocess_resident_memory_bytes_total 5\nprocess_resident_memory_bytes 4096\n", 4096, false},
		{"go_goroutines 12\n", 0, true},
		{"process_resident_memory_bytes lots\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseMetric(bytes.NewBufferString(tt.in), rssMetric)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseMetric(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	for h, want := range map[string]time.Duration{"1": time.Second, "0": 0, " 3 ": 3 * time.Second, "": time.Second, "soon": time.Second, "-2": time.Second} {
		if got := retryAfter(h); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestRateSpacesRegistrations: with a rate the clients together send no
// more than it allows over the run (warm-up included; each client's first
// request within the first interval), where unpaced they send thousands;
// the report says so. A negative rate is refused.
func TestRateSpacesRegistrations(t *testing.T) {
	f, srv := newFakeServer(t, 0, 0)
	cfg := testConfig(srv.URL, 0, "raw")
	cfg.Baseline, cfg.Rate = false, 50
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	sent := f.seen
	f.mu.Unlock()
	most := int(cfg.Rate*(cfg.Warmup+cfg.Duration).Seconds()) + cfg.Clients
	if sent == 0 || sent > most {
		t.Errorf("%d registrations sent at %g/s over %v, want 1 to %d", sent, cfg.Rate, cfg.Warmup+cfg.Duration, most)
	}
	if rep.Rate != 50 || rep.Unexpected() != 0 {
		t.Errorf("report rate %g, unexpected %d", rep.Rate, rep.Unexpected())
	}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil || !strings.Contains(b.String(), "paced to 50 requests/s") {
		t.Errorf("report text does not give the pace (%v):\n%s", err, b.String())
	}
	cfg.Rate = -1
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("a negative rate: %v", err)
	}
}
