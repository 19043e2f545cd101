package assets

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// loadEmbedded runs New once for the whole test binary: gzipping ECharts takes ~0.1 s, but
// seconds under the race detector. Sharing is safe because Assets never changes after New.
var loadEmbedded = sync.OnceValues(New)

func newAssets(t *testing.T) *Assets {
	t.Helper()
	a, err := loadEmbedded()
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func embeddedFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fs.ReadFile(embedded, "static/"+name)
	if err != nil {
		t.Fatalf("read embedded %s: %v", name, err)
	}
	return b
}

func mustPath(t *testing.T, a *Assets, name string) string {
	t.Helper()
	p, err := a.Path(name)
	if err != nil {
		t.Fatalf("Path(%q): %v", name, err)
	}
	return p
}

func TestPathIsContentHashed(t *testing.T) {
	a := newAssets(t)
	tests := []struct{ name, prefix, ext string }{
		{"app.css", "/static/app.", ".css"},
		{"app.js", "/static/app.", ".js"},
		{"scan.js", "/static/scan.", ".js"},
		{"logo.svg", "/static/logo.", ".svg"},
		{"vendor/htmx-2.0.11.min.js", "/static/vendor/htmx-2.0.11.min.", ".js"},
		{"vendor/echarts-6.1.0.min.js", "/static/vendor/echarts-6.1.0.min.", ".js"},
		{"vendor/zxing-browser-0.2.1.min.js", "/static/vendor/zxing-browser-0.2.1.min.", ".js"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := sha256.Sum256(embeddedFile(t, tt.name))
			want := tt.prefix + hex.EncodeToString(sum[:])[:10] + tt.ext
			if got := mustPath(t, a, tt.name); got != want {
				t.Errorf("Path(%q) = %q, want %q", tt.name, got, want)
			}
		})
	}
}

func TestPathUnknownName(t *testing.T) {
	a := newAssets(t)
	for _, name := range []string{"nope.css", "", "vendor", "vendor/", "/app.css", "../assets.go", "app.CSS"} {
		if p, err := a.Path(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Path(%q) = %q, %v; want an error wrapping fs.ErrNotExist", name, p, err)
		}
	}
}

func TestEveryEmbeddedFileIsServed(t *testing.T) {
	a := newAssets(t)
	h := a.Handler()
	err := fs.WalkDir(embedded, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		for _, url := range []string{mustPath(t, a, name), Prefix + name} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), embeddedFile(t, name)) {
				t.Errorf("GET %s: status %d, body %d bytes; want 200 and the file", url, rec.Code, rec.Body.Len())
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHandlerHeaders(t *testing.T) {
	a := newAssets(t)
	const immutable = "public, max-age=31536000, immutable"
	tests := []struct {
		name        string
		url         string
		contentType string
		cache       string
	}{
		{"hashed css", mustPath(t, a, "app.css"), "text/css; charset=utf-8", immutable},
		{"plain css", "/static/app.css", "text/css; charset=utf-8", "no-cache"},
		{"hashed js", mustPath(t, a, "app.js"), "text/javascript; charset=utf-8", immutable},
		{"hashed vendor js", mustPath(t, a, "vendor/htmx-2.0.11.min.js"), "text/javascript; charset=utf-8", immutable},
		{"plain vendor js", "/static/vendor/echarts-6.1.0.min.js", "text/javascript; charset=utf-8", "no-cache"},
		{"hashed svg", mustPath(t, a, "logo.svg"), "image/svg+xml", immutable},
		{"plain licence", "/static/vendor/htmx.LICENSE", "text/plain; charset=utf-8", "no-cache"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.url, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", tt.url, rec.Code)
			}
			h := rec.Header()
			if got := h.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", got, tt.contentType)
			}
			if got := h.Get("Cache-Control"); got != tt.cache {
				t.Errorf("Cache-Control = %q, want %q", got, tt.cache)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
			if h.Get("ETag") == "" {
				t.Error("no ETag")
			}
			if h.Get("Content-Encoding") != "" {
				t.Errorf("Content-Encoding = %q without Accept-Encoding", h.Get("Content-Encoding"))
			}
		})
	}
}

