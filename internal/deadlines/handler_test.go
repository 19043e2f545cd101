package deadlines_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

// server serves the deadlines routes as the user named by the X-Test-User
// header (one of users).
func (f *fixture) server(t *testing.T, users map[string]*scope.Principal) *httptest.Server {
	t.Helper()
	shell := webtest.Shell(t, time.FixedZone("CST", 8*3600), []locale.Source{settings.Messages, deadlines.Messages}, deadlines.Templates, settings.Templates)
	if missing := shell.Catalog.Missing(); len(missing) > 0 {
		t.Fatalf("missing translations: %v", missing)
	}
	h := deadlines.NewHandler(f.engine, shell)
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", shell.Page(h.Home))
	mux.Handle("GET /inbox", shell.Page(h.Inbox))
	mux.Handle("GET /inbox/export", shell.Page(h.Export))
	mux.Handle("GET /inbox/{id}", shell.Page(h.Detail))
	mux.Handle("GET /api/v1/deadlines", shell.API(h.APIList))
	mux.Handle("GET /api/v1/deadlines/{id}", shell.API(h.APIGet))
	return webtest.Serve(t, mux, users)
}

func get(t *testing.T, srv *httptest.Server, user, path string) (int, string) {
	t.Helper()
	code, body, _ := webtest.Do(t, srv, user, "GET", path, "", nil)
	return code, body
}

