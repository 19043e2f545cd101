package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// buildTestServer assembles the real server on a fresh, fully migrated database.
func buildTestServer(t testing.TB) (*Server, *storage.DB) {
	t.Helper()
	db := storagetest.Open(t, Migrations()...)
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{DB: db, Tree: tree, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	t.Cleanup(s.Close)
	return s, db
}

// apiRoute turns a route pattern into the (method, OpenAPI path) it serves,
// or ok=false for a route outside the JSON API.
func apiRoute(pattern string) (method, path string, ok bool, err error) {
	method, rest, hasMethod := strings.Cut(pattern, " ")
	if !hasMethod {
		method, rest = "", pattern
	}
	rest = strings.TrimSpace(rest)
	if i := strings.Index(rest, "/"); i > 0 { // a host before the path
		rest = rest[i:]
	}
	if !strings.HasPrefix(rest, openapi.Prefix) {
		return "", "", false, nil
	}
	if method == "" {
		return "", "", true, errString("an API route must name its method: " + pattern)
	}
	if strings.HasSuffix(rest, "/") {
		return "", "", true, errString("an API route must not be a prefix (trailing /): " + pattern)
	}
	rest = strings.ReplaceAll(rest, "{$}", "")
	rest = regexp.MustCompile(`\{([^{}.]+)\.\.\.\}`).ReplaceAllString(rest, "{$1}")
	return method, rest, true, nil
}

type errString string

func (e errString) Error() string { return string(e) }

// TestOpenAPIMatchesRoutes holds the OpenAPI document against the routes:
// every /api/v1 route is documented and every documented operation routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s, _ := buildTestServer(t)
	routed := map[string]bool{}
	for _, p := range s.Patterns() {
		method, path, ok, err := apiRoute(p)
		if err != nil {
			t.Error(err)
		}
		if ok && err == nil {
			routed[method+" "+path] = true
		}
	}
	documented := map[string]bool{}
	for _, o := range s.openapi.Operations() {
		documented[o.Method+" "+o.Path] = true
	}
	for _, r := range sortedKeys(routed) {
		if !documented[r] {
			t.Errorf("route %s is not in the OpenAPI document (add it to the module's openapi.json)", r)
		}
	}
	for _, d := range sortedKeys(documented) {
		if !routed[d] {
			t.Errorf("the OpenAPI document describes %s, but no route serves it", d)
		}
	}
	if len(routed) == 0 || !routed["GET /api/v1/openapi.json"] {
		t.Errorf("routes = %v: the document itself is not routed", sortedKeys(routed))
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestAPIRoute(t *testing.T) {
	tests := []struct {
		pattern, method, path string
		ok, bad               bool
	}{
		{"GET /api/v1/people", "GET", "/api/v1/people", true, false},
		{"POST /api/v1/people/{id}/notes", "POST", "/api/v1/people/{id}/notes", true, false},
		{"GET /api/v1/files/{name...}", "GET", "/api/v1/files/{name}", true, false},
		{"GET /api/v1/people/{$}", "GET", "/api/v1/people/", true, false},
		{"GET example.org/api/v1/x", "GET", "/api/v1/x", true, false},
		{"GET /people", "", "", false, false},
		{"/api/v1/x", "", "", true, true},
		{"GET /api/v1/", "", "", true, true},
	}
	for _, tt := range tests {
		method, path, ok, err := apiRoute(tt.pattern)
		if method != tt.method || path != tt.path || ok != tt.ok || (err != nil) != tt.bad {
			t.Errorf("apiRoute(%q) = %q, %q, %v, %v", tt.pattern, method, path, ok, err)
		}
	}
}

// TestOpenAPIServed checks the served document: every operation named,
// summarised and answered, errors described as problem documents, and what
// it says about credentials true of the running server.
func TestOpenAPIServed(t *testing.T) {
	s, _ := buildTestServer(t)
	srv := httptest.NewServer(s)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	type operation struct {
		OperationID string            `json:"operationId"`
		Summary     string            `json:"summary"`
		Security    *[]any            `json:"security"`
		RequestBody json.RawMessage   `json:"requestBody"`
		Responses   map[string]any    `json:"responses"`
		Parameters  []json.RawMessage `json:"parameters"`
	}
	var doc struct {
		OpenAPI string                          `json:"openapi"`
		Paths   map[string]map[string]operation `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		for method, op := range doc.Paths[path] {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			at := strings.ToUpper(method) + " " + path
			if op.OperationID == "" || strings.TrimSpace(op.Summary) == "" || len(op.Responses) == 0 {
				t.Errorf("%s: operationId %q, summary %q, %d responses", at, op.OperationID, op.Summary, len(op.Responses))
			}
			public := op.Security != nil && len(*op.Security) == 0
			want := map[string]bool{"401": !public, "400": op.RequestBody != nil, "422": op.RequestBody != nil, "404": strings.Contains(path, "{")}
			for code, needed := range want {
				if needed && op.Responses[code] == nil {
					t.Errorf("%s: does not document its %s response", at, code)
				}
			}

			// Without credentials a protected operation answers 401 with a
			// problem document; a public one does not ask for credentials.
			url := srv.URL + regexp.MustCompile(`\{[^{}]+\}`).ReplaceAllString(path, "1")
			req, _ := http.NewRequest(strings.ToUpper(method), url, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			res, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			switch {
			case !public && res.StatusCode != http.StatusUnauthorized:
				t.Errorf("%s without credentials: %d, want 401", at, res.StatusCode)
			case !public && !strings.HasPrefix(res.Header.Get("Content-Type"), "application/problem+json"):
				t.Errorf("%s without credentials: Content-Type %q, want a problem document", at, res.Header.Get("Content-Type"))
			case public && res.StatusCode == http.StatusUnauthorized:
				t.Errorf("%s is documented as public but answers 401", at)
			}
		}
	}
}
