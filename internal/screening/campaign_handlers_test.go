package screening

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

// campaignRoutes are the routes of campaigns, points, planning, slots and
// coverage, as internal/server/routes.go lists them.
func campaignRoutes(mux *http.ServeMux, shell *web.Shell, h *Handlers) {
	mux.Handle("GET /screening/campaigns", shell.Page(h.CampaignList))
	mux.Handle("GET /screening/campaigns/new", shell.Page(h.CampaignNew))
	mux.Handle("POST /screening/campaigns", shell.Page(h.CampaignCreate))
	mux.Handle("GET /screening/campaigns/{id}", shell.Page(h.CampaignDashboard))
	mux.Handle("POST /screening/campaigns/{id}/close", shell.Page(h.CampaignClose))
	mux.Handle("GET /screening/campaigns/{id}/points", shell.Page(h.PointList))
	mux.Handle("POST /screening/campaigns/{id}/points", shell.Page(h.PointCreate))
	mux.Handle("GET /screening/campaigns/{id}/plan", shell.Page(h.PlanPage))
	mux.Handle("GET /screening/campaigns/{id}/slots", shell.Page(h.SlotList))
	mux.Handle("POST /screening/campaigns/{id}/slots", shell.Page(h.SlotCreate))
	mux.Handle("POST /screening/slots/{id}/delete", shell.Page(h.SlotDelete))
	mux.Handle("GET /screening/points/{id}/notice", shell.Page(h.PointNotice))
	mux.Handle("GET /screening/campaigns/{id}/coverage", shell.Page(h.CoveragePage))
	mux.Handle("GET /screening/campaigns/{id}/not-sampled/export", shell.Page(h.NotSampledExport))

	mux.Handle("GET /api/v1/campaigns", shell.API(h.APICampaigns))
	mux.Handle("POST /api/v1/campaigns", shell.API(h.APICampaignCreate))
	mux.Handle("GET /api/v1/campaigns/{id}", shell.API(h.APICampaign))
	mux.Handle("POST /api/v1/campaigns/{id}/close", shell.API(h.APICampaignClose))
	mux.Handle("GET /api/v1/campaigns/{id}/coverage", shell.API(h.APICoverage))
	mux.Handle("GET /api/v1/campaigns/{id}/plan", shell.API(h.APIPlan))
	mux.Handle("GET /api/v1/campaigns/{id}/not-sampled", shell.API(h.APINotSampled))
	mux.Handle("GET /api/v1/campaigns/{id}/not-sampled/export", shell.API(h.NotSampledExport))
	mux.Handle("GET /api/v1/campaigns/{id}/slots", shell.API(h.APISlots))
	mux.Handle("POST /api/v1/campaigns/{id}/slots", shell.API(h.APISlotCreate))
	mux.Handle("DELETE /api/v1/slots/{id}", shell.API(h.APISlotDelete))
	mux.Handle("GET /api/v1/sampling-points", shell.API(h.APIPoints))
	mux.Handle("POST /api/v1/sampling-points", shell.API(h.APIPointCreate))
	mux.Handle("GET /api/v1/sampling-points/{id}", shell.API(h.APIPoint))
}

// campaignServer serves the campaign routes over a fresh fixture. The users
// are the fixture's principals by name.
func campaignServer(t *testing.T) (*fixture, *httptest.Server) {
	t.Helper()
	f := newFixture(t)
	shell := webtest.Shell(t, time.FixedZone("CST", 8*3600), []locale.Source{people.Messages, Messages}, Templates)
	shell.Now = f.clock.Now
	mux := http.NewServeMux()
	campaignRoutes(mux, shell, NewHandlers(shell, f.svc))
	users := map[string]*scope.Principal{}
	for name, ctx := range map[string]context.Context{
		"admin": f.bureauAdmin(), "township": f.townshipStaffA(), "sampler": f.samplerA(), "outsider": f.outsider(),
	} {
		p, err := scope.FromContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		users[name] = p
	}
	return f, webtest.Serve(t, mux, users)
}

// apiCall sends a request and decodes a JSON answer into out (when not nil).
func apiCall(t *testing.T, srv *httptest.Server, user, method, path, body string, out any) (int, string) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	status, text, _ := webtest.Do(t, srv, user, method, path, ct, strings.NewReader(body))
	if out != nil && status < 300 {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, text)
		}
	}
	return status, text
}

