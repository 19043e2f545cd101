// Package loadgen drives a running shaobing server with the load of a
// whole-city testing day — many samplers registering specimens at once —
// after a no-op baseline against the same server, and measures throughput,
// latency percentiles and the server's memory (DESIGN.md §5.1, issue
// "Performance"). It speaks to the server only over HTTP, sending the API's
// own request types, so it measures what a sampling app would see.
package loadgen

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/screening"
)

// Point is a sampling point the load registers at.
type Point struct {
	ID    int64
	Token string // API token of a sampler of the point
	// Villages are the residence region codes of the persons sampled
	// there, drawn in turn.
	Villages []string
}

// Config says what load to make.
type Config struct {
	URL        string // the server's base URL, e.g. http://127.0.0.1:8080
	Clients    int    // concurrent clients, each a goroutine sending one request at a time
	Warmup     time.Duration
	Duration   time.Duration // measured, after the warm-up, per phase
	CampaignID int64
	PoolSize   int // specimens per tube
	// Points are the sampling points; client i works at Points[i % len].
	Points []Point
	// BatchSize 0 posts each specimen to /api/v1/specimens; more posts that
	// many at a time to /api/v1/specimens/batch.
	BatchSize int
	// RandomClientIDs sends version-4 (all random) client ids instead of
	// the sampler page's time-ordered version 7.
	RandomClientIDs bool
	// Baseline runs the no-op phase (GET /api/v1/me as AdminToken) first.
	Baseline   bool
	AdminToken string
	// IDPrefix is the 6-digit county code the generated resident ID numbers
	// start with; persons are numbered from FirstPerson on (see ResidentID).
	IDPrefix    string
	FirstPerson int64
	// RunID starts every tube code, so tubes of different runs never meet;
	// a fresh one is made when empty.
	RunID string
	// Timeout bounds one request (30s when zero); RSSEvery is how often the
	// server's memory is read during the write phase (1s when zero).
	Timeout  time.Duration
	RSSEvery time.Duration
	// Progress receives a line as each phase starts; nil for none.
	Progress io.Writer
	// Rate, when positive, paces the registration requests: the clients
	// together send at most Rate a second, each one its share at even
	// intervals, as samplers do through a day — an open load, whose
	// requests do not wait for each other's answers as long as the server
	// keeps up. Zero: each client sends its next request as soon as the
	// last is answered (the most the server takes).
	Rate float64
	// HTTPClient is what the load's requests go through: "raw" (or empty),
	// the load's own lean HTTP/1.1 client (rawhttp.go), or "std", Go's
	// net/http. An https:// URL always uses net/http.
	HTTPClient string
}

// The paths the load uses.
const (
	pathMe       = "/api/v1/me"
	pathSpecimen = "/api/v1/specimens"
	pathBatch    = "/api/v1/specimens/batch"
	pathMetrics  = "/metrics"
	pathHealth   = "/healthz"
)

// transportBackoff is how long a client waits after a failed connection or
// a timeout before sending the same request again.
const transportBackoff = 100 * time.Millisecond

// maxExamples bounds the unexpected answers kept for the report.
const maxExamples = 5

func (c *Config) check() error {
	switch {
	case c.URL == "":
		return errors.New("loadgen: no server URL")
	case c.Clients <= 0:
		return errors.New("loadgen: clients must be positive")
	case c.Duration <= 0 || c.Warmup < 0:
		return errors.New("loadgen: the duration must be positive and the warm-up not negative")
	case len(c.Points) == 0:
		return errors.New("loadgen: no sampling points")
	case c.PoolSize <= 0:
		return errors.New("loadgen: the pool size must be positive")
	case c.Rate < 0:
		return errors.New("loadgen: the rate must not be negative")
	case c.BatchSize < 0:
		return errors.New("loadgen: the batch size must not be negative")
	case len(c.IDPrefix) != 6:
		return fmt.Errorf("loadgen: ID prefix %q: want 6 digits", c.IDPrefix)
	case c.Baseline && c.AdminToken == "":
		return errors.New("loadgen: the baseline needs a token")
	case c.HTTPClient != "" && c.HTTPClient != "raw" && c.HTTPClient != "std":
		return fmt.Errorf("loadgen: HTTP client %q: want raw or std", c.HTTPClient)
	case strings.ContainsAny(c.AdminToken, "\r\n"):
		return errors.New("loadgen: the admin token has a line break")
	}
	for _, p := range c.Points {
		if p.Token == "" || len(p.Villages) == 0 {
			return fmt.Errorf("loadgen: sampling point %d has no token or no villages", p.ID)
		}
		// The raw client writes tokens into the request as they are.
		if strings.ContainsAny(p.Token, "\r\n") {
			return fmt.Errorf("loadgen: the token of sampling point %d has a line break", p.ID)
		}
	}
	return nil
}

