package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"

	"github.com/shaobing/shaobing/internal/buildinfo"
)

// getJSON fetches path and decodes its JSON body into a map.
func getJSON(t *testing.T, srv *httptest.Server, path string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return res.StatusCode, body
}

// TestReadyzComparesSchema: /readyz turns an instance away while the shared
// database lacks a migration it embeds, and keeps it serving, with a
// warning, when a newer instance has migrated further.
func TestReadyzComparesSchema(t *testing.T) {
	s, db := buildTestServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()

	code, body := getJSON(t, srv, "/readyz")
	if code != http.StatusOK || body["status"] != "ready" || body["schema"] != "current" || body["database"] != db.Dialect.String() {
		t.Fatalf("migrated: %d %v", code, body)
	}

	// A newer binary migrated the database further.
	if _, err := db.ExecContext(ctx, "INSERT INTO schema_migrations (module, version, name, applied_at) VALUES ('people', 9999, '9999_future.sql', 0)"); err != nil {
		t.Fatal(err)
	}
	code, body = getJSON(t, srv, "/readyz")
	if code != http.StatusOK || body["status"] != "ready" || body["schema"] != "newer" || body["warning"] == nil ||
		!slices.Equal(toStrings(body["unknown"]), []string{"people/9999_future.sql"}) {
		t.Fatalf("database newer: %d %v", code, body)
	}

	// And this binary expects a migration the database lacks.
	var name string
	if err := db.QueryRowContext(ctx, "SELECT name FROM schema_migrations WHERE module = 'audit' ORDER BY version DESC LIMIT 1").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM schema_migrations WHERE module = 'audit' AND name = $1", name); err != nil {
		t.Fatal(err)
	}
	code, body = getJSON(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || body["schema"] != "behind" || body["reason"] == nil ||
		!slices.Equal(toStrings(body["missing"]), []string{"audit/" + name}) {
		t.Fatalf("database behind: %d %v", code, body)
	}

	db.Close()
	code, body = getJSON(t, srv, "/readyz")
	if code != http.StatusServiceUnavailable || body["status"] != "database unavailable" {
		t.Fatalf("database closed: %d %v", code, body)
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestBuildIsReported: /healthz names the version and /metrics carries
// shaobing_build_info with the version and revision.
func TestBuildIsReported(t *testing.T) {
	s, _ := buildTestServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()
	want := buildinfo.Read()
	code, body := getJSON(t, srv, "/healthz")
	if code != http.StatusOK || body["status"] != "ok" || body["version"] != want.Version {
		t.Fatalf("/healthz: %d %v, want version %q", code, body, want.Version)
	}
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	metrics, _ := io.ReadAll(res.Body)
	line := `(?m)^shaobing_build_info\{revision="` + regexp.QuoteMeta(want.Revision) + `",version="` + regexp.QuoteMeta(want.Version) + `"\} 1$`
	if !regexp.MustCompile(line).Match(metrics) {
		t.Errorf("/metrics lacks %s", line)
	}
}
