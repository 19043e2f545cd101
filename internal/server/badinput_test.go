package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
)

// jsonOperation is a documented operation that takes a JSON body.
type jsonOperation struct {
	method, path string
	properties   []string // the body schema's top-level properties
}

// jsonOperations reads the served OpenAPI document and lists every operation
// with an application/json request body, so a new endpoint is covered by
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
			media, ok := body["content"].(map[string]any)["application/json"].(map[string]any)
			if !ok {
				continue
			}
			schema := resolve(media["schema"].(map[string]any))
			var props []string
			for name := range schema["properties"].(map[string]any) {
				props = append(props, name)
			}
			sort.Strings(props)
			ops = append(ops, jsonOperation{method: strings.ToUpper(method), path: path, properties: props})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].path+ops[i].method < ops[j].path+ops[j].method })
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
	for _, op := range ops {
		t.Logf("covering %s %s %v", op.method, op.path, op.properties)
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
			status, body := w.api(t, w.tokenAdmin, op.method, path, tc.body)
			if status != tc.status {
				t.Errorf("%s %s %s: status %d, want %d: %.300s", op.method, op.path, tc.name, status, tc.status, body)
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