// runner is one run's shared state.
type runner struct {
	cfg     Config
	client  *http.Client // the load's net/http client, when not raw
	metrics *http.Client // for /metrics, apart from the load's connections
	// raw is where the raw clients connect; nil when the load uses net/http.
	raw     *rawTarget
	persons atomic.Int64 // the next person's sequence number
}

// Run makes the load described by cfg against a running server: the no-op
// baseline (when cfg.Baseline), then the registrations, each phase a warm-up
// and a measured duration. It returns an error when the server cannot be
// reached or ctx ends; answers of the wrong status are in the report
// (Report.Unexpected), not an error.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.RSSEvery <= 0 {
		cfg.RSSEvery = time.Second
	}
	if cfg.RunID == "" {
		cfg.RunID = NewRunID()
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	// Every client keeps its connection: without enough idle slots per
	// host, connections would be closed and redialled, and the run would
	// measure TCP set-up instead of the server.
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.Clients + 8,
		MaxIdleConnsPerHost: cfg.Clients + 8,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	metrics := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}, Timeout: 5 * time.Second}
	defer metrics.CloseIdleConnections()
	r := &runner{cfg: cfg, client: &http.Client{Transport: transport, Timeout: cfg.Timeout}, metrics: metrics}
	httpClient := "std"
	if cfg.HTTPClient != "std" {
		t, ok, err := rawTargetOf(cfg.URL)
		if err != nil {
			return Report{}, err
		}
		if ok {
			r.raw, httpClient = &t, "raw"
		}
	}
	r.persons.Store(cfg.FirstPerson)
	if err := r.healthy(ctx); err != nil {
		return Report{}, err
	}
	rep := Report{URL: cfg.URL, Clients: cfg.Clients, Points: min(len(cfg.Points), cfg.Clients), BatchSize: cfg.BatchSize, Rate: cfg.Rate,
		ClientIDs: "v7", HTTPClient: httpClient, WarmupSeconds: cfg.Warmup.Seconds(), DurationSeconds: cfg.Duration.Seconds(),
		RunID: cfg.RunID, Cores: runtime.NumCPU()}
	if cfg.RandomClientIDs {
		rep.ClientIDs = "v4"
	}
	if cfg.Baseline {
		r.progress("no-op baseline: GET %s, %d clients, %v warm-up + %v", pathMe, cfg.Clients, cfg.Warmup, cfg.Duration)
		ph := r.phase(ctx, "GET "+pathMe, func(ctx context.Context, ph *phase, c *loadClient, _ int) { c.noop(ctx, ph) })
		rep.Baseline = &ph
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	name := "POST " + pathSpecimen
	if cfg.BatchSize > 0 {
		name = fmt.Sprintf("POST %s (%d each)", pathBatch, cfg.BatchSize)
	}
	r.progress("registrations: %s, %d clients at %d sampling points, %v warm-up + %v", name, cfg.Clients, rep.Points, cfg.Warmup, cfg.Duration)
	rssCtx, stopRSS := context.WithCancel(ctx)
	rss := make(chan memory, 1)
	go func() { rss <- r.watchMemory(rssCtx) }()
	rep.Write = r.phase(ctx, name, func(ctx context.Context, ph *phase, c *loadClient, i int) {
		s := r.newSampler(i)
		if cfg.BatchSize > 0 {
			c.registerBatches(ctx, ph, s)
		} else {
			c.registerEach(ctx, ph, s)
		}
	})
	stopRSS()
	m := <-rss
	rep.MaxRSSBytes, rep.RSSSamples = m.max, m.samples
	if rep.Baseline != nil && rep.Baseline.RequestsPerSecond > 0 {
		rep.Ratio = rep.Write.SpecimensPerSecond / rep.Baseline.RequestsPerSecond
	}
	return rep, ctx.Err()
}

