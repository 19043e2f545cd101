package server

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// jsonOperation is a documented operation that takes a JSON body, in one
// of the JSON media types it accepts.
type jsonOperation struct {
	method, path string
	mediaType    string   // application/json, or a +json type such as application/merge-patch+json
	properties   []string // the body schema's top-level properties
}

// jsonOperations reads the served OpenAPI document and lists every operation
// — of any method: POST, PUT, PATCH … — with a JSON request body, once per
// JSON media type it documents, so a new endpoint is covered by
// TestEveryJSONEndpointRejectsBadInput without being named here.
func jsonOperations(t *testing.T, doc map[string]any) []jsonOperation {
	t.Helper()
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			return schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		}
		return s
	}
	var ops []jsonOperation
	for path, item := range doc["paths"].(map[string]any) {
		for method, raw := range item.(map[string]any) {
			op, ok := raw.(map[string]any)
			if !ok {
				continue
			}
			body, ok := op["requestBody"].(map[string]any)
			if !ok {
				continue
			}
			for mediaType, raw := range body["content"].(map[string]any) {
				if mediaType != "application/json" && !strings.HasSuffix(mediaType, "+json") {
					continue
				}
				schema := resolve(raw.(map[string]any)["schema"].(map[string]any))
				var props []string
				for name := range schema["properties"].(map[string]any) {
					props = append(props, name)
				}
				sort.Strings(props)
				ops = append(ops, jsonOperation{method: strings.ToUpper(method), path: path, mediaType: mediaType, properties: props})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		return ops[i].path+" "+ops[i].method+" "+ops[i].mediaType < ops[j].path+" "+ops[j].method+" "+ops[j].mediaType
	})
	return ops
}

// tableCounts counts the rows of every table the modules write, except the
// audit log, which records refused requests by design.
func tableCounts(t *testing.T, w *world) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, table := range []string{"persons", "users", "institutions", "api_tokens", "deadlines", "settings"} {
		var n int
		if err := w.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		counts[table] = n
	}
	return counts
}

// TestEveryJSONEndpointRejectsBadInput sends malformed JSON, an unknown
// field, an oversize body and a wrong type to every JSON endpoint: each is
// refused with a problem document (naming the field where there is one) and
// writes nothing.
func TestEveryJSONEndpointRejectsBadInput(t *testing.T) {
	w := newWorld(t)
	_, raw := w.api(t, w.tokenAdmin, "GET", "/api/v1/openapi.json", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		t.Fatal(err)
	}
	ops := jsonOperations(t, doc)
	if len(ops) < 4 {
		t.Fatalf("only %d JSON operations found in the document", len(ops))
	}
	if !slices.ContainsFunc(ops, func(op jsonOperation) bool { return op.method != http.MethodPost }) {
		t.Errorf("no JSON operation other than POST found; the PATCH of users should be covered")
	}
	for _, op := range ops {
		t.Logf("covering %s %s (%s) %v", op.method, op.path, op.mediaType, op.properties)
	}
	personPath := strings.NewReplacer("{id}", itoa(w.personA.ID)).Replace
	before := tableCounts(t, w)
	for _, op := range ops {
		path := personPath(op.path)
		if len(op.properties) == 0 {
			t.Errorf("%s %s: the body schema lists no properties", op.method, op.path)
			continue
		}
		field := op.properties[0]
		for _, tc := range []struct {
			name, body string
			status     int
			field      string
		}{
			{"malformed", `{"` + field + `": `, http.StatusBadRequest, ""},
			{"not an object", `[1,2,3]`, http.StatusUnprocessableEntity, ""},
			{"unknown field", `{"surprise_field": 1}`, http.StatusBadRequest, "surprise_field"},
			{"wrong type", `{"` + field + `": {"nested": true}}`, http.StatusUnprocessableEntity, field},
			{"trailing data", `{} {}`, http.StatusBadRequest, ""},
			{"oversize", `{"` + field + `": "` + strings.Repeat("长", 2<<20) + `"}`, http.StatusRequestEntityTooLarge, ""},
		} {
			status, body := sendJSON(t, w, op.method, path, op.mediaType, tc.body)
			if status != tc.status {
				t.Errorf("%s %s (%s) %s: status %d, want %d: %.300s", op.method, op.path, op.mediaType, tc.name, status, tc.status, body)
				continue
			}
			var problem struct {
				Status int `json:"status"`
				Title  string
				Errors []struct{ Field string } `json:"errors"`
			}
			if err := json.Unmarshal([]byte(body), &problem); err != nil || problem.Status != status || problem.Title == "" {
				t.Errorf("%s %s %s: not a problem document: %.300s", op.method, op.path, tc.name, body)
				continue
			}
			if tc.field != "" && !slices.ContainsFunc(problem.Errors, func(e struct{ Field string }) bool { return e.Field == tc.field }) {
				t.Errorf("%s %s %s: errors %+v do not name %q", op.method, op.path, tc.name, problem.Errors, tc.field)
			}
		}
	}
	if after := tableCounts(t, w); !mapsEqual(before, after) {
		t.Errorf("refused requests changed the data: before %v, after %v", before, after)
	}
}

// sendJSON sends body as the admin's API request with the given media type.
func sendJSON(t *testing.T, w *world, method, path, mediaType, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, w.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+w.tokenAdmin)
	req.Header.Set("Content-Type", mediaType)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