type listBody struct {
	Items []struct {
		ID            int64   `json:"id"`
		Kind          string  `json:"kind"`
		Title         string  `json:"title"`
		RegionCode    string  `json:"region_code"`
		InstitutionID *int64  `json:"institution_id"`
		State         string  `json:"state"`
		MetAt         *string `json:"met_at"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func listAPI(t *testing.T, srv *httptest.Server, user, query string) listBody {
	t.Helper()
	status, body := get(t, srv, user, "/api/v1/deadlines?"+query)
	if status != http.StatusOK {
		t.Fatalf("GET deadlines?%s as %s = %d %s", query, user, status, body)
	}
	var lb listBody
	if err := json.Unmarshal([]byte(body), &lb); err != nil {
		t.Fatal(err)
	}
	return lb
}

var users = map[string]*scope.Principal{
	"district": {UserID: 1, Username: "district", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
	"north":    {UserID: 2, Username: "north", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305001"},
	"south":    {UserID: 3, Username: "south", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305002"},
	"clinic":   {UserID: 4, Username: "clinic", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: "330305001", InstitutionID: 7},
}

// seed opens deadlines in two townships; north's includes one owned by
// institution 7 and one owned by the township itself.
func (f *fixture) seed(t *testing.T) (northClinic, northTown, south int64) {
	t.Helper()
	northClinic = f.open(t, positive("N1"))
	northTown = f.open(t, deadlines.Deadline{Kind: deadlines.Recall, SubjectType: "tube", SubjectID: "N1", Title: "召回 N1", RegionCode: "330305001"})
	south = f.open(t, deadlines.Deadline{Kind: deadlines.PositiveReport, SubjectType: "tube", SubjectID: "S1", Title: "阳性管 S1", RegionCode: "330305002", InstitutionID: 9})
	return
}

func ids(lb listBody) []int64 {
	var out []int64
	for _, it := range lb.Items {
		out = append(out, it.ID)
	}
	return out
}

func TestInboxScope(t *testing.T) {
	f := setup(t)
	northClinic, northTown, south := f.seed(t)
	srv := f.server(t, users)
	tests := []struct {
		user string
		want []int64
	}{
		{"district", []int64{northClinic, south, northTown}}, // by due time: 2h, 2h, 12h
		{"north", []int64{northClinic, northTown}},
		{"south", []int64{south}},
		{"clinic", []int64{northClinic}},
	}
	for _, tt := range tests {
		if got := ids(listAPI(t, srv, tt.user, "")); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s sees %v, want %v", tt.user, got, tt.want)
		}
	}
	// Another township's deadline is not found, in the API and on the page.
	for _, path := range []string{fmt.Sprintf("/api/v1/deadlines/%d", south), fmt.Sprintf("/inbox/%d", south)} {
		if status, _ := get(t, srv, "north", path); status != http.StatusNotFound {
			t.Errorf("north GET %s = %d, want 404", path, status)
		}
	}
	if status, _ := get(t, srv, "clinic", fmt.Sprintf("/api/v1/deadlines/%d", northTown)); status != http.StatusNotFound {
		t.Errorf("clinic GET the township's deadline = %d, want 404", status)
	}
	if status, body := get(t, srv, "north", fmt.Sprintf("/inbox/%d", northTown)); status != http.StatusOK || !strings.Contains(body, "召回 N1") {
		t.Errorf("north GET own deadline page = %d", status)
	}
	// A region filter outside the caller's scope widens nothing.
	if got := listAPI(t, srv, "north", "region_code=330305002"); len(got.Items) != 0 {
		t.Errorf("north filtering on south's region sees %v", ids(got))
	}
	// The inbox page and the export list the same rows.
	_, page := get(t, srv, "north", "/inbox")
	_, export := get(t, srv, "north", "/inbox/export?format=csv")
	for _, title := range []string{"阳性管 N1", "召回 N1"} {
		if !strings.Contains(page, title) || !strings.Contains(export, title) {
			t.Errorf("north's inbox or export lacks %q", title)
		}
	}
	if strings.Contains(page, "S1") || strings.Contains(export, "S1") {
		t.Error("north's inbox or export shows south's deadline")
	}
	// Nobody signed in: the API answers 401, pages send to the login page.
	if status, _ := get(t, srv, "", "/api/v1/deadlines"); status != http.StatusUnauthorized {
		t.Errorf("anonymous API = %d", status)
	}
	if status, _ := get(t, srv, "", "/inbox"); status != http.StatusSeeOther {
		t.Errorf("anonymous inbox = %d", status)
	}
}

func TestAPIFilters(t *testing.T) {
	f := setup(t)
	northClinic, northTown, south := f.seed(t)
	f.meet(t, deadlines.Recall, "tube", "N1")
	srv := f.server(t, users)
	tests := []struct {
		query string
		want  []int64
	}{
		{"kind=recall", []int64{northTown}},
		{"state=met", []int64{northTown}},
		{"state=open", []int64{northClinic, south}},
		{"state=unresolved&region_code=330305002", []int64{south}},
		{"kind=positive_report&state=open&region_code=330305001", []int64{northClinic}},
	}
	for _, tt := range tests {
		if got := ids(listAPI(t, srv, "district", tt.query)); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("?%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	met := listAPI(t, srv, "district", "state=met").Items[0]
	if met.MetAt == nil || met.InstitutionID != nil || met.Kind != "recall" {
		t.Errorf("met item = %+v", met)
	}

	bad := []struct{ query, field string }{
		{"state=closed", "state"},
		{"kind=lunch", "kind"},
		{"region_code=33x", "region_code"},
		{"limit=0", "limit"},
		{"limit=5000", "limit"},
		{"cursor=" + url.QueryEscape("not a cursor"), "cursor"},
	}
	for _, tt := range bad {
		status, body := get(t, srv, "district", "/api/v1/deadlines?"+tt.query)
		var doc web.ProblemDoc
		_ = json.Unmarshal([]byte(body), &doc)
		if status != http.StatusUnprocessableEntity || len(doc.Errors) != 1 || doc.Errors[0].Field != tt.field {
			t.Errorf("?%s = %d %s; want 422 naming %s", tt.query, status, body, tt.field)
		}
	}
}

func TestAPIPagination(t *testing.T) {
	f := setup(t)
	var want []int64
	for i := range 7 {
		d := positive(fmt.Sprint(i))
		d.DueAt = t0.Add(time.Duration(7-i%3) * time.Hour) // ties on due time, broken by id
		want = append(want, f.open(t, d))
	}
	srv := f.server(t, users)
	var got []int64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 7 {
			t.Fatal("pagination does not end")
		}
		lb := listAPI(t, srv, "north", "limit=3&cursor="+cursor)
		got = append(got, ids(lb)...)
		if lb.NextCursor == "" {
			break
		}
		cursor = lb.NextCursor
	}
	if len(got) != len(want) {
		t.Fatalf("pages returned %v; want all of %v once", got, want)
	}
	seen := map[int64]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("id %d returned twice", id)
		}
		seen[id] = true
	}
}

func TestPages(t *testing.T) {
	f := setup(t)
	f.seed(t)
	soon := positive("SOON")
	soon.DueAt = t0.Add(30 * time.Minute)
	f.open(t, soon)
	late := positive("LATE")
	late.DueAt = t0.Add(-time.Hour)
	f.open(t, late)
	if _, err := f.engine.Tick(system); err != nil {
		t.Fatal(err)
	}
	if err := f.settings.Set(admin, settings.ResponseLevel, settings.LevelII); err != nil {
		t.Fatal(err)
	}
	srv := f.server(t, users)

	status, home := get(t, srv, "district", "/")
	if status != http.StatusOK {
		t.Fatalf("home = %d %s", status, home)
	}
	for _, want := range []string{`class="card stat"`, "Ⅱ级响应", "data-chart=", "阳性管 LATE", "echarts-6.1.0.min"} {
		if !strings.Contains(home, want) {
			t.Errorf("home lacks %q", want)
		}
	}
	status, inbox := get(t, srv, "district", "/inbox?lang=en")
	if status != http.StatusOK {
		t.Fatalf("inbox = %d %s", status, inbox)
	}
	// Due in 30 minutes: amber; due an hour ago: red, "overdue by"; due times in Shanghai time.
	for _, want := range []string{`badge warn`, `badge danger`, "30 min left", "overdue by 1h 0m", "2026-11-23 08:00", "2026-11-23 09:30"} {
		if !strings.Contains(inbox, want) {
			t.Errorf("inbox lacks %q", want)
		}
	}
	if status, body := get(t, srv, "district", "/inbox?state=closed"); status != http.StatusUnprocessableEntity {
		t.Errorf("inbox with a bad state = %d %s", status, body)
	}
	status, xlsx := get(t, srv, "district", "/inbox/export?format=xlsx")
	if status != http.StatusOK || !strings.HasPrefix(xlsx, "PK") {
		t.Errorf("xlsx export = %d, %d bytes", status, len(xlsx))
	}
	if status, _ := get(t, srv, "district", "/inbox/export?format=pdf"); status != http.StatusUnprocessableEntity {
		t.Errorf("pdf export = %d, want 422", status)
	}
}

func TestOpenAPIFragment(t *testing.T) {
	d, err := openapi.Build(openapi.Platform, deadlines.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, op := range d.Operations() {
		got[op.Method+" "+op.Path] = !op.Public
	}
	for _, want := range []string{"GET /api/v1/deadlines", "GET /api/v1/deadlines/{id}"} {
		if !got[want] {
			t.Errorf("%s is not documented as an authenticated operation (have %v)", want, got)
		}
	}
}