// NewRunID returns a fresh run id: LT and the time in base 36 with two
// random characters, upper-case as the server stores tube codes.
func NewRunID() string {
	return "LT" + strings.ToUpper(strconv.FormatInt(time.Now().Unix(), 36)+strconv.FormatInt(36+rand.Int64N(36*35), 36))
}

func (r *runner) progress(format string, args ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, format+"\n", args...)
	}
}

// healthy checks that the server answers before any load starts.
func (r *runner) healthy(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.URL+pathHealth, nil)
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("loadgen: the server at %s does not answer (start it with shaobing serve): %w", r.cfg.URL, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("loadgen: %s%s answered %s", r.cfg.URL, pathHealth, resp.Status)
	}
	return nil
}

// phase runs one client function per client, each with a load client of its
// own, from now until the phase's end and returns its figures. Clients stop
// sending at the end; what is still in flight then is waited for but not
// counted. The CPU time of the server and of the load itself is read as the
// measured window opens and closes: on a shared machine, it tells how the
// cores were split.
func (r *runner) phase(ctx context.Context, name string, client func(ctx context.Context, ph *phase, c *loadClient, i int)) Phase {
	start := time.Now()
	ph := &phase{from: start.Add(r.cfg.Warmup)}
	ph.to = ph.from.Add(r.cfg.Duration)
	var wg sync.WaitGroup
	var before, after cpuUse
	wg.Go(func() {
		if sleepUntil(ctx, ph.from) {
			before = r.cpu(ctx)
			if sleepUntil(ctx, ph.to) {
				after = r.cpu(ctx)
			}
		}
	})
	for i := range r.cfg.Clients {
		wg.Go(func() {
			c := r.newClient()
			defer c.close()
			client(ctx, ph, c, i)
		})
	}
	wg.Wait()
	res := ph.result(name, time.Now())
	res.ServerCores, res.LoadCores, res.OtherCores = before.cores(after)
	res.MeanBatch, res.MeanBatchMillis = before.batching(after)
	return res
}

// sleepUntil waits until t; false when ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// loadClient is one of the load's clients, sending one request at a time:
// over a connection of its own with the raw client, or through the run's
// net/http client.
type loadClient struct {
	r   *runner
	raw *rawClient // nil: net/http
}

func (r *runner) newClient() *loadClient {
	c := &loadClient{r: r}
	if r.raw != nil {
		c.raw = newRawClient(*r.raw, r.cfg.Timeout)
	}
	return c
}

// close closes the client's connection, if it has one of its own.
func (c *loadClient) close() {
	if c.raw != nil {
		c.raw.close()
	}
}

// noop is a baseline client: GET /api/v1/me until the phase ends.
func (c *loadClient) noop(ctx context.Context, ph *phase) {
	for ph.open(ctx) {
		a := c.send(ctx, ph, http.MethodGet, pathMe, c.r.cfg.AdminToken, nil, false)
		if a.status == http.StatusServiceUnavailable || a.status == 0 {
			ph.sleep(ctx, a.retryAfter)
		}
	}
}

// registerEach is a sampler client posting one specimen per request. A shed
// request (503) is sent again, same client id and body, after Retry-After;
// so is one that got no answer, which may or may not have been stored: the
// server answers the original for a repeated client id.
func (c *loadClient) registerEach(ctx context.Context, ph *phase, s *sampler) {
	pace := c.r.pacer(s.client)
	for pace.wait(ctx, ph) {
		sp := s.next()
		for {
			a := c.send(ctx, ph, http.MethodPost, pathSpecimen, s.point.Token, sp.body, false)
			if a.status == http.StatusCreated || a.status == http.StatusOK {
				ph.registered(a.at, 1)
			}
			if a.status != http.StatusServiceUnavailable && a.status != 0 {
				break
			}
			if !ph.sleep(ctx, a.retryAfter) {
				ph.abandoned.Add(1)
				break
			}
		}
	}
}