// TestFileServesOneFileAnywhere serves the sampler's service worker at the
// path that sets its scope, revalidated on every use.
func TestFileServesOneFileAnywhere(t *testing.T) {
	a := newAssets(t)
	rec := httptest.NewRecorder()
	a.File("sampler-sw.js").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/screening/sampler-sw.js", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "self.addEventListener(\"fetch\"") {
		t.Fatalf("status %d, body %.80q", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", got)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
}

func TestContentTypeForEveryKind(t *testing.T) {
	fsys := fstest.MapFS{
		"a.css":        {Data: []byte("body{}")},
		"a.js":         {Data: []byte("1")},
		"a.svg":        {Data: []byte("<svg/>")},
		"a.png":        {Data: []byte("\x89PNG")},
		"f.woff2":      {Data: []byte("wOF2")},
		"x/b.LICENSE":  {Data: []byte("MIT")},
		"x/README.md":  {Data: []byte("# x")},
		"m.json":       {Data: []byte("{}")},
		"favicon.ico":  {Data: []byte{0, 0, 1, 0}},
		"img/p.webp":   {Data: []byte("RIFF")},
		"font/f.woff":  {Data: []byte("wOFF")},
		"notes/n.txt":  {Data: []byte("n")},
		"app.js.map":   {Data: []byte("{}")},
		"module.mjs":   {Data: []byte("export{}")},
		"UPPER.CSS":    {Data: []byte("a{}")},
		"deep/er/c.js": {Data: []byte("2")},
	}
	want := map[string]string{
		"a.css":       "text/css; charset=utf-8",
		"a.js":        "text/javascript; charset=utf-8",
		"a.svg":       "image/svg+xml",
		"a.png":       "image/png",
		"f.woff2":     "font/woff2",
		"x/b.LICENSE": "text/plain; charset=utf-8",
		"favicon.ico": "image/vnd.microsoft.icon",
		"UPPER.CSS":   "text/css; charset=utf-8",
	}
	a, err := load(fsys)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	for name, ct := range want {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, mustPath(t, a, name), nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ct {
			t.Errorf("%s: status %d, Content-Type %q; want 200, %q", name, rec.Code, rec.Header().Get("Content-Type"), ct)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want string
	}{
		{"unknown extension", fstest.MapFS{"run.sh": {Data: []byte("#!")}}, "no content type"},
		{"no extension", fstest.MapFS{"Makefile": {Data: []byte("all:")}}, "no content type"},
		{
			// "a.<hash of x>.css" as a plain name would shadow the hashed URL of "a.css".
			"plain name equal to a hashed name",
			fstest.MapFS{
				"a.css": {Data: []byte("x")},
				"a." + hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("x")); return s[:] }())[:10] + ".css": {Data: []byte("y")},
			},
			"clashes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(tt.fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("load: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	a := newAssets(t)
	hashed := mustPath(t, a, "app.css")
	tests := []string{
		"/static/nope.css",
		"/static/app.0000000000.css", // a stale hash is not the current file
		"/static/",
		"/static",
		"/static/vendor",
		"/static/vendor/",
		"/app.css",
		"/static//app.css",
		"/static/./app.css",
		"/static/vendor/../app.css",
		"/static/APP.css",
		hashed + "/",
		strings.TrimPrefix(hashed, "/static"), // hashed name without the prefix
	}
	for _, url := range tests {
		t.Run(url, func(t *testing.T) {
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
			if rec.Code != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404", url, rec.Code)
			}
		})
	}
}

// TestTraversal sends raw request lines, so neither a client nor a router cleans the path
// before the handler sees it.
func TestTraversal(t *testing.T) {
	a := newAssets(t)
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	tests := []string{
		"/static/../assets.go",
		"/static/../../go.mod",
		"/static/%2e%2e/assets.go",
		"/static/%2E%2E%2Fassets.go",
		"/static/..%2fassets.go",
		"/static/..%5cassets.go",
		"/static/vendor/..%2f..%2fassets.go",
		"/static/%2e%2e%2f%2e%2e%2fgo.mod",
		"/static/....//assets.go",
		"/static/static/app.css",
		"/static/..",
		"/static/%00app.css",
	}
	for _, target := range tests {
		t.Run(target, func(t *testing.T) {
			status, body := rawGet(t, srv.Listener.Addr().String(), target)
			if status != http.StatusNotFound && status != http.StatusBadRequest {
				t.Errorf("GET %s: status %d, want 404 (or 400 from the server)", target, status)
			}
			if strings.Contains(body, "package assets") || strings.Contains(body, "module github.com") {
				t.Errorf("GET %s leaked a source file", target)
			}
		})
	}
}

func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET "+target+" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, string(body)
}

