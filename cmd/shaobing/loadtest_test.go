package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/demo"
	"github.com/shaobing/shaobing/internal/loadgen"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/server"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

func TestLoadtestFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "stream"}, `--mode "stream": want single or batch`},
		{[]string{"--mode", "batch", "--batch-size", "0"}, "--batch-size must be positive"},
		{[]string{"--points", "0"}, "--points must be from 1 to 999"},
		{[]string{"--client-ids", "v1"}, `--client-ids "v1": want v7 or v4`},
		{[]string{"--http", "fast"}, `--http "fast": want raw or std`},
		{[]string{"--clients", "0"}, "--clients must be positive"},
		{[]string{"--duration", "0s"}, "--duration must be positive"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		// No database is opened before the flags are checked.
		args := append([]string{"loadtest", "--db", "sqlite:///nonexistent/dir/x.db"}, tt.args...)
		if code := run(context.Background(), args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("%v: exit %d, %q; want %q", tt.args, code, errOut.String(), tt.want)
		}
	}
}

// TestLoadtestAgainstARunningServer loads the demo district, serves it, and
// runs the load twice on the same database (one specimen per request with
// the baseline, then batches): the fixture is found again, nobody is sampled
// twice and no tube overfills.
func TestLoadtestAgainstARunningServer(t *testing.T) {
	ctx := context.Background()
	dbURL := storagetest.URL(t)
	db, err := openMigrated(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Load(ctx, db, tree, demo.Options{People: 300, Hash: auth.HashParams{Memory: 64, Time: 1, Threads: 1}}); err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{DB: db, Tree: tree, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()

	load := func(extra ...string) loadgen.Report {
		t.Helper()
		args := append([]string{"loadtest", "--db", dbURL, "--url", hs.URL, "--points", "3", "--clients", "6",
			"--warmup", "100ms", "--duration", "800ms", "--json"}, extra...)
		var out, errOut bytes.Buffer
		if code := run(ctx, args, &out, &errOut); code != 0 {
			t.Fatalf("loadtest %v: exit %d: %s\n%s", extra, code, errOut.String(), out.String())
		}
		var rep loadgen.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("loadtest --json printed %q: %v", out.String(), err)
		}
		return rep
	}
	first := load()
	if first.Write.Specimens == 0 || first.Write.Statuses["201"] == 0 || first.Unexpected() != 0 || first.Points != 3 || first.HTTPClient != "raw" {
		t.Errorf("single: %s client, %+v", first.HTTPClient, first.Write)
	}
	// The server's group-commit figures come from its /metrics.
	if first.Write.MeanBatch < 1 || first.Write.MeanBatch > 6 || first.Write.MeanBatchMillis <= 0 {
		t.Errorf("group commit: %.1f specimens per batch (6 clients), %.1f ms each", first.Write.MeanBatch, first.Write.MeanBatchMillis)
	}
	if first.Baseline == nil || first.Baseline.Statuses["200"] == 0 || first.Ratio <= 0 || first.MaxRSSBytes <= 0 {
		t.Errorf("baseline %+v, ratio %v, RSS %d", first.Baseline, first.Ratio, first.MaxRSSBytes)
	}
	second := load("--mode", "batch", "--batch-size", "20", "--baseline=false", "--http", "std")
	if second.Baseline != nil || second.Write.ItemStatuses["201"] == 0 || second.Write.Specimens < second.Write.Requests || second.HTTPClient != "std" {
		t.Errorf("batch: %s client, %+v", second.HTTPClient, second.Write)
	}
	if second.RunID == first.RunID {
		t.Errorf("both runs are %s: their tubes would meet", first.RunID)
	}

	// Closing the server files every registration it acknowledged.
	srv.Close()
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	// The demo data has screening of its own; only the load's campaign counts here.
	var campaign int64
	if err := db.QueryRowContext(ctx, "SELECT id FROM campaigns WHERE name = 'loadtest 330305'").Scan(&campaign); err != nil {
		t.Fatalf("the load test campaign, made once for both runs: %v", err)
	}
	if n := count("SELECT COUNT(*) FROM campaigns WHERE name = 'loadtest 330305'"); n != 1 {
		t.Errorf("%d load test campaigns, want the same one for both runs", n)
	}
	if n := count("SELECT COUNT(*) FROM sampling_points WHERE campaign_id = $1", campaign); n != 3 {
		t.Errorf("%d load test sampling points, want 3", n)
	}
	if n := count("SELECT COUNT(*) FROM users WHERE username LIKE 'loadtest-%'"); n != 4 {
		t.Errorf("%d load test users, want 3 samplers and an admin", n)
	}
	specimens := count("SELECT COUNT(*) FROM specimens WHERE campaign_id = $1", campaign)
	if int64(specimens) < first.Write.Specimens+second.Write.Specimens {
		t.Errorf("%d specimens stored, fewer than the %d + %d answered", specimens, first.Write.Specimens, second.Write.Specimens)
	}
	if n := count("SELECT COUNT(*) FROM campaign_persons WHERE campaign_id = $1", campaign); n != specimens {
		t.Errorf("%d persons sampled for %d specimens: someone was sampled twice", n, specimens)
	}
	if n := count("SELECT COUNT(*) FROM tubes WHERE campaign_id = $1 AND (members > capacity OR (members = capacity AND state <> 'sealed'))", campaign); n != 0 {
		t.Errorf("%d tubes overfilled or full and open", n)
	}
}