// pacer spaces one client's requests when the run has a Rate.
type pacer struct {
	every time.Duration // 0: unpaced
	next  time.Time
}

// pacer returns client i's pacer: its requests every Clients/Rate seconds,
// the clients' first ones spread over the first interval.
func (r *runner) pacer(i int) *pacer {
	if r.cfg.Rate <= 0 {
		return &pacer{}
	}
	every := time.Duration(float64(r.cfg.Clients) / r.cfg.Rate * float64(time.Second))
	return &pacer{every: every, next: time.Now().Add(every * time.Duration(i) / time.Duration(r.cfg.Clients))}
}

// wait waits for the client's next turn and reports whether the phase is
// still open then. A client that fell behind (its answers came slower than
// its interval) sends at once and keeps its interval from then, rather
// than catching up in a burst.
func (p *pacer) wait(ctx context.Context, ph *phase) bool {
	if p.every == 0 {
		return ph.open(ctx)
	}
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	at := p.next
	p.next = at.Add(p.every)
	return at.Before(ph.to) && sleepUntil(ctx, at) && ph.open(ctx)
}

// batchAnswer is the part of a batch answer the load reads.
type batchAnswer struct {
	Results []struct {
		ClientID string `json:"client_id"`
		Status   int    `json:"status"`
	} `json:"results"`
}

// registerBatches is a sampler client posting BatchSize specimens per
// request. Items shed (503), alone or with their whole request, go into the
// next request with the same client id and body, after the answer's
// Retry-After (1s when it has none).
func (c *loadClient) registerBatches(ctx context.Context, ph *phase, s *sampler) {
	var retry []specimenBody
	pace := c.r.pacer(s.client)
	for pace.wait(ctx, ph) {
		batch := retry
		for len(batch) < c.r.cfg.BatchSize {
			batch = append(batch, s.next())
		}
		retry = nil
		a := c.send(ctx, ph, http.MethodPost, pathBatch, s.point.Token, batchBody(batch), true)
		wait := time.Duration(0)
		switch a.status {
		case http.StatusOK:
			var ans batchAnswer
			if err := json.Unmarshal(a.body, &ans); err != nil || len(ans.Results) != len(batch) {
				ph.unexpectedAnswer(a.status, fmt.Sprintf("batch answer of %d bytes does not list the %d specimens sent", len(a.body), len(batch)))
				break
			}
			for i, res := range ans.Results {
				if res.ClientID != batch[i].clientID {
					ph.unexpectedAnswer(a.status, fmt.Sprintf("batch answer item %d is client id %q, sent %q", i, res.ClientID, batch[i].clientID))
					continue
				}
				ph.item(a.at, res.Status)
				switch res.Status {
				case http.StatusCreated, http.StatusOK:
					ph.registered(a.at, 1)
				case http.StatusServiceUnavailable:
					retry = append(retry, batch[i])
					wait = a.retryAfter
				}
			}
		case http.StatusServiceUnavailable, 0:
			retry, wait = batch, a.retryAfter
		}
		if len(retry) > 0 && !ph.sleep(ctx, wait) {
			break
		}
	}
	ph.abandoned.Add(int64(len(retry)))
}

// answer is the outcome of one request: status 0 when there was none.
type answer struct {
	status     int
	retryAfter time.Duration
	at         time.Time // when it came
	body       []byte    // read when asked for, and for unexpected statuses
}