// problemFields returns the fields a problem document names.
func problemFields(t *testing.T, body string) []string {
	t.Helper()
	var doc struct {
		Errors []struct{ Field, Code string }
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("not a problem document: %s", body)
	}
	var out []string
	for _, e := range doc.Errors {
		out = append(out, e.Field+":"+e.Code)
	}
	return out
}

func TestCampaignAPI(t *testing.T) {
	t.Parallel()
	f, srv := campaignServer(t)
	seedResidents(f, villageA, 0, 3)
	seedResidents(f, villageB, 10, 2)

	var created map[string]any
	status, body := apiCall(t, srv, "admin", "POST", "/api/v1/campaigns", `{"name": "第1轮全员核酸", "pathogen": "sars_cov_2",
		"region_codes": ["`+townshipA+`", "`+townshipB+`"], "pool_size": 10, "starts_at": "2025-06-15T08:00:00+08:00", "ends_at": "2025-06-15T20:00:00+08:00"}`, &created)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	for _, k := range []string{"id", "name", "pathogen", "region_codes", "region_code", "pool_size", "starts_at", "ends_at", "results_due_at", "closed_at", "created_at"} {
		if _, ok := created[k]; !ok {
			t.Errorf("created campaign lacks %q: %s", k, body)
		}
	}
	if created["closed_at"] != nil || created["region_code"] != district || created["results_due_at"] != "2025-06-16T00:00:00Z" {
		t.Errorf("created %s", body)
	}
	id := int64(created["id"].(float64))

	status, body = apiCall(t, srv, "admin", "POST", "/api/v1/campaigns", `{"name": "", "pathogen": "ebola", "region_codes": ["`+otherCity+`"],
		"pool_size": 3, "starts_at": "tomorrow", "ends_at": "2025-06-15T20:00:00+08:00"}`, nil)
	want := []string{"name:required", "pathogen:campaign.pathogen_unknown", "region_codes:region_code.out_of_scope", "pool_size:campaign.pool_size", "starts_at:campaign.time_invalid"}
	if got := problemFields(t, body); status != http.StatusUnprocessableEntity || !sameSet(got, want) {
		t.Errorf("bad campaign: %d %v, want %v", status, got, want)
	}
	status, body = apiCall(t, srv, "admin", "POST", "/api/v1/campaigns", `{"name": "x", "pathogen": "other", "region_codes": ["`+villageA+`"],
		"pool_size": 1, "starts_at": "2025-06-15T08:00", "ends_at": "2025-06-15T20:00:00Z"}`, nil)
	if got := problemFields(t, body); status != http.StatusUnprocessableEntity || !slices.Equal(got, []string{"starts_at:campaign.time_invalid"}) {
		t.Errorf("a time without its zone: %d %v", status, got)
	}
	status, body = apiCall(t, srv, "admin", "POST", "/api/v1/campaigns", `{"ends_at": {"nested": true}}`, nil)
	if got := problemFields(t, body); status != http.StatusUnprocessableEntity || !slices.Contains(got, "ends_at:type") {
		t.Errorf("wrong type: %d %v", status, got)
	}
	if status, _ := apiCall(t, srv, "sampler", "POST", "/api/v1/campaigns", `{}`, nil); status != http.StatusForbidden {
		t.Errorf("sampler creates a campaign: %d", status)
	}
	var list listOf[Campaign]
	if status, body := apiCall(t, srv, "township", "GET", "/api/v1/campaigns?state=active", "", &list); status != 200 || len(list.Items) != 1 {
		t.Errorf("township's list: %d %s", status, body)
	}
	if status, _ := apiCall(t, srv, "outsider", "GET", fmt.Sprintf("/api/v1/campaigns/%d", id), "", nil); status != http.StatusNotFound {
		t.Errorf("other city reads the campaign: %d", status)
	}

	var sp map[string]any
	status, body = apiCall(t, srv, "admin", "POST", "/api/v1/sampling-points", fmt.Sprintf(`{"name": "城中社区采样点", "region_code": "%s", "campaign_id": %d,
		"capacity_per_hour": 100, "samplers": 3, "opens": "08:00", "closes": "18:00"}`, villageA, id), &sp)
	if status != http.StatusCreated || sp["campaign_id"] != float64(id) || sp["institution_id"] == nil || sp["region_code"] != villageA || sp["name"] != "城中社区采样点" {
		t.Fatalf("create point: %d %s", status, body)
	}
	pointID := int64(sp["id"].(float64))
	f.point(id, f.pointInstA, "北岙采样点", townshipA)
	var points listOf[SamplingPoint]
	if status, body := apiCall(t, srv, "sampler", "GET", fmt.Sprintf("/api/v1/sampling-points?campaign_id=%d", id), "", &points); status != 200 ||
		len(points.Items) != 1 || points.Items[0].InstitutionID != f.pointInstA {
		t.Errorf("sampler's points: %d %s", status, body)
	}
	if status, body := apiCall(t, srv, "admin", "GET", "/api/v1/sampling-points?campaign_id=x", "", nil); status != 422 || !slices.Contains(problemFields(t, body), "campaign_id:id.invalid") {
		t.Errorf("bad campaign_id: %d %s", status, body)
	}

	var slot Slot
	status, body = apiCall(t, srv, "admin", "POST", fmt.Sprintf("/api/v1/campaigns/%d/slots", id), fmt.Sprintf(`{"sampling_point_id": %d,
		"region_code": "%s", "label": "1–6幢", "starts_at": "2025-06-15T09:00:00+08:00", "ends_at": "2025-06-15T10:00:00+08:00"}`, pointID, villageA), &slot)
	if status != http.StatusCreated || slot.Label != "1–6幢" {
		t.Fatalf("create slot: %d %s", status, body)
	}
	status, body = apiCall(t, srv, "admin", "POST", fmt.Sprintf("/api/v1/campaigns/%d/slots", id), fmt.Sprintf(`{"sampling_point_id": %d,
		"region_code": "%s", "label": "1–6幢", "starts_at": "2025-06-15T09:30:00+08:00", "ends_at": "2025-06-15T10:30:00+08:00"}`, pointID, villageA), nil)
	if status != 422 || !slices.Contains(problemFields(t, body), "starts_at:slot.overlap") {
		t.Errorf("overlapping slot: %d %s", status, body)
	}
	var slots listOf[Slot]
	if status, _ := apiCall(t, srv, "admin", "GET", fmt.Sprintf("/api/v1/campaigns/%d/slots?sampling_point_id=%d", id, pointID), "", &slots); status != 200 || len(slots.Items) != 1 {
		t.Errorf("slots: %d %+v", status, slots)
	}
	if status, _ := apiCall(t, srv, "admin", "DELETE", fmt.Sprintf("/api/v1/slots/%d", slot.ID), "", nil); status != http.StatusNoContent {
		t.Errorf("delete slot: %d", status)
	}
	if status, _ := apiCall(t, srv, "admin", "DELETE", fmt.Sprintf("/api/v1/slots/%d", slot.ID), "", nil); status != http.StatusNotFound {
		t.Errorf("delete slot again: %d", status)
	}

	var cov map[string]any
	if status, body := apiCall(t, srv, "township", "GET", fmt.Sprintf("/api/v1/campaigns/%d/coverage", id), "", &cov); status != 200 {
		t.Fatalf("coverage: %d %s", status, body)
	}
	if cov["region_code"] != townshipA || cov["targeted"] != float64(3) || cov["not_sampled"] != float64(3) || cov["sampled"] != float64(0) || cov["resulted"] != float64(0) {
		t.Errorf("township coverage %v", cov)
	}
	children := cov["children"].([]any)
	first := children[0].(map[string]any)
	for _, k := range []string{"region_code", "name", "targeted", "sampled", "resulted", "not_sampled"} {
		if _, ok := first[k]; !ok {
			t.Errorf("coverage child lacks %q: %v", k, first)
		}
	}
	if status, _ := apiCall(t, srv, "township", "GET", fmt.Sprintf("/api/v1/campaigns/%d/coverage?region_code=%s", id, district), "", nil); status != http.StatusNotFound {
		t.Errorf("township asks the district's coverage: %d", status)
	}
	var ns listOf[people.PersonView]
	if status, body := apiCall(t, srv, "admin", "GET", fmt.Sprintf("/api/v1/campaigns/%d/not-sampled?limit=2", id), "", &ns); status != 200 ||
		len(ns.Items) != 2 || ns.NextCursor == "" || !ns.Items[0].Masked {
		t.Errorf("not sampled: %d %s", status, body)
	}
	if status, body := apiCall(t, srv, "admin", "GET", fmt.Sprintf("/api/v1/campaigns/%d/plan", id), "", nil); status != 200 || !strings.Contains(body, `"points_needed"`) {
		t.Errorf("plan: %d %s", status, body)
	}
	var closed Campaign
	if status, _ := apiCall(t, srv, "admin", "POST", fmt.Sprintf("/api/v1/campaigns/%d/close", id), "", &closed); status != 200 || !closed.Closed() {
		t.Errorf("close: %d %+v", status, closed)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// postForm posts a form as user without following redirects.
func postForm(t *testing.T, srv *httptest.Server, user, path string, v url.Values) (int, string, http.Header) {
	t.Helper()
	return webtest.Do(t, srv, user, "POST", path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

func TestCampaignPages(t *testing.T) {
	t.Parallel()
	f, srv := campaignServer(t)
	seedResidents(f, villageA, 0, 3)
	get := func(user, path string, want int, contains ...string) string {
		t.Helper()
		status, body, _ := webtest.Do(t, srv, user, "GET", path, "", nil)
		if status != want {
			t.Fatalf("GET %s as %s: %d, want %d: %.500s", path, user, status, want, body)
		}
		for _, s := range contains {
			if !strings.Contains(body, s) {
				t.Errorf("GET %s lacks %q", path, s)
			}
		}
		return body
	}
	get("admin", "/screening/campaigns/new", 200, `name="region_codes"`, "北岙街道", `name="starts_at"`)
	status, body, _ := postForm(t, srv, "admin", "/screening/campaigns", url.Values{"name": {""}, "pathogen": {"sars_cov_2"}, "pool_size": {"10"},
		"region_codes": {townshipA}, "region_code": {villageA}, "starts_at": {"2025-06-15T08:00"}, "ends_at": {"2025-06-15T07:00"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "必填") || !strings.Contains(body, "已包含在") || !strings.Contains(body, "结束时间须晚于开始时间") {
		t.Errorf("bad form: %d %s", status, body)
	}
	status, _, hdr := postForm(t, srv, "admin", "/screening/campaigns", url.Values{"name": {"第2轮"}, "pathogen": {"sars_cov_2"}, "pool_size": {"20"},
		"region_codes": {townshipA, townshipB}, "starts_at": {"2025-06-15T08:00"}, "ends_at": {"2025-06-16T08:00"}})
	if status != http.StatusSeeOther {
		t.Fatalf("create form: %d", status)
	}
	var id int64
	if _, err := fmt.Sscanf(hdr.Get("Location"), "/screening/campaigns/%d", &id); err != nil {
		t.Fatalf("redirect to %q", hdr.Get("Location"))
	}
	c, err := f.svc.Campaign(f.bureauAdmin(), id)
	if err != nil || !c.StartsAt.Equal(time.Date(2025, 6, 15, 0, 0, 0, 0, time.UTC)) || c.PoolSize != 20 {
		t.Fatalf("created from the form: %+v %v", c, err)
	}
	if _, err := f.db.Exec("INSERT INTO turnaround (campaign_id, region_code, bucket, tubes) VALUES ($1, $2, 12, 4)", id, townshipA); err != nil {
		t.Fatal(err)
	}
	get("admin", "/screening/campaigns", 200, "第2轮")
	// A later page links back to the first, filters kept (the shared pager).
	get("admin", "/screening/campaigns?state=active&cursor="+web.EncodeCursor(id+1), 200, `rel="first" href="/screening/campaigns?state=active"`, "第2轮")
	get("sampler", "/screening/campaigns", 200, "第2轮")
	get("admin", fmt.Sprintf("/screening/campaigns/%d", id), 200, "北岙街道", "data-chart", "应检未检", "结束本轮")
	get("township", fmt.Sprintf("/screening/campaigns/%d", id), 200, "城中社区")
	get("township", fmt.Sprintf("/screening/campaigns/%d?region_code=%s", id, district), 404)
	get("sampler", fmt.Sprintf("/screening/campaigns/%d", id), 403)

	// Points.
	get("admin", fmt.Sprintf("/screening/campaigns/%d/points", id), 200, "新增采样点")
	status, body, _ = postForm(t, srv, "admin", fmt.Sprintf("/screening/campaigns/%d/points", id), url.Values{"name": {"城中社区采样点"},
		"region_code": {villageA}, "opens": {"7:00"}, "samplers": {"x"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "时:分") || !strings.Contains(body, "应为0到1000之间的整数") {
		t.Errorf("bad point form: %d %s", status, body)
	}
	status, _, _ = postForm(t, srv, "admin", fmt.Sprintf("/screening/campaigns/%d/points", id), url.Values{"name": {"城中社区采样点"},
		"region_code": {villageA}, "opens": {"08:00"}, "closes": {"18:00"}, "capacity_per_hour": {"60"}, "samplers": {"2"}})
	if status != http.StatusSeeOther {
		t.Fatalf("point form: %d", status)
	}
	points, _, err := f.svc.SamplingPoints(f.bureauAdmin(), PointQuery{CampaignID: id})
	if err != nil || len(points) != 1 {
		t.Fatalf("points %v %v", points, err)
	}
	pointID := points[0].ID
	setCounters(f, id, villageB, Counts{Targeted: 5000})
	get("admin", fmt.Sprintf("/screening/campaigns/%d/plan", id), 200, "城中社区采样点", "缺2个采样点", "缺14名采样人员")

	// Slots and the notice.
	get("admin", fmt.Sprintf("/screening/campaigns/%d/slots", id), 200, "新增时段")
	status, _, _ = postForm(t, srv, "admin", fmt.Sprintf("/screening/campaigns/%d/slots", id), url.Values{"sampling_point_id": {fmt.Sprint(pointID)},
		"region_code": {villageA}, "label": {"1–6幢"}, "starts_at": {"2025-06-15T09:00"}, "ends_at": {"2025-06-15T10:00"}})
	if status != http.StatusSeeOther {
		t.Fatalf("slot form: %d", status)
	}
	status, body, _ = postForm(t, srv, "admin", fmt.Sprintf("/screening/campaigns/%d/slots", id), url.Values{"sampling_point_id": {fmt.Sprint(pointID)},
		"region_code": {villageA}, "label": {"1–6幢"}, "starts_at": {"2025-06-15T09:30"}, "ends_at": {"2025-06-15T10:30"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "重叠") {
		t.Errorf("overlapping slot form: %d", status)
	}
	get("sampler", fmt.Sprintf("/screening/points/%d/notice", pointID), 404) // not sampler A's point
	get("township", fmt.Sprintf("/screening/points/%d/notice", pointID), 200, "城中社区", "1–6幢", "2025-06-15", "09:00 – 10:00", "data-print")
	slots, _, err := f.svc.Slots(f.bureauAdmin(), id, SlotQuery{})
	if err != nil || len(slots) != 1 {
		t.Fatalf("slots %v %v", slots, err)
	}
	status, _, _ = postForm(t, srv, "admin", fmt.Sprintf("/screening/slots/%d/delete", slots[0].ID), url.Values{})
	if status != http.StatusSeeOther {
		t.Errorf("delete slot form: %d", status)
	}

	// Coverage, the not-sampled list and its export, masked.
	get("township", fmt.Sprintf("/screening/campaigns/%d/coverage", id), 200, "张***", "not-sampled/export?format=csv&amp;region_code="+townshipA+`"`)
	status, body, hdr = webtest.Do(t, srv, "admin", "GET", fmt.Sprintf("/screening/campaigns/%d/not-sampled/export?format=csv", id), "", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || strings.Count(body, "张***") != 3 || strings.Contains(body, residentID(0)) {
		t.Errorf("export: %d %s %s", status, hdr.Get("Content-Type"), body)
	}
	status, _, hdr = webtest.Do(t, srv, "admin", "GET", fmt.Sprintf("/screening/campaigns/%d/not-sampled/export?format=xlsx", id), "", nil)
	if status != 200 || !strings.Contains(hdr.Get("Content-Type"), "spreadsheetml") {
		t.Errorf("xlsx export: %d %s", status, hdr.Get("Content-Type"))
	}
	// English.
	get("admin", fmt.Sprintf("/screening/campaigns/%d/coverage?lang=en", id), 200, "Not yet sampled")

	status, _, _ = postForm(t, srv, "admin", fmt.Sprintf("/screening/campaigns/%d/close", id), url.Values{})
	if status != http.StatusSeeOther {
		t.Errorf("close form: %d", status)
	}
	get("admin", fmt.Sprintf("/screening/campaigns/%d", id), 200, "已结束")
}

// TestCampaignTemplateKeys checks that every message key the campaign pages
// name literally is translated.
func TestCampaignTemplateKeys(t *testing.T) {
	t.Parallel()
	cat := locale.NewCatalog()
	if err := cat.LoadAll(web.Messages, people.Messages, Messages); err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`\.T "([a-z0-9_.]+)"`)
	var files []string
	for _, pattern := range []string{"screening_campaign_*", "screening_point_*", "screening_plan*", "screening_coverage*"} {
		m, err := fs.Glob(os.DirFS("templates"), pattern+".html")
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 8 {
		t.Fatalf("found only %v", files)
	}
	for _, name := range files {
		b, err := os.ReadFile("templates/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			if !cat.Has(m[1]) {
				t.Errorf("%s: no translation for %q", name, m[1])
			}
		}
	}
	for _, k := range []string{"screening.turnaround.tubes", "screening.campaigns.nav", "notice.screening.campaign_created",
		"notice.screening.campaign_closed", "notice.screening.point_created", "notice.screening.slot_created", "notice.screening.slot_deleted"} {
		if !cat.Has(k) {
			t.Errorf("no translation for %q", k)
		}
	}
	for _, h := range turnaroundHours {
		if k := fmt.Sprintf("screening.turnaround.%d", h); !cat.Has(k) {
			t.Errorf("no translation for %q", k)
		}
	}
	for _, p := range Pathogens {
		if k := "screening.pathogen." + string(p); !cat.Has(k) {
			t.Errorf("no translation for %q", k)
		}
	}
	if missing := cat.Missing(); len(missing) > 0 {
		t.Errorf("untranslated: %v", missing)
	}
}

// TestSpecimenBatchSaysWhenToRetryShedItems: items the group commit could
// not take (here: the service is shutting down) answer 503 each, and the
// batch's 200 answer carries Retry-After, as a 503 answer would.
func TestSpecimenBatchSaysWhenToRetryShedItems(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.campaign(10)
	pt := f.point(c, f.pointInstA, "北岙采样点", townshipA)
	f.clock.Advance(time.Hour)
	shell := webtest.Shell(t, time.FixedZone("CST", 8*3600), []locale.Source{people.Messages, Messages}, Templates)
	shell.Now = f.clock.Now
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/specimens/batch", shell.API(NewHandlers(shell, f.svc).APISpecimenBatch))
	p, err := scope.FromContext(f.samplerA())
	if err != nil {
		t.Fatal(err)
	}
	srv := webtest.Serve(t, mux, map[string]*scope.Principal{"sampler": p})
	body := func(seq int) string {
		b, err := json.Marshal(specimen(c, pt, "T7001", seq, villageA))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	batch := `{"specimens": [` + body(1) + `, ` + body(2) + `]}`

	status, text, h := webtest.Do(t, srv, "sampler", "POST", "/api/v1/specimens/batch", "application/json", strings.NewReader(batch))
	if status != http.StatusOK || strings.Count(text, `"status":201`) != 2 || h.Get("Retry-After") != "" {
		t.Fatalf("batch: %d %s, Retry-After %q", status, text, h.Get("Retry-After"))
	}
	f.svc.Close()
	batch = `{"specimens": [` + body(3) + `]}`
	status, text, h = webtest.Do(t, srv, "sampler", "POST", "/api/v1/specimens/batch", "application/json", strings.NewReader(batch))
	if status != http.StatusOK || !strings.Contains(text, `"status":503`) || h.Get("Retry-After") != "1" {
		t.Fatalf("shed batch: %d %s, Retry-After %q", status, text, h.Get("Retry-After"))
	}
}
