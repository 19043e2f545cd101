package regions

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/openapi"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

// testServer serves the module's routes on a real HTTP server; the principal
// of each request comes from the X-Test-User header's entry in users.
func testServer(t *testing.T, s *Institutions, users map[string]*scope.Principal) *httptest.Server {
	t.Helper()
	shell := webtest.Shell(t, time.UTC, []locale.Source{Messages}, Templates)
	h := NewHandlers(shell, s, func(ctx context.Context, id int64) (int, error) { return 7, nil })
	mux := http.NewServeMux()
	mux.Handle("GET /institutions", shell.Page(h.InstitutionList))
	mux.Handle("GET /institutions/new", shell.Page(h.InstitutionNew))
	mux.Handle("POST /institutions", shell.Page(h.InstitutionCreate))
	mux.Handle("GET /institutions/{id}", shell.Page(h.InstitutionDetail))
	mux.Handle("GET /institutions/{id}/edit", shell.Page(h.InstitutionEdit))
	mux.Handle("POST /institutions/{id}", shell.Page(h.InstitutionUpdate))
	mux.Handle("GET /regions", shell.Page(h.RegionBrowse))
	mux.Handle("GET /regions/options", shell.Page(h.RegionOptions))
	mux.Handle("GET /api/v1/institutions", shell.API(h.APIInstitutionList))
	mux.Handle("POST /api/v1/institutions", shell.API(h.APIInstitutionCreate))
	mux.Handle("GET /api/v1/institutions/{id}", shell.API(h.APIInstitutionGet))
	mux.Handle("GET /api/v1/regions/{code}", shell.API(h.APIRegion))
	return webtest.Serve(t, mux, users)
}

// do sends a request as user: a JSON body to the API, a form body to pages.
func do(t *testing.T, srv *httptest.Server, user, method, path, body string) (int, string) {
	t.Helper()
	contentType := ""
	if method == http.MethodPost && strings.HasPrefix(path, "/api/") {
		contentType = "application/json"
	} else if method == http.MethodPost {
		contentType = "application/x-www-form-urlencoded"
	}
	code, resp, _ := webtest.Do(t, srv, user, method, path, contentType, strings.NewReader(body))
	return code, resp
}