// send makes one request and records it in ph. wantBody keeps a successful
// answer's body for the caller; other bodies are read and dropped so the
// connection is reused.
func (c *loadClient) send(ctx context.Context, ph *phase, method, path, token string, body []byte, wantBody bool) answer {
	keep := func(status int) bool { return (wantBody && status == http.StatusOK) || !expectedStatus(path, status) }
	start := time.Now()
	var res response
	var err error
	if c.raw != nil {
		res, err = c.raw.do(ctx, method, path, token, body, keep)
	} else {
		res, err = c.r.do(ctx, method, path, token, body, keep)
	}
	at := time.Now()
	if err != nil {
		if ctx.Err() == nil {
			ph.failed(err)
		}
		return answer{retryAfter: transportBackoff, at: at}
	}
	a := answer{status: res.status, at: at, body: res.body}
	ph.answered(start, at, res.status)
	if !expectedStatus(path, res.status) {
		ph.unexpectedAnswer(res.status, method+" "+path+": "+string(res.body))
	}
	if res.status == http.StatusServiceUnavailable || res.status == http.StatusOK {
		// A batch answered 200 may hold shed items: they wait as long.
		a.retryAfter = retryAfter(res.retryAfter)
	}
	return a
}

// do makes one request through net/http, keeping the answer's body when
// keep says so for its status.
func (r *runner) do(ctx context.Context, method, path, token string, body []byte, keep func(status int) bool) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.cfg.URL+path, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	res := response{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if keep(resp.StatusCode) {
		res.body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return response{}, fmt.Errorf("read answer: %w", err)
	}
	return res, nil
}

// retryAfter reads a Retry-After header in seconds; 1s when absent or unreadable.
func retryAfter(h string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || n < 0 {
		return time.Second
	}
	return time.Duration(n) * time.Second
}

// sampler is one client's sampler at its point: it fills its own tubes,
// one after the other, with persons drawn from the run's sequence.
type sampler struct {
	cfg     *Config
	point   Point
	client  int
	rnd     *rand.Rand
	persons *atomic.Int64
	tube    int // the current tube's number
	filled  int // specimens given to the current tube
}

func (r *runner) newSampler(i int) *sampler {
	var seed [16]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand since Go 1.24)
	return &sampler{cfg: &r.cfg, point: r.cfg.Points[i%len(r.cfg.Points)], client: i, persons: &r.persons, tube: 1,
		rnd: rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))}
}

// specimenBody is one registration, encoded once so that a retry sends
// exactly the same bytes.
type specimenBody struct {
	clientID string
	body     []byte
}

// next returns the sampler's next registration: a new person into the
// current tube, or into a new tube when the current one is full.
func (s *sampler) next() specimenBody {
	if s.filled == s.cfg.PoolSize {
		s.tube, s.filled = s.tube+1, 0
	}
	s.filled++
	seq := s.persons.Add(1) - 1
	now := time.Now()
	at := now
	if s.cfg.RandomClientIDs {
		at = time.Time{}
	}
	// The server's own type: the load sends exactly the API's fields.
	sp := screening.NewSpecimen{
		ClientID:        ClientID(s.rnd, at),
		CampaignID:      s.cfg.CampaignID,
		SamplingPointID: s.point.ID,
		TubeCode:        TubeCode(s.cfg.RunID, s.client, s.tube),
		SampledAt:       now.Format("2006-01-02T15:04:05.000Z07:00"),
		Person: screening.SpecimenPerson{IDType: string(people.IDResident), IDNumber: ResidentID(s.cfg.IDPrefix, seq), Name: PersonName(seq),
			Phone: Phone(seq), RegionCode: s.point.Villages[int(seq%int64(len(s.point.Villages)))]},
	}
	body, err := json.Marshal(sp)
	if err != nil {
		panic(fmt.Sprintf("loadgen: encode a specimen: %v", err)) // plain strings and numbers always encode
	}
	return specimenBody{clientID: sp.ClientID, body: body}
}

// TubeCode names tube number tube of client client in run runID.
func TubeCode(runID string, client, tube int) string {
	return fmt.Sprintf("%s-%d-%d", runID, client, tube)
}

// batchBody is the body of POST /api/v1/specimens/batch for the items.
func batchBody(items []specimenBody) []byte {
	n := 16
	for _, it := range items {
		n += len(it.body) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"specimens":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.body...)
	}
	return append(b, "]}"...)
}