func TestGzip(t *testing.T) {
	a := newAssets(t)
	tests := []struct {
		name   string
		file   string
		accept string
		gzip   bool
	}{
		{"css with gzip", "app.css", "gzip, deflate, br", true},
		{"vendor js with gzip", "vendor/echarts-6.1.0.min.js", "gzip", true},
		{"x-gzip", "app.js", "x-gzip", true},
		{"star", "app.js", "br;q=1, *;q=0.1", true},
		{"no header", "app.css", "", false},
		{"other codings only", "app.css", "br, deflate", false},
		{"gzip refused", "app.css", "gzip;q=0, *", false},
		{"gzip refused with spaces", "app.css", "gzip ; q=0.000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, mustPath(t, a, tt.file), nil)
			if tt.accept != "" {
				req.Header.Set("Accept-Encoding", tt.accept)
			}
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if got := rec.Header().Get("Vary"); got != "Accept-Encoding" {
				t.Errorf("Vary = %q, want Accept-Encoding", got)
			}
			original := embeddedFile(t, tt.file)
			body := rec.Body.Bytes()
			if got := rec.Header().Get("Content-Encoding") == "gzip"; got != tt.gzip {
				t.Fatalf("gzip = %v, want %v", got, tt.gzip)
			}
			if tt.gzip {
				if len(body) >= len(original) {
					t.Errorf("gzip body %d bytes, original %d: not compressed", len(body), len(original))
				}
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatalf("gzip reader: %v", err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatalf("gunzip: %v", err)
				}
			}
			if !bytes.Equal(body, original) {
				t.Errorf("body differs from the embedded file (%d vs %d bytes)", len(body), len(original))
			}
		})
	}
}

func TestGzipAndIdentityHaveDistinctETags(t *testing.T) {
	a := newAssets(t)
	url := mustPath(t, a, "app.css")
	get := func(accept string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Accept-Encoding", accept)
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, req)
		return rec
	}
	plain, zipped := get("identity"), get("gzip")
	if plain.Header().Get("ETag") == zipped.Header().Get("ETag") {
		t.Errorf("identity and gzip share ETag %s", plain.Header().Get("ETag"))
	}
}

func TestConditionalAndHead(t *testing.T) {
	a := newAssets(t)
	url := mustPath(t, a, "app.css")

	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	etag := rec.Header().Get("ETag")

	req := httptest.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Errorf("If-None-Match %s: status %d, %d body bytes; want 304 and none", etag, rec.Code, rec.Body.Len())
	}

	req = httptest.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("If-None-Match", `"0000000000"`)
	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("stale If-None-Match: status %d, want 200", rec.Code)
	}

	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodHead, url, nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("HEAD: status %d, %d body bytes, type %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Type"))
	}

	rec = httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, url, nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q; want 405, GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"deflate, gzip;q=0.5"}, true},
		{[]string{"br", "gzip"}, true}, // the header sent twice
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.0, *;q=1"}, false},
		{[]string{"*"}, true},
		{[]string{"*;q=0"}, false},
		{[]string{"identity"}, false},
		{[]string{"gzip;q=abc"}, false},
		{[]string{"gzipx"}, false},
	}
	for _, tt := range tests {
		if got := acceptsGzip(tt.values); got != tt.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tt.values, got, tt.want)
		}
	}
}

