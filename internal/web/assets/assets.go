// Package assets serves shaobing's static files (app.css, app.js, scan.js, logo.svg and the
// vendored htmx, ECharts and ZXing builds), embedded in the binary, under content-hashed URLs.
//
// Templates ask for a file by its plain name and get a URL that changes whenever the
// file's content does, so browsers may cache it for a year:
//
//	funcs := template.FuncMap{"asset": a.Path} // {{asset "app.css"}} -> /static/app.3f2a1b9c0d.css
//	t := template.Must(template.New("").Funcs(funcs).ParseFS(…))
//	if err := a.CheckTemplates(t, "asset"); err != nil { … } // a misspelt name fails the boot
//	mux.Handle("GET /static/", a.Handler())
//
// Path returns an error for an unknown name rather than a URL that would 404: in a template
// that error aborts the render, and CheckTemplates finds literal names at start-up, so a
// broken reference can neither ship silently nor take the server down at run time.
package assets

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// Prefix is the URL path under which Handler serves files; mount Handler on it.
const Prefix = "/static/"

//go:embed static
var embedded embed.FS

// hashLen is how many hex digits of the SHA-256 go into a URL: 40 bits is plenty to tell
// versions of one file apart and keeps URLs short.
const hashLen = 10

// contentTypes lists every extension the static folder may hold. A file with any other
// extension fails New, so a new kind of file cannot be served with a guessed type.
var contentTypes = map[string]string{
	".css":     "text/css; charset=utf-8",
	".js":      "text/javascript; charset=utf-8",
	".mjs":     "text/javascript; charset=utf-8",
	".json":    "application/json",
	".map":     "application/json",
	".svg":     "image/svg+xml",
	".png":     "image/png",
	".ico":     "image/vnd.microsoft.icon",
	".webp":    "image/webp",
	".woff2":   "font/woff2",
	".woff":    "font/woff",
	".txt":     "text/plain; charset=utf-8",
	".md":      "text/plain; charset=utf-8",
	".license": "text/plain; charset=utf-8",
}

// compressible reports whether gzip can shrink files of this type; images and fonts
// listed above are compressed already.
func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") ||
		strings.HasPrefix(contentType, "application/json") ||
		strings.HasPrefix(contentType, "image/svg+xml")
}

// file is one static file, held in memory with its gzip form.
type file struct {
	name        string // plain name under Prefix, e.g. "vendor/htmx-2.0.11.min.js"
	hashedName  string // e.g. "vendor/htmx-2.0.11.min.d6fdc75f20.js"
	contentType string
	body        []byte
	etag        string
	gzipBody    []byte // nil when gzip does not pay
	gzipETag    string
}

// Assets serves embedded static files under content-hashed URLs.
// It is read-only after New and safe for concurrent use.
type Assets struct {
	byName   map[string]*file
	byHashed map[string]*file
}

// New hashes (SHA-256, first 10 hex digits) and gzips every embedded static file.
func New() (*Assets, error) {
	static, err := fs.Sub(embedded, "static")
	if err != nil {
		return nil, fmt.Errorf("open embedded static files: %w", err)
	}
	return load(static)
}

// load builds Assets from the files of fsys; tests use it with fstest.MapFS.
func load(fsys fs.FS) (*Assets, error) {
	a := &Assets{byName: map[string]*file{}, byHashed: map[string]*file{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		f, err := newFile(name, body)
		if err != nil {
			return err
		}
		a.byName[f.name] = f
		a.byHashed[f.hashedName] = f
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static files: %w", err)
	}
	// A plain name that looks like another file's hashed name would make URLs ambiguous.
	for name := range a.byName {
		if other, ok := a.byHashed[name]; ok && other.name != name {
			return nil, fmt.Errorf("static file %q clashes with the hashed name of %q", name, other.name)
		}
	}
	return a, nil
}

func newFile(name string, body []byte) (*file, error) {
	ext := path.Ext(name)
	contentType, ok := contentTypes[strings.ToLower(ext)]
	if !ok {
		return nil, fmt.Errorf("static file %q: no content type for extension %q", name, ext)
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])[:hashLen]
	f := &file{
		name:        name,
		hashedName:  strings.TrimSuffix(name, ext) + "." + hash + ext,
		contentType: contentType,
		body:        body,
		etag:        `"` + hash + `"`,
	}
	if compressible(contentType) {
		gz, err := gzipBytes(body)
		if err != nil {
			return nil, fmt.Errorf("gzip static file %q: %w", name, err)
		}
		// Below a tenth saved, the extra variant is not worth a Vary header.
		if len(gz) < len(body)-len(body)/10 {
			f.gzipBody = gz
			// The gzip bytes are a different representation, so they need their own tag.
			f.gzipETag = `"` + hash + `-gzip"`
		}
	}
	return f, nil
}

func gzipBytes(body []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Path returns the content-hashed URL of a static file given by its plain name relative
// to the static folder ("app.css", "vendor/htmx-2.0.11.min.js"). An unknown name is an
// error wrapping fs.ErrNotExist. Its signature suits a template function.
func (a *Assets) Path(name string) (string, error) {
	f, ok := a.byName[name]
	if !ok {
		return "", fmt.Errorf("static file %q: %w", name, fs.ErrNotExist)
	}
	return Prefix + f.hashedName, nil
}

// Handler serves Prefix + a hashed or plain name. Hashed URLs are cached for a year as
// immutable; plain URLs are revalidated on every use (no-cache, with an ETag). Anything that
// is not exactly a known file name, directories and ".." included, is 404.
func (a *Assets) Handler() http.Handler {
	return http.HandlerFunc(a.serve)
}

// File serves one static file, by its plain name, at whatever path it is routed to: a
// service worker's URL decides which pages it may control, so it cannot live under
// Prefix. Like every plain URL it is revalidated on each use, so an update reaches the
// phones on their next visit.
func (a *Assets) File(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = Prefix + name
		a.serve(w, r2)
	})
}

func (a *Assets) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	// Only exact names from the maps are served, so no path cleaning is needed: a
	// traversal such as "../assets.go" or "vendor/" is simply not a name.
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, hashed := a.byHashed[name], true
	if f == nil {
		f, hashed = a.byName[name], false
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}

	h := w.Header()
	if hashed {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("Content-Type", f.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	body, etag := f.body, f.etag
	if f.gzipBody != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			body, etag = f.gzipBody, f.gzipETag
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	// ServeContent answers If-None-Match with 304, HEAD without a body, and Range.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding values (RFC 9110 §12.5.3) allow gzip:
// "gzip" or "x-gzip" with a non-zero weight, or "*" with one when gzip is not named.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					parsed, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil {
						parsed = 0 // a malformed weight does not grant anything
					}
					q = parsed
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}
