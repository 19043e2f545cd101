package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestMetricsExportDBPool: /metrics carries the database pool's figures,
// labelled with the dialect, beside the Go runtime's.
func TestMetricsExportDBPool(t *testing.T) {
	s, db := buildTestServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	if err := db.Ping(); err != nil { // at least one connection is open
		t.Fatal(err)
	}
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", res.StatusCode, body)
	}
	label := `\{db_name="` + db.Dialect.String() + `"\} `
	for _, want := range []string{
		`(?m)^go_sql_open_connections` + label + `[1-9]`,
		`(?m)^go_sql_max_open_connections` + label + `\d`,
		`(?m)^go_sql_wait_count_total` + label + `\d`,
		`(?m)^go_goroutines \d`,
		`(?m)^shaobing_specimen_queue_depth 0$`,
		`(?m)^shaobing_specimens_unfiled 0$`,
	} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestMetricsNameTheRoute: requests are counted under the route pattern that
// served them (through the audit and auth middleware), and unknown paths
// under "unmatched".
func TestMetricsNameTheRoute(t *testing.T) {
	s, _ := buildTestServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, path := range []string{"/healthz", "/api/v1/people/1", "/no/such/page"} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`shaobing_http_requests_total{code="2xx",route="GET /healthz"} 1`,
		`shaobing_http_requests_total{code="4xx",route="GET /api/v1/people/{id}"} 1`,
		`shaobing_http_requests_total{code="4xx",route="unmatched"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