func TestThroughServeMux(t *testing.T) {
	a := newAssets(t)
	mux := http.NewServeMux()
	mux.Handle("GET /static/", a.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + mustPath(t, a, "vendor/htmx-2.0.11.min.js"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // the client undoes gzip itself
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, embeddedFile(t, "vendor/htmx-2.0.11.min.js")) {
		t.Errorf("status %d, %d bytes; want 200 and htmx", resp.StatusCode, len(body))
	}
}

// TestVendorLicences checks that every vendored library has its licence beside it and a
// line in the vendor README.
func TestVendorLicences(t *testing.T) {
	entries, err := fs.ReadDir(embedded, "static/vendor")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(embeddedFile(t, "vendor/README.md"))
	versioned := regexp.MustCompile(`^(.+)-\d+\.\d+\.\d+\.min\.js$`)
	libraries := 0
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() {
			t.Errorf("vendor/%s: directories are not expected in vendor/", name)
			continue
		}
		if name == "README.md" || strings.HasSuffix(name, ".LICENSE") {
			continue
		}
		libraries++
		m := versioned.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("vendor/%s: want <name>-<version>.min.js", name)
			continue
		}
		licence, err := fs.ReadFile(embedded, "static/vendor/"+m[1]+".LICENSE")
		if err != nil || len(bytes.TrimSpace(licence)) == 0 {
			t.Errorf("vendor/%s: no vendor/%s.LICENSE next to it (%v)", name, m[1], err)
		}
		if !strings.Contains(readme, name) {
			t.Errorf("vendor/%s is not listed in vendor/README.md", name)
		}
	}
	if libraries < 3 {
		t.Errorf("found %d vendored libraries, want htmx, echarts and zxing-browser", libraries)
	}
}

// TestStylesheetHasTemplateClasses guards the class names the templates rely on.
func TestStylesheetHasTemplateClasses(t *testing.T) {
	css := string(embeddedFile(t, "app.css"))
	selectors := []string{
		"body.app", "header.topbar", "nav.mainnav", "nav.mainnav a.active", "main.page", ".page-head",
		".actions", "footer", ".card", ".grid", ".stat", ".stat-value", ".stat-label", "table.list",
		".table-wrap", ".filters", "form.form", ".field", ".hint", ".field-error", ".field.invalid",
		".btn", ".btn.primary", ".btn.danger", ".btn.small", ".badge", ".badge.ok", ".badge.warn",
		".badge.danger", ".badge.muted", ".alert", ".alert.error", ".alert.success", ".alert.info",
		".pager", ".empty", ".masked", ".login", "dl.detail", ".tabs", ".htmx-indicator",
		"@media print", "thead { display: table-header-group; }", "size: A4",
	}
	for _, s := range selectors {
		if !strings.Contains(css, s+" ") && !strings.Contains(css, s+",") && !strings.Contains(css, s+"\n") {
			t.Errorf("app.css has no rule for %q", s)
		}
	}
}

func TestCheckTemplates(t *testing.T) {
	a := newAssets(t)
	parse := func(t *testing.T, text string) *template.Template {
		t.Helper()
		return template.Must(template.New("page").Funcs(template.FuncMap{"asset": a.Path}).Parse(text))
	}
	tests := []struct {
		name    string
		text    string
		wantErr string
	}{
		{"all known", `<link href="{{asset "app.css"}}"><script src="{{asset "vendor/htmx-2.0.11.min.js"}}"></script>`, ""},
		{"pipeline known", `{{"logo.svg" | asset}}`, ""},
		{"computed name is left to render time", `{{asset .Name}}`, ""},
		{"unknown", `<link href="{{asset "app.cs"}}">`, `"app.cs"`},
		{"unknown in pipeline", `{{"nope.js" | asset}}`, `"nope.js"`},
		{"unknown inside if and range", `{{if .}}{{range .}}{{asset "x.css"}}{{end}}{{end}}`, `"x.css"`},
		{"unknown in else of with", `{{with .}}ok{{else}}{{asset "y.js"}}{{end}}`, `"y.js"`},
		{"unknown in parenthesised argument", `{{printf "%s" (asset "z.svg")}}`, `"z.svg"`},
		{"unknown in define", `{{define "head"}}{{asset "w.css"}}{{end}}{{template "head"}}`, `template "head"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.CheckTemplates(parse(t, tt.text), "asset")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckTemplates: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckTemplates: err = %v, want one containing %s", err, tt.wantErr)
			}
		})
	}
}

func TestPathInTemplateRender(t *testing.T) {
	a := newAssets(t)
	tmpl := template.Must(template.New("p").Funcs(template.FuncMap{"asset": a.Path}).Parse(`{{asset .}}`))
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, "app.css"); err != nil || buf.String() != mustPath(t, a, "app.css") {
		t.Errorf("render known: %q, %v", buf.String(), err)
	}
	buf.Reset()
	if err := tmpl.Execute(&buf, "missing.css"); err == nil {
		t.Error("render of an unknown asset succeeded")
	}
}
