package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
)

// screeningWorld is a district with a campaign, two sampling points, their
// samplers, a lab and township users, all through the real server and API.
type screeningWorld struct {
	*world
	campaign                int64
	pointA, pointB          int64
	samplerA, samplerB, lab string // API tokens
	lab2, staffA, staffB    string
}

func newScreeningWorld(t *testing.T) *screeningWorld {
	t.Helper()
	w := &screeningWorld{world: newWorld(t)}
	now := time.Now()
	status, body := w.api(t, w.tokenAdmin, "POST", "/api/v1/campaigns", fmt.Sprintf(
		`{"name":"第一轮全员核酸","pathogen":"sars_cov_2","region_codes":["330305"],"pool_size":10,"starts_at":%q,"ends_at":%q}`,
		now.Add(-time.Hour).Format(time.RFC3339), now.Add(24*time.Hour).Format(time.RFC3339)))
	if status != http.StatusCreated {
		t.Fatalf("create campaign: %d %s", status, body)
	}
	w.campaign = jsonID(t, body)
	point := func(name, region string) (int64, int64) {
		status, body := w.api(t, w.tokenAdmin, "POST", "/api/v1/sampling-points",
			fmt.Sprintf(`{"name":%q,"region_code":%q,"campaign_id":%d}`, name, region, w.campaign))
		if status != http.StatusCreated {
			t.Fatalf("create point: %d %s", status, body)
		}
		var p struct {
			ID            int64 `json:"id"`
			InstitutionID int64 `json:"institution_id"`
		}
		if err := json.Unmarshal([]byte(body), &p); err != nil || p.ID == 0 || p.InstitutionID == 0 {
			t.Fatalf("point: %s (%v)", body, err)
		}
		return p.ID, p.InstitutionID
	}
	var instA, instB int64
	w.pointA, instA = point("北岙一号采样点", "330305001")
	w.pointB, instB = point("灵昆一号采样点", "330305002")
	tree, err := regions.LoadTree()
	if err != nil {
		t.Fatal(err)
	}
	sys := scope.WithPrincipal(context.Background(), scope.System())
	var labID, lab2ID int64
	for i, name := range []string{"洞头区核酸检测实验室", "第二实验室"} {
		var id int64
		if err := w.db.QueryRow(`INSERT INTO institutions (name, type, region_code, address, phone, active, created_at, updated_at)
			VALUES ($1, 'lab', '330305', '', '', TRUE, 1, 1) RETURNING id`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			labID = id
		} else {
			lab2ID = id
		}
	}
	accounts := auth.New(w.db, tree, nil, time.Now, auth.Options{Hash: auth.HashParams{Memory: 8 * 1024, Time: 1, Threads: 1}})
	token := func(u auth.NewUser) string {
		u.Password, u.DisplayName = e2ePassword, u.Username
		created, err := accounts.CreateUser(sys, u)
		if err != nil {
			t.Fatalf("create %s: %v", u.Username, err)
		}
		_, secret, err := accounts.CreateToken(sys, created.ID, "e2e", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	w.samplerA = token(auth.NewUser{Username: "sampler.a", Roles: []scope.Role{scope.Sampler}, InstitutionID: instA})
	w.samplerB = token(auth.NewUser{Username: "sampler.b", Roles: []scope.Role{scope.Sampler}, InstitutionID: instB})
	w.lab = token(auth.NewUser{Username: "lab.one", Roles: []scope.Role{scope.Lab}, InstitutionID: labID})
	w.lab2 = token(auth.NewUser{Username: "lab.two", Roles: []scope.Role{scope.Lab}, InstitutionID: lab2ID})
	w.staffA = token(auth.NewUser{Username: "staff.a", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: "330305001"})
	w.staffB = token(auth.NewUser{Username: "staff.b", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: "330305002"})
	return w
}

func jsonID(t *testing.T, body string) int64 {
	t.Helper()
	var v struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.ID == 0 {
		t.Fatalf("no id in %s (%v)", body, err)
	}
	return v.ID
}

// specimenBody is a registration of person seq (a resident of region).
func (w *screeningWorld) specimenBody(point int64, clientID, tube string, seq int, region string) string {
	return fmt.Sprintf(`{"client_id":%q,"campaign_id":%d,"sampling_point_id":%d,"tube_code":%q,"sampled_at":%q,
		"person":{"id_type":"resident_id","id_number":%q,"name":"测试%d","phone":"13800138000","region_code":%q}}`,
		clientID, w.campaign, point, tube, time.Now().Add(-time.Minute).Format(time.RFC3339),
		residentID(fmt.Sprintf("33030519900101%03d", seq)), seq, region)
}

func (w *screeningWorld) rows(t *testing.T, table string) int {
	t.Helper()
	// Registrations are filed a moment after they are acknowledged.
	if err := w.app.screening.FileQueued(context.Background()); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := w.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestScreeningRegistrationAPI walks the registration contract of issue 3
// through HTTP: created, retried, conflicting, invalid, full, batch.
func TestScreeningRegistrationAPI(t *testing.T) {
	w := newScreeningWorld(t)
	body := w.specimenBody(w.pointA, "client-1", "T100001", 1, "330305001001")
	status, got := w.api(t, w.samplerA, "POST", "/api/v1/specimens", body)
	if status != http.StatusCreated || !strings.Contains(got, `"tube_count":1`) || !strings.Contains(got, `"tube_capacity":10`) {
		t.Fatalf("register: %d %s", status, got)
	}
	first := jsonID(t, got)
	status, got = w.api(t, w.samplerA, "POST", "/api/v1/specimens", body)
	if status != http.StatusOK || jsonID(t, got) != first {
		t.Fatalf("retry: %d %s, want 200 with id %d", status, got, first)
	}
	status, got = w.api(t, w.samplerA, "POST", "/api/v1/specimens", strings.Replace(body, "测试1", "别人", 1))
	if status != http.StatusConflict || !strings.Contains(got, `"client_id"`) {
		t.Fatalf("reused client id: %d %s", status, got)
	}
	bad := w.specimenBody(w.pointA, "client-bad", "T100001", 2, "330305001001")
	bad = strings.Replace(bad, `"id_number":"`, `"id_number":"1`, 1)
	status, got = w.api(t, w.samplerA, "POST", "/api/v1/specimens", bad)
	if status != http.StatusUnprocessableEntity || !strings.Contains(got, `"field":"person.id_number"`) {
		t.Fatalf("bad id number: %d %s", status, got)
	}
	status, got = w.api(t, w.samplerA, "POST", "/api/v1/specimens", strings.Replace(w.specimenBody(w.pointA, "client-phone", "T100001", 3, "330305001001"), "13800138000", "1380013800", 1))
	if status != http.StatusUnprocessableEntity || !strings.Contains(got, `"field":"person.phone"`) {
		t.Fatalf("bad phone: %d %s", status, got)
	}
	if n := w.rows(t, "specimens"); n != 1 {
		t.Fatalf("%d specimens after the rejected ones, want 1", n)
	}
	// Fill the tube; the 11th is refused.
	for i := 2; i <= 11; i++ {
		status, got = w.api(t, w.samplerA, "POST", "/api/v1/specimens", w.specimenBody(w.pointA, fmt.Sprintf("client-%d", i), "T100001", i, "330305001001"))
		want := http.StatusCreated
		if i == 11 {
			want = http.StatusConflict
		}
		if status != want {
			t.Fatalf("specimen %d: %d %s, want %d", i, status, got, want)
		}
	}
	// A batch with one bad item keeps the others.
	items := []string{
		w.specimenBody(w.pointA, "batch-1", "T100002", 21, "330305001001"),
		strings.Replace(w.specimenBody(w.pointA, "batch-2", "T100002", 22, "330305001001"), `"id_number":"`, `"id_number":"x`, 1),
		w.specimenBody(w.pointA, "batch-3", "T100002", 23, "330305001002"),
		body, // a retry of the first, byte for byte (a body made now could carry a later sampled_at)
	}
	status, got = w.api(t, w.samplerA, "POST", "/api/v1/specimens/batch", `{"specimens":[`+strings.Join(items, ",")+`]}`)
	if status != http.StatusOK {
		t.Fatalf("batch: %d %s", status, got)
	}
	var batch struct {
		Results []struct {
			ClientID string `json:"client_id"`
			Status   int    `json:"status"`
			ID       int64  `json:"id"`
			Error    *struct {
				Errors []struct{ Field string } `json:"errors"`
			} `json:"error"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(got), &batch); err != nil {
		t.Fatal(err)
	}
	statuses := []int{}
	for _, r := range batch.Results {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[201 422 201 200]" || batch.Results[1].Error == nil || batch.Results[1].Error.Errors[0].Field != "person.id_number" || batch.Results[3].ID != first {
		t.Fatalf("batch results: %s", got)
	}
	if n := w.rows(t, "specimens"); n != 12 {
		t.Fatalf("%d specimens, want 12", n)
	}
	// Sampler B may not register at point A, nor see its tube.
	status, got = w.api(t, w.samplerB, "POST", "/api/v1/specimens", w.specimenBody(w.pointA, "b-1", "T100003", 31, "330305002001"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(got, `"field":"sampling_point_id"`) {
		t.Fatalf("sampler B at point A: %d %s", status, got)
	}
	if status, got = w.api(t, w.samplerB, "GET", "/api/v1/tubes/T100001", ""); status != http.StatusNotFound {
		t.Fatalf("sampler B reads point A's tube: %d %s", status, got)
	}
	if status, got = w.api(t, w.samplerA, "GET", "/api/v1/tubes/T100001", ""); status != http.StatusOK || strings.Contains(got, "330305199001") {
		t.Fatalf("sampler A reads its tube: %d %s (ID numbers must be masked)", status, got)
	}
	// A person's specimens: township A's staff see their resident's, masked;
	// township B's staff get 404.
	var person int64
	if err := w.db.QueryRow("SELECT person_id FROM specimens WHERE client_id = 'client-1'").Scan(&person); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/people/" + itoa(person) + "/specimens"
	if status, got = w.api(t, w.staffA, "GET", path, ""); status != http.StatusOK || !strings.Contains(got, `"tube_code":"T100001"`) || strings.Contains(got, "测试1") {
		t.Fatalf("township A reads its resident's specimens: %d %s", status, got)
	}
	if status, got = w.api(t, w.staffB, "GET", path, ""); status != http.StatusNotFound {
		t.Fatalf("township B reads township A's resident: %d %s", status, got)
	}
}
