package loadgen

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is what a run measured; its JSON form is for scripts.
type Report struct {
	URL       string `json:"url"`
	RunID     string `json:"run_id"`
	Clients   int    `json:"clients"`
	Points    int    `json:"points"`
	BatchSize int    `json:"batch_size"` // 0: one specimen per request
	// Rate is the registration requests a second the clients were paced
	// to (0: unpaced, each sending again once answered).
	Rate      float64 `json:"rate,omitempty"`
	ClientIDs string  `json:"client_ids"` // v7 (time-ordered) or v4 (random) UUIDs
	// HTTPClient is what the load's requests went through: raw (the load's
	// own HTTP/1.1 client) or std (net/http).
	HTTPClient      string  `json:"http_client"`
	WarmupSeconds   float64 `json:"warmup_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	// Baseline is the no-op phase; nil when it was not run.
	Baseline *Phase `json:"baseline,omitempty"`
	Write    Phase  `json:"write"`
	// Ratio is the registrations per second over the baseline's requests
	// per second: how much of a no-op request a durable registration costs.
	Ratio float64 `json:"write_to_baseline_ratio,omitempty"`
	// MaxRSSBytes is the server's largest resident memory during the write
	// phase, over RSSSamples readings of /metrics (0 readings: not known).
	MaxRSSBytes int64 `json:"server_max_rss_bytes"`
	RSSSamples  int   `json:"server_rss_samples"`
	// Cores is how many this machine has, shared by the server and the load
	// when both run here.
	Cores int `json:"cores"`
}

// Phase is one phase's figures over its measured window.
type Phase struct {
	Name               string  `json:"name"`
	Seconds            float64 `json:"seconds"`
	Requests           int64   `json:"requests"`
	RequestsPerSecond  float64 `json:"requests_per_second"`
	Specimens          int64   `json:"specimens,omitempty"`
	SpecimensPerSecond float64 `json:"specimens_per_second,omitempty"`
	Latency            Latency `json:"latency_ms"`
	// Statuses counts the HTTP answers by status; ItemStatuses the
	// specimens of batch answers by their own status.
	Statuses     map[string]int64 `json:"statuses"`
	ItemStatuses map[string]int64 `json:"item_statuses,omitempty"`
	// TransportErrors are requests that got no answer (refused, reset,
	// timed out); Abandoned are registrations still being retried at the
	// end. Unexpected counts transport errors and answers other than
	// success or 503, over the whole phase, warm-up included.
	TransportErrors int64    `json:"transport_errors"`
	Abandoned       int64    `json:"abandoned"`
	Unexpected      int64    `json:"unexpected"`
	Examples        []string `json:"unexpected_examples,omitempty"`
	// ServerCores and LoadCores are the CPU the server and the load
	// generator used in the window, in cores (0 when not known);
	// OtherCores is what every other process of this machine used (-1 when
	// not known): with the server on this machine, anything much above 0
	// means the figures are not the server's alone to blame.
	ServerCores float64 `json:"server_cores"`
	LoadCores   float64 `json:"load_generator_cores"`
	OtherCores  float64 `json:"other_cores"`
	// MeanBatch and MeanBatchMillis are the server's group-commit batches
	// in the window (from its /metrics): specimens per transaction and the
	// milliseconds each took from begin to commit (0 when not known).
	MeanBatch       float64 `json:"mean_batch,omitempty"`
	MeanBatchMillis float64 `json:"mean_batch_ms,omitempty"`
}

// Latency is a phase's request latency in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Unexpected returns the requests and items of every phase that got no
// answer or an answer of the wrong status.
func (r Report) Unexpected() int64 {
	n := r.Write.Unexpected
	if r.Baseline != nil {
		n += r.Baseline.Unexpected
	}
	return n
}

// WriteText writes the report for a person: one row per phase, the
// statuses, the ratio and the server's memory.
func (r Report) WriteText(w io.Writer) error {
	mode := "one specimen per request"
	if r.BatchSize > 0 {
		mode = fmt.Sprintf("%d specimens per request", r.BatchSize)
	}
	if r.Rate > 0 {
		mode += fmt.Sprintf(" paced to %g requests/s", r.Rate)
	}
	client := ""
	switch r.HTTPClient {
	case "raw":
		client = ", raw HTTP/1.1 client"
	case "std":
		client = ", net/http client"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nload on %s: %d clients at %d sampling points, %s, %s client ids%s; %gs warm-up, %gs measured per phase (run %s)\n\n",
		r.URL, r.Clients, r.Points, mode, r.ClientIDs, client, r.WarmupSeconds, r.DurationSeconds, r.RunID)
	phases := []Phase{r.Write}
	if r.Baseline != nil {
		phases = []Phase{*r.Baseline, r.Write}
	}
	// Numbers align right; the names are padded so they still read left-aligned.
	width := len("phase")
	for _, p := range phases {
		width = max(width, len(p.Name))
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\trequests\tper second\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t\n", width, "phase")
	for _, p := range phases {
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", width, p.Name, thousands(p.Requests), thousands(int64(p.RequestsPerSecond+0.5)),
			p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.P999, p.Latency.Max)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteByte('\n')
	for _, p := range phases {
		fmt.Fprintf(&b, "%s: statuses %s", p.Name, statusList(p.Statuses))
		if p.ItemStatuses != nil {
			fmt.Fprintf(&b, "; specimens %s", statusList(p.ItemStatuses))
		}
		if p.TransportErrors > 0 {
			fmt.Fprintf(&b, "; %s without an answer", thousands(p.TransportErrors))
		}
		if p.Abandoned > 0 {
			fmt.Fprintf(&b, "; %s still being retried at the end", thousands(p.Abandoned))
		}
		if p.ServerCores > 0 {
			fmt.Fprintf(&b, "; CPU: server %.2f, load generator %.2f", p.ServerCores, p.LoadCores)
			if p.OtherCores >= 0 {
				fmt.Fprintf(&b, ", rest of the machine (a database server here, other work) %.2f", p.OtherCores)
			}
			fmt.Fprintf(&b, " of %d cores", r.Cores)
		}
		if p.MeanBatch > 0 {
			fmt.Fprintf(&b, "; group commit: %.0f specimens per transaction, %.1f ms each", p.MeanBatch, p.MeanBatchMillis)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "specimens registered: %s in %gs = %s per second\n", thousands(r.Write.Specimens), round1(r.Write.Seconds),
		thousands(int64(r.Write.SpecimensPerSecond+0.5)))
	if r.Baseline != nil {
		fmt.Fprintf(&b, "registrations per second / no-op requests per second: %.2f\n", r.Ratio)
	}
	if r.RSSSamples > 0 {
		fmt.Fprintf(&b, "server memory during the registrations: at most %.0f MiB resident (%d readings)\n", float64(r.MaxRSSBytes)/(1<<20), r.RSSSamples)
	} else {
		b.WriteString("server memory during the registrations: not known (no readable /metrics)\n")
	}
	if n := r.Unexpected(); n > 0 {
		fmt.Fprintf(&b, "\nUNEXPECTED: %s requests or specimens got no answer or one of the wrong status, e.g.\n", thousands(n))
		for _, p := range phases {
			for _, e := range p.Examples {
				fmt.Fprintf(&b, "  %s\n", e)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusList writes counts by status, in status order: "201 ×1,234, 503 ×5".
func statusList(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys) // three-digit statuses sort as numbers; "other" last
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " ×" + thousands(m[k])
	}
	return strings.Join(parts, ", ")
}

// thousands writes n with commas between groups of three digits.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
