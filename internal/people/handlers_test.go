package people

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web/webtest"
)

// site is the people pages and API on a test server. Requests name their
// principal in the X-Test-User header; the real server's session middleware
// does the same job.
type site struct {
	fixture
	srv *httptest.Server
}

var testUsers = map[string]*scope.Principal{}

func init() {
	for _, p := range []*scope.Principal{districtAdmin, staffA, doctorB, outsider,
		{UserID: 10, Username: "sampler", Roles: []scope.Role{scope.Sampler}, RegionCode: district},
		{UserID: 11, Username: "lab", Roles: []scope.Role{scope.Lab}, RegionCode: district},
		{UserID: 12, Username: "inspector", Roles: []scope.Role{scope.Inspector}, RegionCode: district},
		{UserID: 13, Username: "staff", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: district},
		{UserID: 14, Username: "doctor_a", Roles: []scope.Role{scope.FamilyDoctor}, RegionCode: townshipA},
		{UserID: 15, Username: "admin_b", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: townshipB},
		{UserID: 16, Username: "city_epi", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "3303"},
	} {
		testUsers[p.Username] = p
	}
}

func newSite(t *testing.T) site {
	t.Helper()
	f := newFixture(t)
	shell := webtest.Shell(t, time.FixedZone("CST", 8*3600), []locale.Source{regions.Messages, audit.Messages, Messages}, Templates)
	h := NewHandlers(shell, f.reg)
	mux := http.NewServeMux()
	// The same lines as internal/server/routes.go.
	mux.Handle("GET /people", shell.Page(h.List))
	mux.Handle("GET /people/new", shell.Page(h.New))
	mux.Handle("POST /people/new", shell.Page(h.Create))
	mux.Handle("GET /people/import", shell.Page(h.ImportForm))
	mux.Handle("POST /people/import", shell.Page(h.Import))
	mux.Handle("GET /people/export", shell.Page(h.Export))
	mux.Handle("GET /people/{id}", shell.Page(h.Detail))
	mux.Handle("POST /people/{id}/unmask", shell.Page(h.Unmask))
	mux.Handle("GET /api/v1/people", shell.API(h.APISearch))
	mux.Handle("POST /api/v1/people", shell.API(h.APIRegister))
	mux.Handle("POST /api/v1/people/import", shell.API(h.APIImport))
	mux.Handle("GET /api/v1/people/export", shell.API(h.Export))
	mux.Handle("GET /api/v1/people/{id}", shell.API(h.APIGet))
	mux.Handle("POST /api/v1/people/{id}/unmask", shell.API(h.APIUnmask))
	srv := webtest.Serve(t, mux, testUsers)
	return site{fixture: f, srv: srv}
}

// do sends a request as user and returns the status and body.
func (s site) do(t *testing.T, user, method, path, contentType string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	return webtest.Do(t, s.srv, user, method, path, contentType, body)
}

func (s site) postJSON(t *testing.T, user, path string, v any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(v)
	status, body, _ := s.do(t, user, "POST", path, "application/json", bytes.NewReader(b))
	return status, body
}

func (s site) postForm(t *testing.T, user, path string, form url.Values) (int, string, http.Header) {
	t.Helper()
	return s.do(t, user, "POST", path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
}

type problem struct {
	Code   string `json:"code"`
	Errors []struct {
		Field string `json:"field"`
		Code  string `json:"code"`
	} `json:"errors"`
}

func problemFields(t *testing.T, body string) []string {
	t.Helper()
	var p problem
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("not a problem document: %s", body)
	}
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

var zhangJSON = map[string]any{
	"id_number": residentID("330305", "19491231", 1), "name": "张三丰", "phone": testPhone,
	"region_code": villageA, "address": "浙江省温州市洞头区北岙街道城中路1号", "tags": []string{"elderly"},
}

// secrets are the clear values of zhangJSON that no masked output may hold.
var secrets = []string{residentID("330305", "19491231", 1), "张三丰", testPhone, "城中路1号", "1949-12-31"}

func noSecrets(t *testing.T, where, body string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("%s shows %q in the clear", where, s)
		}
	}
}

