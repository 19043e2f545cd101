package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

func TestMessagesComplete(t *testing.T) {
	cat := locale.NewCatalog()
	if err := cat.LoadAll(web.Messages, Messages); err != nil {
		t.Fatal(err)
	}
	var m map[string]map[string]string
	b, err := messageFiles.ReadFile("messages.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if v["zh-CN"] == "" || v["en"] == "" {
			t.Errorf("%s lacks a language", k)
		}
	}
	for _, o := range Outcomes {
		if !cat.Has("audit.outcome." + o) {
			t.Errorf("no message for outcome %s", o)
		}
	}
}

// testServer serves the audit routes behind the audit middleware; the
// principal of each request is the entry of users named by the X-Test-User
// header.
func testServer(t *testing.T, l *Log, users map[string]*scope.Principal) *httptest.Server {
	t.Helper()
	shell := webtest.Shell(t, time.UTC, []locale.Source{Messages}, Templates)
	h := NewHandler(l, shell)
	mux := http.NewServeMux()
	mux.Handle("GET /audit", shell.Page(h.Page))
	mux.Handle("GET /audit/export", shell.Page(h.Export))
	mux.Handle("POST /audit/verify", shell.Page(h.VerifyPage))
	mux.Handle("GET /api/v1/audit", shell.API(h.API))
	mux.Handle("POST /api/v1/audit/verify", shell.API(h.VerifyAPI))
	return webtest.Serve(t, Middleware(mux), users)
}

func get(t *testing.T, srv *httptest.Server, user, method, path string) (int, string) {
	t.Helper()
	code, body, _ := webtest.Do(t, srv, user, method, path, "", nil)
	return code, body
}

