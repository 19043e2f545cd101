// Package openapi assembles the OpenAPI 3.1 document of the JSON API from the
// fragment each module ships, and checks it at start-up: no path or component
// defined twice, every $ref resolves, every operation has an operationId, a
// summary, responses and its path parameters. The server serves the result at
// /api/v1/openapi.json; a test in internal/server holds it against the routes.
package openapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

//go:embed base.json platform.json
var files embed.FS

// Fragment is one module's part of the document: a JSON file of
// {"paths": {...}, "components": {"schemas": {...}}} whose $refs point into
// the merged document ("#/components/schemas/Person", "#/components/responses/NotFound").
type Fragment struct {
	FS   fs.FS
	Name string
}

// Platform describes the platform's own API paths (the document itself).
var Platform = Fragment{FS: files, Name: "platform.json"}

// Prefix starts every API path.
const Prefix = "/api/v1/"

// Operation is one documented method on one path.
type Operation struct {
	Method  string // upper case, as in a route pattern: "GET"
	Path    string // as in a route pattern: "/api/v1/people/{id}"
	ID      string // operationId
	Summary string
	Public  bool // security is [] (no credentials needed)
}

// Document is the merged, checked document, marshalled once.
type Document struct {
	body []byte
	etag string
	ops  []Operation
}

// methods are the HTTP methods an OpenAPI path item may hold.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// pathItemKeys are the other fields a path item may hold.
var pathItemKeys = []string{"summary", "description", "servers", "parameters"}

// componentKinds are the component maps a fragment may add to.
var componentKinds = []string{"schemas", "parameters", "responses", "requestBodies", "headers", "examples"}

// Build merges the fragments into the base document (info, servers, security
// schemes, the Problem schema and the shared responses and parameters) and
// checks the result.
func Build(frags ...Fragment) (*Document, error) {
	doc, err := readJSON(files, "base.json")
	if err != nil {
		return nil, err
	}
	paths := object(doc, "paths")
	components := object(doc, "components")
	from := map[string]string{} // "paths./x" or "schemas.X" -> fragment name, to report duplicates
	for k := range paths {
		from["paths."+k] = "base.json"
	}
	for _, kind := range componentKinds {
		for k := range object(components, kind) {
			from[kind+"."+k] = "base.json"
		}
	}
	for _, f := range frags {
		if err := merge(doc, f, from); err != nil {
			return nil, err
		}
	}
	var problems []string
	walkRefs(doc, "#", func(at, ref string) {
		if _, err := resolve(doc, ref); err != nil {
			problems = append(problems, fmt.Sprintf("%s: $ref %q: %v", at, ref, err))
		}
	})
	ops, opProblems := operations(doc)
	problems = append(problems, opProblems...)
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("openapi: %d problems:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("openapi: marshal: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return &Document{body: buf.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ops: ops}, nil
}

// Operations lists the documented operations, sorted by path then method.
func (d *Document) Operations() []Operation { return slices.Clone(d.ops) }

// JSON returns the marshalled document.
func (d *Document) JSON() []byte { return bytes.Clone(d.body) }

// ServeHTTP serves the document; it never changes while the server runs, so
// clients may revalidate with its ETag.
func (d *Document) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", d.etag)
	http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(d.body))
}

func readJSON(fsys fs.FS, name string) (map[string]any, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("openapi: read %s: %w", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep numbers (examples, limits) exactly as written
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("openapi: parse %s: %w", name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("openapi: parse %s: data after the document", name)
	}
	return m, nil
}

// merge adds one fragment's paths and components to doc.
func merge(doc map[string]any, f Fragment, from map[string]string) error {
	frag, err := readJSON(f.FS, f.Name)
	if err != nil {
		return err
	}
	name := f.Name
	// Walk keys in sorted order so the first problem reported never depends
	// on map order.
	for _, k := range slices.Sorted(maps.Keys(frag)) {
		if k != "paths" && k != "components" {
			return fmt.Errorf("openapi: %s: unexpected top-level field %q (a fragment holds paths and components)", name, k)
		}
	}
	paths, err := objectField(frag, "paths", name)
	if err != nil {
		return err
	}
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		item := paths[p]
		key := "paths." + p
		if prev, dup := from[key]; dup {
			return fmt.Errorf("openapi: path %s is in both %s and %s", p, prev, name)
		}
		from[key] = name
		object(doc, "paths")[p] = item
	}
	comps, err := objectField(frag, "components", name)
	if err != nil {
		return err
	}
	for _, kind := range slices.Sorted(maps.Keys(comps)) {
		if !slices.Contains(componentKinds, kind) {
			return fmt.Errorf("openapi: %s: unexpected component kind %q", name, kind)
		}
		entries, err := objectField(comps, kind, name)
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(entries)) {
			v := entries[k]
			key := kind + "." + k
			if prev, dup := from[key]; dup {
				return fmt.Errorf("openapi: components.%s.%s is in both %s and %s", kind, k, prev, name)
			}
			from[key] = name
			object(object(doc, "components"), kind)[k] = v
		}
	}
	return nil
}