func TestRegionsAPIScope(t *testing.T) {
	s := newInstitutions(t)
	users := map[string]*scope.Principal{
		"admin":    {UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
		"township": {UserID: 2, Username: "t", Roles: []scope.Role{scope.Sampler}, RegionCode: "330305001"},
	}
	srv := testServer(t, s, users)

	type view struct {
		Code, Name, Level, Path string
		Children                []struct{ Code, Name, Level string }
	}
	get := func(user, code string) (int, view) {
		status, body := do(t, srv, user, "GET", "/api/v1/regions/"+code, "")
		var v view
		if status == 200 {
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
		}
		return status, v
	}

	status, v := get("admin", "330305")
	if status != 200 || v.Name != "洞头区" || v.Level != "district" || v.Path != "浙江省 温州市 洞头区" || len(v.Children) != 8 {
		t.Fatalf("own district: %d %+v", status, v)
	}
	// Above the scope: only the branch leading down to it.
	status, v = get("admin", "3303")
	if status != 200 || len(v.Children) != 1 || v.Children[0].Code != "330305" {
		t.Fatalf("own city: %d %+v", status, v)
	}
	status, v = get("township", "330305")
	if status != 200 || len(v.Children) != 1 || v.Children[0].Code != "330305001" {
		t.Fatalf("township user's district: %d %+v", status, v)
	}
	status, v = get("township", "330305001")
	if status != 200 || len(v.Children) == 0 || v.Children[0].Level != "village" {
		t.Fatalf("township user's township: %d %+v", status, v)
	}
	for _, tc := range []struct{ user, code string }{
		{"admin", "330304"},       // a neighbouring district
		{"township", "330305002"}, // a neighbouring township
		{"admin", "999999"},       // no such code
		{"admin", "abc"},
	} {
		if status, _ := get(tc.user, tc.code); status != 404 {
			t.Errorf("%s GET %s = %d, want 404", tc.user, tc.code, status)
		}
	}
	if status, _ := get("", "330305"); status != 401 {
		t.Errorf("anonymous = %d, want 401", status)
	}
}

func TestInstitutionAPI(t *testing.T) {
	s := newInstitutions(t)
	users := map[string]*scope.Principal{
		"admin": {UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
		"other": {UserID: 2, Username: "other", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330304"},
	}
	srv := testServer(t, s, users)

	status, body := do(t, srv, "admin", "POST", "/api/v1/institutions", `{"name":"洞头区卫生健康局","type":"bureau","region_code":"330305"}`)
	if status != 201 {
		t.Fatalf("create = %d %s", status, body)
	}
	var created Institution
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.ID == 0 {
		t.Fatalf("%s: %v", body, err)
	}
	id := "/api/v1/institutions/" + jsonInt(created.ID)

	tests := []struct {
		name, user, method, path, body string
		status                         int
		want                           string
	}{
		{"get own", "admin", "GET", id, "", 200, `"name":"洞头区卫生健康局"`},
		{"get out of scope", "other", "GET", id, "", 404, ""},
		{"list out of scope", "other", "GET", "/api/v1/institutions", "", 200, `"items":[]`},
		{"list own", "admin", "GET", "/api/v1/institutions?type=bureau", "", 200, `"next_cursor":""`},
		{"capture outside scope", "other", "POST", "/api/v1/institutions", `{"name":"x","type":"cdc","region_code":"330305"}`, 422, `"field":"region_code"`},
		{"duplicate name", "admin", "POST", "/api/v1/institutions", `{"name":"洞头区卫生健康局","type":"cdc","region_code":"330305"}`, 422, `"field":"name"`},
		{"unknown field", "admin", "POST", "/api/v1/institutions", `{"name":"x","kind":"cdc"}`, 400, `"field":"kind"`},
		{"bad filter", "admin", "GET", "/api/v1/institutions?type=clinic", "", 422, `"field":"type"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, srv, tt.user, tt.method, tt.path, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("= %d %s; want %d containing %s", status, body, tt.status, tt.want)
			}
		})
	}
}

func TestInstitutionPages(t *testing.T) {
	s := newInstitutions(t)
	users := map[string]*scope.Principal{
		"admin": {UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
		"other": {UserID: 2, Username: "other", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330304"},
		"beiao": {UserID: 3, Username: "beiao", Roles: []scope.Role{scope.Sampler}, RegionCode: "330305001"},
	}
	srv := testServer(t, s, users)
	status, body := do(t, srv, "admin", "POST", "/institutions", "name=%E6%B4%9E%E5%A4%B4%E5%8C%BA%E5%8D%AB%E5%81%A5%E5%B1%80&type=bureau&region_code=330305&phone=0577-1234")
	if status != 303 {
		t.Fatalf("create form = %d %s", status, body)
	}
	created, _, err := s.List(admin("330305"), InstitutionFilter{})
	if err != nil || len(created) != 1 {
		t.Fatalf("after create: %v %v", created, err)
	}
	path := "/institutions/" + jsonInt(created[0].ID)

	tests := []struct {
		name, user, method, path, body string
		status                         int
		want                           string
	}{
		{"list", "admin", "GET", "/institutions", "", 200, "洞头区卫健局"},
		{"list csv", "admin", "GET", "/institutions?format=csv", "", 200, "洞头区卫健局"},
		{"detail", "admin", "GET", path, "", 200, "0577-1234"},
		{"detail shows users", "admin", "GET", path, "", 200, ">7<"},
		{"detail out of scope", "other", "GET", path, "", 404, ""},
		{"edit", "admin", "GET", path + "/edit", "", 200, `value="洞头区卫健局"`},
		{"new", "admin", "GET", "/institutions/new", "", 200, `value="330305"`},
		{"form errors", "admin", "POST", "/institutions", "name=&type=bureau&region_code=330304", 422, "field-error"},
		{"browse", "admin", "GET", "/regions", "", 200, "北岙街道"},
		{"browse village level", "admin", "GET", "/regions?code=330305001", "", 200, "社区"},
		{"browse out of scope", "admin", "GET", "/regions?code=330304", "", 404, ""},
		// The region picker: the form offers the townships under the admin's
		// district, a rejected form keeps the chosen one, and the options
		// endpoint lists only divisions within the user's region.
		{"new has the picker", "admin", "GET", "/institutions/new", "", 200, `<option value="330305001">北岙街道</option>`},
		{"picker keeps the choice", "admin", "POST", "/institutions", "name=&type=bureau&region_code=330305001", 422, `<option value="330305001" selected>北岙街道</option>`},
		{"options", "admin", "GET", "/regions/options?parent=330305", "", 200, `<option value="330305001">北岙街道</option>`},
		{"options of a township", "beiao", "GET", "/regions/options?parent=330305001", "", 200, "社区"},
		{"options of another district", "admin", "GET", "/regions/options?parent=330304", "", 404, ""},
		{"options above the user's region", "beiao", "GET", "/regions/options?parent=330305", "", 404, ""},
		{"options of an unknown code", "admin", "GET", "/regions/options?parent=330305999", "", 404, ""},
		{"options without a parent", "admin", "GET", "/regions/options", "", 404, ""},
		{"list has the picker", "admin", "GET", "/institutions", "", 200, `<option value="330305001">北岙街道</option>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, srv, tt.user, tt.method, tt.path, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Fatalf("= %d; want %d containing %q; body:\n%s", status, tt.status, tt.want, body)
			}
		})
	}

	// The list's region filter is the picker's region_code field, kept in
	// the picker, the pager and the export links; the API keeps ?region=.
	if status, body := do(t, srv, "admin", "POST", "/institutions", "name=%E5%8C%97%E5%B2%99%E5%8D%AB%E7%94%9F%E9%99%A2&type=hospital&region_code=330305001"); status != 303 {
		t.Fatalf("create in 330305001 = %d %s", status, body)
	}
	filtered := []struct{ path, want, not string }{
		{"/institutions?region_code=330305001", `<option value="330305001" selected>北岙街道</option>`, "洞头区卫健局"},
		{"/institutions?region_code=330305001", "format=csv", ""},
		{"/institutions?region_code=330305001&format=csv", "北岙卫生院", "洞头区卫健局"},
		{"/api/v1/institutions?region=330305001", "北岙卫生院", "洞头区卫健局"},
	}
	for _, f := range filtered {
		status, body := do(t, srv, "admin", "GET", f.path, "")
		if status != 200 || !strings.Contains(body, "北岙卫生院") || !strings.Contains(body, f.want) || (f.not != "" && strings.Contains(body, f.not)) {
			t.Errorf("GET %s = %d; want 北岙卫生院 and %q, not %q; body:\n%s", f.path, status, f.want, f.not, body)
		}
	}
	if _, body := do(t, srv, "admin", "GET", "/institutions?region_code=330305001", ""); !strings.Contains(body, "region_code=330305001&amp;q=&amp;active=&amp;format=csv") {
		t.Errorf("the export link does not keep the region filter")
	}
}

// TestInstitutionEditKeepsParent: the edit form always carries the current
// parent, so saving other changes keeps it, even when it lies above the
// admin's scope (a district unit under the city bureau) or is inactive; a
// parent the admin cannot see is still refused when chosen anew.
func TestInstitutionEditKeepsParent(t *testing.T) {
	s := newInstitutions(t)
	city, district := admin("3303"), admin("330305")
	cityBureau := mustCreate(t, s, city, InstitutionInput{Name: "温州市卫生健康委员会", Type: Bureau, RegionCode: "3303"})
	cityCDC := mustCreate(t, s, city, InstitutionInput{Name: "温州市疾病预防控制中心", Type: CDC, RegionCode: "3303"})
	cdc := mustCreate(t, s, city, InstitutionInput{Name: "洞头区疾控中心", Type: CDC, RegionCode: "330305", ParentID: cityBureau.ID})
	bureau := mustCreate(t, s, district, InstitutionInput{Name: "洞头区卫生健康局", Type: Bureau, RegionCode: "330305"})
	hospital := mustCreate(t, s, district, InstitutionInput{Name: "洞头区人民医院", Type: Hospital, RegionCode: "330305", ParentID: bureau.ID})
	if _, err := s.SetActive(district, bureau.ID, false); err != nil {
		t.Fatal(err)
	}
	srv := testServer(t, s, map[string]*scope.Principal{
		"admin": {UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: "330305"},
	})
	path := func(in Institution) string { return "/institutions/" + jsonInt(in.ID) }
	form := func(name string, in Institution, parent int64) string {
		return url.Values{"name": {name}, "type": {string(in.Type)}, "region_code": {in.RegionCode}, "parent_id": {jsonInt(parent)}}.Encode()
	}

	forms := []struct {
		name, path, want, not string
	}{
		{"parent above the scope", path(cdc) + "/edit", `<option value="` + jsonInt(cityBureau.ID) + `" selected>`, cityBureau.Name},
		{"inactive parent", path(hospital) + "/edit", `<option value="` + jsonInt(bureau.ID) + `" selected>洞头区卫生健康局 (330305)</option>`, ""},
	}
	for _, f := range forms {
		status, body := do(t, srv, "admin", "GET", f.path, "")
		if status != 200 || !strings.Contains(body, f.want) || (f.not != "" && strings.Contains(body, f.not)) {
			t.Errorf("%s: GET %s = %d; want %q, not %q; body:\n%s", f.name, f.path, status, f.want, f.not, body)
		}
	}

	saves := []struct {
		name string
		in   Institution
		to   string
		keep int64
	}{
		{"parent above the scope", cdc, "洞头区疾病预防控制中心", cityBureau.ID},
		{"inactive parent", hospital, "温州市洞头区人民医院", bureau.ID},
	}
	for _, sv := range saves {
		if status, body := do(t, srv, "admin", "POST", path(sv.in), form(sv.to, sv.in, sv.keep)); status != 303 {
			t.Fatalf("%s: save = %d %s", sv.name, status, body)
		}
		got, err := s.Get(district, sv.in.ID)
		if err != nil || got.Name != sv.to || got.ParentID != sv.keep {
			t.Errorf("%s: after save %+v, %v; want name %s, parent %d", sv.name, got, err, sv.to, sv.keep)
		}
	}

	// Choosing anew a parent above the scope is refused, and the stored
	// parent stays.
	status, body := do(t, srv, "admin", "POST", path(cdc), form("洞头区疾控", cdc, cityCDC.ID))
	if status != 422 || !regexp.MustCompile(`field invalid">\s*<label for="parent_id">`).MatchString(body) || strings.Contains(body, cityCDC.Name) {
		t.Fatalf("out-of-scope parent = %d; want 422 on parent_id, not naming it; body:\n%s", status, body)
	}
	if got, err := s.Get(district, cdc.ID); err != nil || got.ParentID != cityBureau.ID {
		t.Errorf("after refused change: %+v, %v", got, err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestOpenAPIFragment(t *testing.T) {
	d, err := openapi.Build(openapi.Platform, OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Operations()) < 4 {
		t.Fatalf("operations = %v", d.Operations())
	}
}