func TestAPIRegisterAndRead(t *testing.T) {
	s := newSite(t)
	status, body := s.postJSON(t, "admin", "/api/v1/people", zhangJSON)
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	noSecrets(t, "register response", body)
	var v PersonView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID == 0 || v.Name != "张**" || v.IDNumber != "33**************"+residentID("330305", "19491231", 1)[16:] ||
		v.Phone != "138****8000" || v.Age == nil || *v.Age != 75 || v.Sex != SexMale || !v.Masked {
		t.Errorf("register response = %+v", v)
	}
	id := strconv.FormatInt(v.ID, 10)

	// The same person again: 200, same id, one row.
	again := map[string]any{"id_type": "resident_id", "id_number": strings.ToLower(zhangJSON["id_number"].(string)),
		"name": "张三丰", "phone": testPhone2, "region_code": villageA}
	status, body = s.postJSON(t, "admin", "/api/v1/people", again)
	if status != http.StatusOK || !strings.Contains(body, `"id":`+id+`,`) {
		t.Errorf("register again: %d %s", status, body)
	}
	if n := s.count(t, "persons"); n != 1 {
		t.Errorf("%d persons, want 1", n)
	}

	status, body, _ = s.do(t, "admin", "GET", "/api/v1/people/"+id, "", nil)
	if status != http.StatusOK || !strings.Contains(body, `"139****9000"`) {
		t.Errorf("get: %d %s", status, body)
	}
	noSecrets(t, "get response", body)

	status, body, _ = s.do(t, "admin", "GET", "/api/v1/people?q=%E5%BC%A0&tag=elderly", "", nil)
	var list struct {
		Items      []PersonView `json:"items"`
		NextCursor *string      `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || status != http.StatusOK || len(list.Items) != 1 || list.NextCursor == nil {
		t.Errorf("search: %d %s", status, body)
	}
	noSecrets(t, "search response", body)

	for _, path := range []string{"/api/v1/people/abc", "/api/v1/people/-1", "/api/v1/people/0", "/api/v1/people/99999999999999999999", "/api/v1/people/999"} {
		if status, body, _ := s.do(t, "admin", "GET", path, "", nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, status, body)
		}
	}
	if status, _, _ := s.do(t, "", "GET", "/api/v1/people/"+id, "", nil); status != http.StatusUnauthorized {
		t.Errorf("anonymous get: %d, want 401", status)
	}
	for _, user := range []string{"sampler", "lab", "inspector"} {
		if status, _, _ := s.do(t, user, "GET", "/api/v1/people/"+id, "", nil); status != http.StatusForbidden {
			t.Errorf("%s get: %d, want 403", user, status)
		}
	}
}

func TestAPIRegisterInvalid(t *testing.T) {
	s := newSite(t)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range zhangJSON {
			m[kk] = vv
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name   string
		user   string
		body   map[string]any
		fields []string
	}{
		{"bad ID number", "admin", with("id_number", "110105194912310021"), []string{"id_number"}},
		{"bad phone", "admin", with("phone", "12800138000"), []string{"phone"}},
		{"unknown region", "admin", with("region_code", "330399001001"), []string{"region_code"}},
		{"region of another township", "staff_a", with("region_code", villageB), []string{"region_code"}},
		{"unknown tag", "admin", with("tags", []string{"vip"}), []string{"tags"}},
	}
	for _, tt := range tests {
		status, body := s.postJSON(t, tt.user, "/api/v1/people", tt.body)
		if status != http.StatusUnprocessableEntity || strings.Join(problemFields(t, body), ",") != strings.Join(tt.fields, ",") {
			t.Errorf("%s: %d %s, want 422 naming %v", tt.name, status, body, tt.fields)
		}
	}
	if status, body := s.postJSON(t, "admin", "/api/v1/people", with("nickname", "x")); status != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s, want 400", status, body)
	}
	if n := s.count(t, "persons"); n != 0 {
		t.Errorf("%d persons written by rejected requests", n)
	}
}

func TestAPIScope(t *testing.T) {
	s := newSite(t)
	status, body := s.postJSON(t, "staff_a", "/api/v1/people", zhangJSON)
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	var v PersonView
	json.Unmarshal([]byte(body), &v)
	id := strconv.FormatInt(v.ID, 10)
	for _, user := range []string{"doctor_b", "outsider"} {
		if status, _, _ := s.do(t, user, "GET", "/api/v1/people/"+id, "", nil); status != http.StatusNotFound {
			t.Errorf("%s get: %d, want 404", user, status)
		}
		if status, _, _ := s.do(t, user, "GET", "/people/"+id, "", nil); status != http.StatusNotFound {
			t.Errorf("%s detail page: %d, want 404", user, status)
		}
		status, body, _ := s.do(t, user, "GET", "/api/v1/people?q="+url.QueryEscape(zhangJSON["id_number"].(string)), "", nil)
		if status != http.StatusOK || !strings.Contains(body, `"items":[]`) {
			t.Errorf("%s search: %d %s, want no items", user, status, body)
		}
		status, body, _ = s.do(t, user, "GET", "/api/v1/people/export?format=csv", "", nil)
		if rows := readCSV(t, body); status != http.StatusOK || len(rows) != 1 {
			t.Errorf("%s export: %d, %d rows, want the header only", user, status, len(rows))
		}
	}
	if status, _ := s.postJSON(t, "doctor_b", "/api/v1/people/"+id+"/unmask", map[string]string{"reason": "家庭医生随访"}); status != http.StatusNotFound {
		t.Errorf("doctor_b unmask: %d, want 404", status)
	}
}

func TestAPIUnmask(t *testing.T) {
	s := newSite(t)
	_, body := s.postJSON(t, "admin", "/api/v1/people", zhangJSON)
	var v PersonView
	json.Unmarshal([]byte(body), &v)
	path := "/api/v1/people/" + strconv.FormatInt(v.ID, 10) + "/unmask"
	if status, _ := s.postJSON(t, "staff", path, map[string]string{"reason": "需要电话联系"}); status != http.StatusForbidden {
		t.Errorf("institution_staff unmask: %d, want 403", status)
	}
	if status, body := s.postJSON(t, "admin", path, map[string]string{"reason": "看"}); status != http.StatusUnprocessableEntity || problemFields(t, body)[0] != "reason" {
		t.Errorf("short reason: %d %s", status, body)
	}
	if status, body := s.postJSON(t, "admin", path, map[string]string{}); status != http.StatusUnprocessableEntity {
		t.Errorf("no reason: %d %s", status, body)
	}
	status, body := s.postJSON(t, "admin", path, map[string]string{"reason": "核对阳性者联系方式"})
	if status != http.StatusOK {
		t.Fatalf("unmask: %d %s", status, body)
	}
	for _, s := range secrets {
		if !strings.Contains(body, s) {
			t.Errorf("unmask response lacks %q: %s", s, body)
		}
	}
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'person.unmask' AND outcome = 'ok' AND detail LIKE '%核对阳性者联系方式%'").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d unmask audit entries with the reason, %v; want 1", n, err)
	}
}

func readCSV(t *testing.T, body string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "\uFEFF"))).ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v\n%s", err, body)
	}
	return rows
}

func TestExport(t *testing.T) {
	s := newSite(t)
	s.postJSON(t, "admin", "/api/v1/people", zhangJSON)
	other := map[string]any{"id_type": "passport", "id_number": "E12345678", "name": "李四", "no_phone": true, "region_code": villageB}
	if status, body := s.postJSON(t, "admin", "/api/v1/people", other); status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	status, body, hdr := s.do(t, "admin", "GET", "/people/export?format=csv&region_code="+townshipA+"&lang=en", "", nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("export: %d %s", status, hdr.Get("Content-Type"))
	}
	noSecrets(t, "CSV export", body)
	rows := readCSV(t, body)
	if len(rows) != 2 {
		t.Fatalf("export rows = %q, want header and 1 row", rows)
	}
	row := map[string]string{}
	for i, h := range rows[0] {
		row[h] = rows[1][i]
	}
	if row["Name"] != "张**" || row["Mobile phone"] != "138****8000" || row["ID number"] != MaskIDNumber(zhangJSON["id_number"].(string)) || row["Age"] != "75" {
		t.Errorf("export row = %v", row)
	}

	status, body, _ = s.do(t, "admin", "GET", "/api/v1/people/export?format=xlsx", "", nil)
	if status != http.StatusOK {
		t.Fatalf("xlsx export: %d", status)
	}
	wb, err := excelize.OpenReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer wb.Close()
	xrows, err := wb.GetRows(wb.GetSheetList()[0])
	if err != nil || len(xrows) != 3 {
		t.Fatalf("xlsx rows = %v, %v", xrows, err)
	}
	noSecrets(t, "xlsx export", strings.Join(append(xrows[1], xrows[2]...), " "))

	var n int
	s.db.QueryRow("SELECT COUNT(*) FROM audit_log WHERE action = 'person.export'").Scan(&n)
	if n != 2 {
		t.Errorf("%d export audit entries, want 2", n)
	}
	if status, _, _ := s.do(t, "admin", "GET", "/api/v1/people/export?format=pdf", "", nil); status != http.StatusUnprocessableEntity {
		t.Errorf("export format pdf: %d, want 422", status)
	}
}

func TestPages(t *testing.T) {
	s := newSite(t)
	status, body, _ := s.do(t, "admin", "GET", "/people/new", "", nil)
	if status != http.StatusOK || !strings.Contains(body, `name="id_number"`) {
		t.Fatalf("new form: %d", status)
	}

	// A bad form shows each error next to its field, and writes nothing.
	form := url.Values{"id_type": {"resident_id"}, "id_number": {"110105194912310021"}, "name": {"张三丰"}, "phone": {"123"}, "region_code": {villageA}}
	status, body, _ = s.postForm(t, "admin", "/people/new", form)
	if status != http.StatusUnprocessableEntity || strings.Count(body, `class="field-error"`) != 2 || !strings.Contains(body, "身份证号校验位错误") {
		t.Errorf("bad form: %d\n%s", status, body)
	}
	if n := s.count(t, "persons"); n != 0 {
		t.Errorf("%d persons after a bad form", n)
	}

	form.Set("id_number", zhangJSON["id_number"].(string))
	form.Set("phone", testPhone)
	form.Set("address", "浙江省温州市洞头区北岙街道城中路1号")
	form["tags"] = []string{"elderly", "bedridden"}
	status, _, hdr := s.postForm(t, "admin", "/people/new", form)
	loc := hdr.Get("Location")
	if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/people/") || !strings.HasSuffix(loc, "?notice=people.created") {
		t.Fatalf("good form: %d %s", status, loc)
	}
	detail := strings.TrimSuffix(loc, "?notice=people.created")
	status, _, hdr = s.postForm(t, "admin", "/people/new", form)
	if status != http.StatusSeeOther || hdr.Get("Location") != detail+"?notice=people.updated" {
		t.Errorf("same person again: %d %s", status, hdr.Get("Location"))
	}

	status, body, _ = s.do(t, "admin", "GET", loc, "", nil)
	if status != http.StatusOK || !strings.Contains(body, "张**") || !strings.Contains(body, `action="`+detail+`/unmask"`) || !strings.Contains(body, "已登记") {
		t.Errorf("detail: %d\n%s", status, body)
	}
	noSecrets(t, "detail page", body)

	status, body, _ = s.do(t, "admin", "GET", "/people?tag=elderly", "", nil)
	if status != http.StatusOK || !strings.Contains(body, "张**") || !strings.Contains(body, "北岙街道") {
		t.Errorf("list: %d\n%s", status, body)
	}
	noSecrets(t, "list page", body)

	// Unmask: a short reason is shown next to the field; a good one shows
	// the values, on this response only.
	status, body, _ = s.postForm(t, "admin", detail+"/unmask", url.Values{"reason": {"看"}})
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, `class="field-error"`) {
		t.Errorf("short reason: %d", status)
	}
	noSecrets(t, "refused unmask page", body)
	status, body, hdr = s.postForm(t, "admin", detail+"/unmask", url.Values{"reason": {"核对阳性者联系方式"}})
	if status != http.StatusOK || !strings.Contains(body, "张三丰") || !strings.Contains(body, testPhone) || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("unmask page: %d %q", status, hdr.Get("Cache-Control"))
	}
	status, body, _ = s.do(t, "admin", "GET", detail, "", nil)
	noSecrets(t, "detail after unmask", body)

	// A user without the right sees no unmask form, and is refused.
	if _, body, _ := s.do(t, "staff", "GET", detail, "", nil); strings.Contains(body, "/unmask") {
		t.Error("institution_staff sees the unmask form")
	}
	if status, _, _ := s.postForm(t, "staff", detail+"/unmask", url.Values{"reason": {"核对阳性者联系方式"}}); status != http.StatusForbidden {
		t.Errorf("institution_staff unmask page: %d, want 403", status)
	}

	for _, path := range []string{"/people/abc", "/people/-1", "/people/99999999999999999999", "/people/12345"} {
		if status, _, _ := s.do(t, "admin", "GET", path, "", nil); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}
	for _, user := range []string{"sampler", "lab", "inspector"} {
		for _, path := range []string{"/people", "/people/new", "/people/import", detail} {
			if status, _, _ := s.do(t, user, "GET", path, "", nil); status != http.StatusForbidden {
				t.Errorf("%s GET %s: %d, want 403", user, path, status)
			}
		}
	}
	if status, _, hdr := s.do(t, "", "GET", "/people", "", nil); status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/login") {
		t.Errorf("anonymous list: %d %s, want a redirect to /login", status, hdr.Get("Location"))
	}
	if status, body, _ := s.do(t, "admin", "GET", "/people?q="+url.QueryEscape("' OR 1=1 --"), "", nil); status != http.StatusOK || !strings.Contains(body, `class="empty"`) {
		t.Errorf("injection in q: %d", status)
	}
	if status, _, _ := s.do(t, "admin", "GET", "/people?region_code=abc", "", nil); status != http.StatusUnprocessableEntity {
		t.Errorf("bad region filter: %d, want 422", status)
	}
}

const importCSV = "id_type,id_number,name,phone,region_code,no_phone,address,tags\n" +
	",%s,张三丰,13800138000,330305001001,,城中路1号,elderly\n" + // row 2: good
	",110105194912310021,李四,13800138001,330305001001,,,\n" + // row 3: bad check character
	"passport,E12345678,John Smith,,330305002001,1,,\n" + // row 4: good, no phone
	",%s,王五,12345,330305001001,,,vip\n" + // row 5: bad phone and tag
	",%s,张三丰,13900139000,330305001001,,,\n" + // row 6: row 2's person again
	",%s,赵六,13800138002,230506001,,,\n" // row 7: outside the scope

func TestImport(t *testing.T) {
	s := newSite(t)
	zhangID := residentID("330305", "19491231", 1)
	body := strings.NewReader(fmt.Sprintf(importCSV, zhangID, residentID("330305", "19800101", 3), zhangID, residentID("230506", "19800101", 5)))
	status, resp, _ := s.do(t, "staff_a", "POST", "/api/v1/people/import", "text/csv", body)
	if status != http.StatusOK {
		t.Fatalf("import: %d %s", status, resp)
	}
	var res struct {
		Accepted int `json:"accepted"`
		Updated  int `json:"updated"`
		Rejected []struct {
			Row   int    `json:"row"`
			Field string `json:"field"`
			Error string `json:"error"`
		} `json:"rejected"`
	}
	if err := json.Unmarshal([]byte(resp), &res); err != nil {
		t.Fatal(err)
	}
	// staff_a's scope is township A: row 4 (township B) is refused too.
	var got []string
	for _, r := range res.Rejected {
		got = append(got, strconv.Itoa(r.Row)+":"+r.Field)
	}
	want := "3:id_number 4:region_code 5:phone 5:tags 7:region_code"
	if res.Accepted != 2 || res.Updated != 1 || strings.Join(got, " ") != want {
		t.Errorf("import = accepted %d updated %d rejected %v; want 2, 1, %s", res.Accepted, res.Updated, got, want)
	}
	if n := s.count(t, "persons"); n != 1 {
		t.Errorf("%d persons, want 1", n)
	}
	var phone string
	s.db.QueryRow("SELECT phone FROM persons").Scan(&phone)
	if phone != testPhone2 {
		t.Errorf("phone = %q, want the later row's", phone)
	}

	// A file missing a required column writes nothing.
	status, resp, _ = s.do(t, "admin", "POST", "/api/v1/people/import", "text/csv", strings.NewReader("id_number,name\n"+zhangID+",张三\n"))
	if status != http.StatusUnprocessableEntity || problemFields(t, resp)[0] != "file" {
		t.Errorf("missing columns: %d %s", status, resp)
	}
}

func TestImportPage(t *testing.T) {
	s := newSite(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf_token", "x")
	fw, _ := mw.CreateFormFile("file", "people.csv")
	io.WriteString(fw, "证件号码,姓名,手机号,区划代码\n"+residentID("330305", "19491231", 1)+",张三丰,13800138000,330305001001\n1,李四,1,330305001001\n")
	mw.Close()
	status, body, _ := s.do(t, "admin", "POST", "/people/import", mw.FormDataContentType(), &buf)
	if status != http.StatusOK || !strings.Contains(body, "成功导入 1 行") || !strings.Contains(body, `<td class="num">3</td>`) {
		t.Errorf("import page: %d\n%s", status, body)
	}
	if n := s.count(t, "persons"); n != 1 {
		t.Errorf("%d persons, want 1", n)
	}
	if status, _, _ := s.do(t, "admin", "GET", "/people/import", "", nil); status != http.StatusOK {
		t.Errorf("import form: %d", status)
	}
}

// historyRow is one row of the detail page's access history:
// time, user, action, outcome, detail.
var historyRow = regexp.MustCompile(`<tr>\s*<td>[^<]+</td>\s*<td>([^<]*)</td>\s*<td><code>([^<]*)</code></td>\s*<td><span[^>]*>([^<]*)</span></td>\s*<td>([^<]*)</td>\s*</tr>`)

// TestDetailShowsAccessHistoryToAdmins: the bureau admin responsible for a
// person sees on the detail page who touched them — a township doctor's
// read and unmask, a city epidemiologist's read, another township admin's
// refused attempt — and nothing about anyone else; other users see no
// history, and an admin of another township cannot open the person at all.
func TestDetailShowsAccessHistoryToAdmins(t *testing.T) {
	s := newSite(t)
	p, _, err := s.reg.Register(as(staffA), zhang(villageA))
	if err != nil {
		t.Fatal(err)
	}
	other := zhang(villageA)
	other.IDNumber, other.Name = residentID("330305", "19800101", 3), "李四"
	q, _, err := s.reg.Register(as(staffA), other)
	if err != nil {
		t.Fatal(err)
	}
	detail := "/people/" + strconv.FormatInt(p.ID, 10)
	if status, body, _ := s.do(t, "doctor_a", "GET", detail, "", nil); status != http.StatusOK || strings.Contains(body, `id="history"`) {
		t.Fatalf("doctor_a detail: %d, or shows the history", status)
	}
	if status, _, _ := s.postForm(t, "doctor_a", detail+"/unmask", url.Values{"reason": {"随访核对电话"}}); status != http.StatusOK {
		t.Fatalf("doctor_a unmask: %d", status)
	}
	if status, _, _ := s.do(t, "doctor_a", "GET", "/people/"+strconv.FormatInt(q.ID, 10), "", nil); status != http.StatusOK {
		t.Fatalf("doctor_a reads another person: %d", status)
	}
	if status, _, _ := s.do(t, "city_epi", "GET", detail, "", nil); status != http.StatusOK {
		t.Fatalf("city_epi detail: %d", status)
	}
	// A bureau admin of the other township: the person is simply not there.
	if status, body, _ := s.do(t, "admin_b", "GET", detail, "", nil); status != http.StatusNotFound || strings.Contains(body, "张") {
		t.Fatalf("admin_b detail: %d, want 404", status)
	}

	status, body, _ := s.do(t, "admin", "GET", detail, "", nil)
	if status != http.StatusOK {
		t.Fatalf("admin detail: %d", status)
	}
	_, section, ok := strings.Cut(body, `id="history"`)
	section, _, _ = strings.Cut(section, "</section>")
	if !ok {
		t.Fatalf("admin detail has no history:\n%s", body)
	}
	var got []string
	for _, m := range historyRow.FindAllStringSubmatch(section, -1) {
		got = append(got, strings.TrimSpace(strings.Join(m[1:], " ")))
	}
	want := []string{
		"admin person.read 成功",
		"admin_b person.read 未找到",
		"city_epi person.read 成功",
		"doctor_a person.unmask 成功 reason: 随访核对电话",
		"doctor_a person.read 成功",
		"staff_a person.create 成功",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("history rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	link := `href="/audit?object_id=` + strconv.FormatInt(p.ID, 10) + `&amp;object_type=person"`
	if !strings.Contains(section, link) {
		t.Errorf("history lacks the link %s:\n%s", link, section)
	}
	noSecrets(t, "detail with history", body)
	if strings.Contains(section, "李") || strings.Contains(section, other.IDNumber) {
		t.Errorf("history shows the other person:\n%s", section)
	}
}