func seed(t *testing.T, l *Log) {
	t.Helper()
	for _, p := range []*scope.Principal{
		{UserID: 1, Username: "sampler_a", RegionCode: "330305001"},
		{UserID: 2, Username: "sampler_b", RegionCode: "330305002"},
	} {
		ctx := WithClient(scope.WithPrincipal(context.Background(), p), "10.0.0.1", "phone")
		for _, e := range []Entry{
			{Action: "person.read", ObjectType: "person", ObjectID: "11"},
			{Action: "person.search", Detail: "=cmd|' /C calc'!A0"},
			{Action: "person.unmask", ObjectType: "person", ObjectID: "11", Outcome: Denied},
		} {
			if err := l.RecordOutside(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestHandlers(t *testing.T) {
	l, _ := newLog(t)
	seed(t, l)
	users := map[string]*scope.Principal{
		"township": {UserID: 9, Username: "admin_a", RegionCode: "330305001", Roles: []scope.Role{scope.BureauAdmin}},
		"district": {UserID: 10, Username: "admin_d", RegionCode: "330305", Roles: []scope.Role{scope.BureauAdmin}},
		"sampler":  {UserID: 1, Username: "sampler_a", RegionCode: "330305001", Roles: []scope.Role{scope.Sampler}},
	}
	srv := testServer(t, l, users)

	t.Run("page is scoped to the admin's subtree", func(t *testing.T) {
		code, body := get(t, srv, "township", "GET", "/audit")
		if code != 200 || !strings.Contains(body, "sampler_a") || strings.Contains(body, "sampler_b") {
			t.Fatalf("status %d, body:\n%s", code, body)
		}
	})
	t.Run("page filters", func(t *testing.T) {
		code, body := get(t, srv, "district", "GET", "/audit?outcome=denied&user=sampler_b")
		if code != 200 || strings.Count(body, "person.unmask") != 1 || strings.Contains(body, "person.read") {
			t.Fatalf("status %d, body:\n%s", code, body)
		}
		for _, link := range []string{`href="/audit/export?format=csv&amp;outcome=denied&amp;user=sampler_b"`, `action="/audit/verify?outcome=denied&amp;user=sampler_b"`} {
			if !strings.Contains(body, link) {
				t.Errorf("page lacks %s", link)
			}
		}
	})
	t.Run("bad filters are named", func(t *testing.T) {
		code, body := get(t, srv, "district", "GET", "/api/v1/audit?from=yesterday&outcome=meh")
		if code != 422 || !strings.Contains(body, `"from"`) || !strings.Contains(body, `"outcome"`) {
			t.Fatalf("status %d, body %s", code, body)
		}
	})
	t.Run("other roles are refused", func(t *testing.T) {
		for _, path := range []string{"/audit", "/api/v1/audit", "/audit/export?format=csv"} {
			if code, _ := get(t, srv, "sampler", "GET", path); code != http.StatusForbidden {
				t.Errorf("%s: status %d", path, code)
			}
		}
		if code, _ := get(t, srv, "", "GET", "/api/v1/audit"); code != http.StatusUnauthorized {
			t.Errorf("anonymous API: status %d", code)
		}
	})
	t.Run("API pages with a cursor", func(t *testing.T) {
		var got []string
		path := "/api/v1/audit?limit=4"
		for range 5 {
			code, body := get(t, srv, "district", "GET", path)
			if code != 200 {
				t.Fatalf("status %d: %s", code, body)
			}
			var resp struct {
				Items      []Item `json:"items"`
				NextCursor string `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Fatal(err)
			}
			for _, it := range resp.Items {
				got = append(got, it.Action)
			}
			if resp.NextCursor == "" {
				break
			}
			path = "/api/v1/audit?limit=4&cursor=" + resp.NextCursor
		}
		if len(got) != 6 || got[0] != "person.unmask" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("CSV export is scoped, neutralised and audited", func(t *testing.T) {
		code, body := get(t, srv, "township", "GET", "/audit/export?format=csv&action=person.")
		if code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
		recs, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 || recs[0][2] != "username" {
			t.Fatalf("rows %v", recs)
		}
		for _, r := range recs[1:] {
			if r[2] != "sampler_a" {
				t.Errorf("exported another township's entry: %v", r)
			}
			if strings.HasPrefix(r[7], "=") {
				t.Errorf("formula not neutralised: %q", r[7])
			}
		}
		items, _, err := l.List(scope.WithPrincipal(context.Background(), scope.System()), Filter{Action: "audit.export"}, 10)
		if err != nil || len(items) != 1 || items[0].Username != "admin_a" || items[0].UserAgent != webtest.UserAgent || items[0].ClientAddr != "127.0.0.1" {
			t.Fatalf("export entry %+v, %v", items, err)
		}
	})
	t.Run("xlsx export", func(t *testing.T) {
		code, body := get(t, srv, "district", "GET", "/audit/export?format=xlsx")
		if code != 200 || !bytes.HasPrefix([]byte(body), []byte("PK")) {
			t.Fatalf("status %d, %d bytes", code, len(body))
		}
	})
	t.Run("verify", func(t *testing.T) {
		code, body := get(t, srv, "district", "POST", "/api/v1/audit/verify")
		var rep VerifyReport
		if err := json.Unmarshal([]byte(body), &rep); code != 200 || err != nil || !rep.OK() || rep.Entries < 6 {
			t.Fatalf("status %d: %s", code, body)
		}
		code, body = get(t, srv, "district", "POST", "/audit/verify")
		if code != 200 || !strings.Contains(body, "alert success") {
			t.Fatalf("status %d, body:\n%s", code, body)
		}
	})
}

func TestClientAddr(t *testing.T) {
	tests := []struct {
		name       string
		remote     string
		xff        []string
		trustProxy bool
		want       string
	}{
		{"peer", "192.0.2.7:5555", nil, false, "192.0.2.7"},
		{"ipv6 peer", "[2001:db8::1]:443", nil, false, "2001:db8::1"},
		{"forwarded header ignored without trust", "192.0.2.7:5555", []string{"203.0.113.9"}, false, "192.0.2.7"},
		{"proxy's hop is the last", "10.0.0.2:80", []string{"6.6.6.6, 203.0.113.9"}, true, "203.0.113.9"},
		{"last header wins", "10.0.0.2:80", []string{"6.6.6.6", "203.0.113.9"}, true, "203.0.113.9"},
		{"trusted but absent", "10.0.0.2:80", nil, true, "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			var got client
			MiddlewareWith(tt.trustProxy)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = clientOf(r.Context())
				if a := ClientAddr(r.Context()); a != got.addr {
					t.Errorf("ClientAddr = %q; the context holds %q", a, got.addr)
				}
			})).ServeHTTP(httptest.NewRecorder(), r)
			if got.addr != tt.want {
				t.Fatalf("addr = %q, want %q", got.addr, tt.want)
			}
		})
	}
}

func TestOpenAPIFragment(t *testing.T) {
	d, err := openapi.Build(openapi.Platform, OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range d.Operations() {
		got = append(got, o.Method+" "+o.Path)
	}
	for _, want := range []string{"GET /api/v1/audit", "POST /api/v1/audit/verify"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s not documented (have %v)", want, got)
		}
	}
}
