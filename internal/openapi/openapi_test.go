package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

// frag makes a fragment from JSON text.
func frag(name, text string) Fragment {
	return Fragment{FS: fstest.MapFS{name: {Data: []byte(text)}}, Name: name}
}

const people = `{
 "paths": {
  "/api/v1/people": {
   "get": {"operationId": "listPeople", "summary": "List people",
    "parameters": [{"$ref": "#/components/parameters/Cursor"}, {"$ref": "#/components/parameters/Limit"}],
    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PersonList"}}}},
     "401": {"$ref": "#/components/responses/Unauthorized"}}},
   "post": {"operationId": "createPerson", "summary": "Register a person",
    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Person"}}}},
    "responses": {"201": {"description": "created"}, "422": {"$ref": "#/components/responses/Invalid"}}}
  },
  "/api/v1/people/{id}": {
   "get": {"operationId": "getPerson", "summary": "One person",
    "parameters": [{"$ref": "#/components/parameters/ID"}],
    "responses": {"200": {"description": "ok"}, "404": {"$ref": "#/components/responses/NotFound"}}}
  }
 },
 "components": {"schemas": {
  "Person": {"type": "object", "properties": {"id": {"$ref": "#/components/schemas/ID"}}},
  "PersonList": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Person"}},
   "next_cursor": {"$ref": "#/components/schemas/Cursor"}}}
 }}
}`

func TestBuild(t *testing.T) {
	d, err := Build(Platform, frag("people.json", people))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range d.Operations() {
		got = append(got, o.Method+" "+o.Path+" "+o.ID)
	}
	want := []string{
		"GET /api/v1/openapi.json getOpenAPI",
		"GET /api/v1/people listPeople",
		"POST /api/v1/people createPerson",
		"GET /api/v1/people/{id} getPerson",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("operations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, o := range d.Operations() {
		if o.Public != (o.ID == "getOpenAPI") {
			t.Errorf("%s: public = %v", o.ID, o.Public)
		}
	}
	var doc struct {
		OpenAPI    string `json:"openapi"`
		Components struct {
			Schemas         map[string]any `json:"schemas"`
			SecuritySchemes map[string]struct {
				Type, Scheme, In, Name string
			} `json:"securitySchemes"`
			Responses map[string]any `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(d.JSON(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	for _, s := range []string{"Problem", "ProblemField", "Cursor", "Person", "PersonList"} {
		if doc.Components.Schemas[s] == nil {
			t.Errorf("schema %s missing", s)
		}
	}
	for _, r := range []string{"BadRequest", "Unauthorized", "NotFound", "Conflict", "TooLarge", "Invalid", "TooMany"} {
		if doc.Components.Responses[r] == nil {
			t.Errorf("response %s missing", r)
		}
	}
	if s := doc.Components.SecuritySchemes["bearerAuth"]; s.Type != "http" || s.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v", s)
	}
	if s := doc.Components.SecuritySchemes["cookieAuth"]; s.Type != "apiKey" || s.In != "cookie" || s.Name != "shaobing_session" {
		t.Errorf("cookieAuth = %+v", s)
	}
}

func TestBuildRejects(t *testing.T) {
	op := func(fields string) string {
		return `{"paths": {"/api/v1/x": {"get": {` + fields + `}}}}`
	}
	tests := []struct {
		name  string
		frags []Fragment
		want  string
	}{
		{"duplicate path", []Fragment{frag("a.json", people), frag("b.json", people)}, "path /api/v1/people is in both a.json and b.json"},
		{"schema shadows the base", []Fragment{frag("a.json", `{"components": {"schemas": {"Problem": {}}}}`)}, "components.schemas.Problem is in both base.json and a.json"},
		{"duplicate schema", []Fragment{frag("a.json", `{"components": {"schemas": {"X": {}}}}`), frag("b.json", `{"components": {"schemas": {"X": {}}}}`)}, "components.schemas.X is in both a.json and b.json"},
		{"dangling ref", []Fragment{frag("a.json", op(`"operationId": "x", "summary": "x", "responses": {"200": {"$ref": "#/components/responses/Nope"}}`))}, `"Nope" not found`},
		{"external ref", []Fragment{frag("a.json", `{"components": {"schemas": {"X": {"$ref": "other.json#/X"}}}}`)}, "only references into this document"},
		{"no operationId", []Fragment{frag("a.json", op(`"summary": "x", "responses": {"200": {"description": "ok"}}`))}, "GET /api/v1/x: no operationId"},
		{"no summary", []Fragment{frag("a.json", op(`"operationId": "x", "responses": {"200": {"description": "ok"}}`))}, "GET /api/v1/x: no summary"},
		{"no responses", []Fragment{frag("a.json", op(`"operationId": "x", "summary": "x", "responses": {}`))}, "GET /api/v1/x: no responses"},
		{"duplicate operationId", []Fragment{frag("a.json", op(`"operationId": "getOpenAPI", "summary": "x", "responses": {"200": {"description": "ok"}}`)), Platform}, `operationId "getOpenAPI" is also used`},
		{"undeclared path parameter", []Fragment{frag("a.json", `{"paths": {"/api/v1/x/{id}": {"get": {"operationId": "x", "summary": "x", "responses": {"200": {"description": "ok"}}}}}}`)}, `path parameter "id" is not declared`},
		{"parameter not in path", []Fragment{frag("a.json", op(`"operationId": "x", "summary": "x", "parameters": [{"$ref": "#/components/parameters/ID"}], "responses": {"200": {"description": "ok"}}`))}, `path parameter "id" is not in the path`},
		{"path outside the API", []Fragment{frag("a.json", `{"paths": {"/people": {"get": {"operationId": "x", "summary": "x", "responses": {"200": {"description": "ok"}}}}}}`)}, "/people: API paths start with /api/v1/"},
		{"unknown method", []Fragment{frag("a.json", `{"paths": {"/api/v1/x": {"fetch": {}}}}`)}, `unexpected field "fetch"`},
		{"unknown top-level field", []Fragment{frag("a.json", `{"paths": {}, "info": {}}`)}, `unexpected top-level field "info"`},
		{"unknown component kind", []Fragment{frag("a.json", `{"components": {"securitySchemes": {}}}`)}, `unexpected component kind "securitySchemes"`},
		{"not JSON", []Fragment{frag("a.json", `{"paths": `)}, "parse a.json"},
		{"missing file", []Fragment{{FS: fstest.MapFS{}, Name: "a.json"}}, "read a.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build(tt.frags...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestServe(t *testing.T) {
	d, err := Build(Platform)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d, type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec.Body.String() != string(d.JSON()) {
		t.Error("body differs from the document")
	}
	etag := rec.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: status %d, want 304", rec.Code)
	}
}