// object returns m[key] as an object, creating it when absent.
func object(m map[string]any, key string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[key] = o
	}
	return o
}

// objectField returns m[key] as an object; absent is empty, anything else an error.
func objectField(m map[string]any, key, source string) (map[string]any, error) {
	v, ok := m[key]
	if !ok {
		return map[string]any{}, nil
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("openapi: %s: %s must be an object", source, key)
	}
	return o, nil
}

// walkRefs calls fn for every "$ref" string under v.
func walkRefs(v any, at string, fn func(at, ref string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				fn(at, s)
				continue
			}
			walkRefs(x, at+"/"+pointerEscape(k), fn)
		}
	case []any:
		for i, x := range v {
			walkRefs(x, fmt.Sprintf("%s/%d", at, i), fn)
		}
	}
}

func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// resolve follows a local JSON pointer reference ("#/components/schemas/X").
func resolve(doc map[string]any, ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, errors.New("only references into this document (#/…) are allowed")
	}
	var cur any = doc
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("%q not found", tok)
			}
			cur = next
		default:
			return nil, fmt.Errorf("cannot descend into %q", tok)
		}
	}
	return cur, nil
}

// deref follows $ref chains (a parameter or response given by reference).
func deref(doc map[string]any, v any) map[string]any {
	for range 8 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		if v, _ = resolve(doc, ref); v == nil {
			return nil
		}
	}
	return nil
}

var pathParam = regexp.MustCompile(`\{([^{}]+)\}`)

// operations lists and checks every operation.
func operations(doc map[string]any) ([]Operation, []string) {
	var ops []Operation
	var problems []string
	ids := map[string]string{}
	_, globalSecurity := doc["security"]
	for path, v := range object(doc, "paths") {
		item, ok := v.(map[string]any)
		if !ok {
			problems = append(problems, path+": a path item must be an object")
			continue
		}
		if !strings.HasPrefix(path, Prefix) {
			problems = append(problems, path+": API paths start with "+Prefix)
		}
		declared := pathParams(doc, item["parameters"])
		found := 0
		for key, v := range item {
			if slices.Contains(pathItemKeys, key) {
				continue
			}
			if !slices.Contains(methods, key) {
				problems = append(problems, fmt.Sprintf("%s: unexpected field %q in a path item", path, key))
				continue
			}
			found++
			at := strings.ToUpper(key) + " " + path
			op, ok := v.(map[string]any)
			if !ok {
				problems = append(problems, at+": an operation must be an object")
				continue
			}
			o := Operation{Method: strings.ToUpper(key), Path: path}
			o.ID, _ = op["operationId"].(string)
			o.Summary, _ = op["summary"].(string)
			if o.ID == "" {
				problems = append(problems, at+": no operationId")
			} else if prev, dup := ids[o.ID]; dup {
				problems = append(problems, fmt.Sprintf("%s: operationId %q is also used by %s", at, o.ID, prev))
			} else {
				ids[o.ID] = at
			}
			if strings.TrimSpace(o.Summary) == "" {
				problems = append(problems, at+": no summary")
			}
			if resp, _ := op["responses"].(map[string]any); len(resp) == 0 {
				problems = append(problems, at+": no responses")
			}
			if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
				o.Public = true
			} else if !ok && !globalSecurity {
				o.Public = true
			}
			params := pathParams(doc, op["parameters"])
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				if !declared[m[1]] && !params[m[1]] {
					problems = append(problems, fmt.Sprintf("%s: path parameter %q is not declared (in: path)", at, m[1]))
				}
			}
			for name := range params {
				if !strings.Contains(path, "{"+name+"}") {
					problems = append(problems, fmt.Sprintf("%s: path parameter %q is not in the path", at, name))
				}
			}
			ops = append(ops, o)
		}
		if found == 0 {
			problems = append(problems, path+": no operations")
		}
	}
	slices.SortFunc(ops, func(a, b Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return ops, problems
}

// pathParams returns the names of the in:path parameters in a parameter list.
func pathParams(doc map[string]any, v any) map[string]bool {
	names := map[string]bool{}
	list, _ := v.([]any)
	for _, p := range list {
		m := deref(doc, p)
		if in, _ := m["in"].(string); in == "path" {
			if name, _ := m["name"].(string); name != "" {
				names[name] = true
			}
		}
	}
	return names
}
