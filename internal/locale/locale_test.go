package locale

import (
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

func TestCatalog(t *testing.T) {
	c := NewCatalog()
	fsys := fstest.MapFS{
		"a.json": {Data: []byte(`{"hello": {"zh-CN": "你好 %v", "en": "hello %v"}, "only.zh": {"zh-CN": "仅中文"}}`)},
		"b.json": {Data: []byte(`{"hello": {"zh-CN": "x", "en": "y"}}`)},
	}
	if err := c.Load(fsys, "a.json"); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(fsys, "b.json"); err == nil {
		t.Error("duplicate key across files must be an error")
	}
	if got := c.T(En, "hello", "w"); got != "hello w" {
		t.Errorf("T en = %q", got)
	}
	if got := c.T(En, "only.zh"); got != "仅中文" {
		t.Errorf("fallback = %q", got)
	}
	if got := c.T(ZhCN, "nope"); got != "nope" {
		t.Errorf("missing key = %q", got)
	}
	if m := c.Missing(); len(m) != 1 || m[0] != "only.zh [en]" {
		t.Errorf("Missing = %v", m)
	}
}

func TestFromRequest(t *testing.T) {
	for _, tc := range []struct {
		url, cookie, accept string
		want                Lang
	}{
		{"/", "", "", ZhCN},
		{"/", "", "en-US,en;q=0.9", En},
		{"/", "", "fr,zh-CN;q=0.8", ZhCN},
		{"/", "en", "zh-CN", En},
		{"/?lang=zh-CN", "en", "", ZhCN},
		{"/?lang=xx", "", "en", En},
	} {
		r := httptest.NewRequest("GET", tc.url, nil)
		if tc.cookie != "" {
			r.Header.Set("Cookie", CookieName+"="+tc.cookie)
		}
		if tc.accept != "" {
			r.Header.Set("Accept-Language", tc.accept)
		}
		if got := FromRequest(r); got != tc.want {
			t.Errorf("%+v: got %s", tc, got)
		}
	}
}
