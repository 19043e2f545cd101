package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
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
	} {
		if !regexp.MustCompile(want).Match(body) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
