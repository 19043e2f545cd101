// Package locale holds the translations. Each module ships a messages.json of
// {"key": {"zh-CN": "…", "en": "…"}}; the catalog merges them and a test
// checks that every key exists in every language. Simplified Chinese is the
// default.
package locale

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
)

// Lang is a supported language tag.
type Lang string

// The supported languages; ZhCN is the default.
const (
	ZhCN Lang = "zh-CN"
	En   Lang = "en"
)

// Langs lists the supported languages, default first.
var Langs = []Lang{ZhCN, En}

// Catalog maps message keys to their text in each language.
type Catalog struct {
	msgs map[string]map[Lang]string
	from map[string]string // key -> source, to report duplicates
}

// NewCatalog returns an empty catalog.
func NewCatalog() *Catalog {
	return &Catalog{msgs: map[string]map[Lang]string{}, from: map[string]string{}}
}

// Load adds the messages of one JSON file. A key defined twice (in any two
// files) is an error, so modules cannot silently override each other.
func (c *Catalog) Load(fsys fs.FS, name string) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("locale: read %s: %w", name, err)
	}
	var m map[string]map[Lang]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("locale: parse %s: %w", name, err)
	}
	return c.Add(name, m)
}

// Add adds messages from a named source.
func (c *Catalog) Add(source string, m map[string]map[Lang]string) error {
	for k, v := range m {
		if prev, dup := c.from[k]; dup {
			return fmt.Errorf("locale: key %q defined in %s and %s", k, prev, source)
		}
		c.from[k] = source
		c.msgs[k] = v
	}
	return nil
}

// Has reports whether key is defined.
func (c *Catalog) Has(key string) bool { _, ok := c.msgs[key]; return ok }

// T returns the message for key in lang, formatted with args when given.
// A missing translation falls back to Chinese, then to the key itself (which
// the completeness test prevents from shipping).
func (c *Catalog) T(lang Lang, key string, args ...any) string {
	msg, ok := c.msgs[key][lang]
	if !ok || msg == "" {
		msg, ok = c.msgs[key][ZhCN]
	}
	if !ok {
		msg = key
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// Missing lists "key [lang]" for every key lacking a language, sorted.
func (c *Catalog) Missing() []string {
	var out []string
	for k, v := range c.msgs {
		for _, l := range Langs {
			if strings.TrimSpace(v[l]) == "" {
				out = append(out, fmt.Sprintf("%s [%s]", k, l))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Keys returns every key, sorted.
func (c *Catalog) Keys() []string {
	out := make([]string, 0, len(c.msgs))
	for k := range c.msgs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Parse returns the supported language a tag names ("en-US" → En), or false.
func Parse(tag string) (Lang, bool) {
	tag = strings.ToLower(strings.TrimSpace(tag))
	switch {
	case tag == "zh" || strings.HasPrefix(tag, "zh-cn") || strings.HasPrefix(tag, "zh-hans") || strings.HasPrefix(tag, "zh-sg"):
		return ZhCN, true
	case tag == "en" || strings.HasPrefix(tag, "en-"):
		return En, true
	}
	return "", false
}

// CookieName is the cookie that stores a chosen language.
const CookieName = "lang"

// FromRequest picks the language: ?lang=, then the lang cookie, then
// Accept-Language, then Chinese.
func FromRequest(r *http.Request) Lang {
	if l, ok := Parse(r.URL.Query().Get("lang")); ok {
		return l
	}
	if ck, err := r.Cookie(CookieName); err == nil {
		if l, ok := Parse(ck.Value); ok {
			return l
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(part, ";")
		if l, ok := Parse(tag); ok {
			return l
		}
	}
	return ZhCN
}

// Source names one messages file inside a module's embedded files.
type Source struct {
	FS   fs.FS
	Name string
}

// LoadAll loads every source in order.
func (c *Catalog) LoadAll(sources ...Source) error {
	for _, s := range sources {
		if err := c.Load(s.FS, s.Name); err != nil {
			return err
		}
	}
	return nil
}
