package people

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// The test regions: 洞头区 and two of its townships, each with a village.
const (
	district   = "330305"
	townshipA  = "330305001"    // 北岙街道
	villageA   = "330305001001" // 城中社区
	townshipB  = "330305002"    // 灵昆街道
	villageB   = "330305002001" // 镇中居委会
	otherCity  = "230506"
	testPhone  = "13800138000"
	testPhone2 = "13900139000"
)

// clock is the registry's fixed now: 15 June 2025, 10:00 in Beijing.
var clock = time.Date(2025, 6, 15, 2, 0, 0, 0, time.UTC)

var loadTree = sync.OnceValues(regions.LoadTree)

func tree(t testing.TB) *regions.Tree {
	t.Helper()
	tr, err := loadTree()
	if err != nil {
		t.Fatalf("load tree: %v", err)
	}
	return tr
}

// residentID returns a valid resident ID number for a region, birth date and
// sequence (odd for men).
func residentID(region6, birth string, seq int) string {
	first17 := fmt.Sprintf("%s%s%03d", region6, birth, seq)
	return first17 + string(CheckChar(first17))
}

// fixture is a fresh registry on a fresh database.
type fixture struct {
	db  *storage.DB
	reg *Registry
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	db := storagetest.Open(t, regions.Migrations, audit.Migrations, Migrations)
	reg := NewRegistry(db, tree(t), audit.New(db, func() time.Time { return clock }), func() time.Time { return clock })
	return fixture{db: db, reg: reg}
}

// The principals of the tests.
var (
	districtAdmin = &scope.Principal{UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: district}
	staffA        = &scope.Principal{UserID: 2, Username: "staff_a", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: townshipA}
	doctorB       = &scope.Principal{UserID: 3, Username: "doctor_b", Roles: []scope.Role{scope.FamilyDoctor}, RegionCode: townshipB}
	outsider      = &scope.Principal{UserID: 4, Username: "outsider", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: otherCity}
)

func as(p *scope.Principal) context.Context { return scope.WithPrincipal(context.Background(), p) }

func zhang(region string) NewPerson {
	return NewPerson{IDNumber: residentID("330305", "19491231", 1), Name: "张三丰", Phone: testPhone, RegionCode: region,
		Address: "浙江省温州市洞头区北岙街道城中路1号", Tags: []Tag{TagElderly}}
}

func (f fixture) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// auditEntries returns "action outcome object_id detail" for every audit entry.
func (f fixture) auditEntries(t *testing.T) []string {
	t.Helper()
	rows, err := f.db.Query("SELECT action, outcome, object_id, detail FROM audit_log ORDER BY id")
	if err != nil {
		t.Fatalf("read audit log: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, o, id, d string
		if err := rows.Scan(&a, &o, &id, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(strings.Join([]string{a, o, id, d}, " ")))
	}
	return out
}

func wantFields(t *testing.T, err error, fields ...string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Code != apperr.Invalid {
		t.Fatalf("error %v, want Invalid naming %v", err, fields)
	}
	got := map[string]bool{}
	for _, f := range e.Fields {
		got[f.Field] = true
	}
	for _, f := range fields {
		if !got[f] {
			t.Errorf("error %v does not name field %q", err, f)
		}
	}
	if len(got) != len(fields) {
		t.Errorf("error %v names %d fields, want %v", err, len(got), fields)
	}
}

func TestRegisterCreatesThenUpdates(t *testing.T) {
	f := newFixture(t)
	ctx := as(districtAdmin)
	p, created, err := f.reg.Register(ctx, zhang(villageA))
	if err != nil || !created {
		t.Fatalf("Register = %v, created %v; want created", err, created)
	}
	if p.Sex != SexMale || p.BirthDate.Format(time.DateOnly) != "1949-12-31" || p.Age != 75 {
		t.Errorf("derived sex %q birth %v age %d; want male 1949-12-31 75", p.Sex, p.BirthDate, p.Age)
	}
	if p.RegionName != "浙江省 温州市 洞头区 北岙街道 城中社区" {
		t.Errorf("RegionName = %q", p.RegionName)
	}

	// The same person again, typed differently, with a new phone and no
	// address or tags: one row, updated, address and tags kept.
	again := zhang(villageA)
	again.IDNumber = strings.ToLower(" " + again.IDNumber + " ")
	again.Phone, again.Address, again.Tags = "+86 139 0013 9000", "", nil
	q, created, err := f.reg.Register(ctx, again)
	if err != nil || created {
		t.Fatalf("second Register = %v, created %v; want updated", err, created)
	}
	if q.ID != p.ID || q.Phone != testPhone2 || q.Address != p.Address || len(q.Tags) != 1 {
		t.Errorf("updated person %+v; want id %d, new phone, kept address and tags", q, p.ID)
	}
	if n := f.count(t, "persons"); n != 1 {
		t.Errorf("%d persons, want 1", n)
	}
	got, err := f.reg.Get(ctx, p.ID)
	if err != nil || got.Phone != testPhone2 || got.Name != "张三丰" {
		t.Errorf("Get = %+v, %v", got, err)
	}
	want := []string{"person.create ok 1", "person.update ok 1", "person.read ok 1"}
	if got := f.auditEntries(t); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit = %q, want %q", got, want)
	}
}

func TestRegisterNoPhone(t *testing.T) {
	f := newFixture(t)
	np := zhang(villageA)
	np.Phone, np.NoPhone = "", true
	p, _, err := f.reg.Register(as(districtAdmin), np)
	if err != nil || !p.NoPhone || p.Phone != "" {
		t.Fatalf("Register without phone = %+v, %v", p, err)
	}
	// A phone given wins over no_phone.
	np.Phone = testPhone
	p, _, err = f.reg.Register(as(districtAdmin), np)
	if err != nil || p.NoPhone || p.Phone != testPhone {
		t.Fatalf("Register with phone and no_phone = %+v, %v", p, err)
	}
}

func TestRegisterInvalid(t *testing.T) {
	tests := []struct {
		name   string
		who    *scope.Principal
		edit   func(*NewPerson)
		fields []string
	}{
		{"bad check character", districtAdmin, func(p *NewPerson) { p.IDNumber = p.IDNumber[:17] + "0" }, []string{"id_number"}},
		{"empty id number", districtAdmin, func(p *NewPerson) { p.IDNumber = "" }, []string{"id_number"}},
		{"unknown id type", districtAdmin, func(p *NewPerson) { p.IDType = "driving_licence" }, []string{"id_type"}},
		{"bad phone", districtAdmin, func(p *NewPerson) { p.Phone = "12345" }, []string{"phone"}},
		{"phone missing", districtAdmin, func(p *NewPerson) { p.Phone = "" }, []string{"phone"}},
		{"unknown region", districtAdmin, func(p *NewPerson) { p.RegionCode = "330399" }, []string{"region_code"}},
		{"malformed region", districtAdmin, func(p *NewPerson) { p.RegionCode = "33' OR 1=1" }, []string{"region_code"}},
		{"city is too coarse", districtAdmin, func(p *NewPerson) { p.RegionCode = "3303" }, []string{"region_code"}},
		{"region outside scope", staffA, func(p *NewPerson) { p.RegionCode = villageB }, []string{"region_code"}},
		{"empty name", districtAdmin, func(p *NewPerson) { p.Name = "  " }, []string{"name"}},
		{"long name", districtAdmin, func(p *NewPerson) { p.Name = strings.Repeat("张", 51) }, []string{"name"}},
		{"control character in name", districtAdmin, func(p *NewPerson) { p.Name = "张\x00三" }, []string{"name"}},
		{"unknown tag", districtAdmin, func(p *NewPerson) { p.Tags = []Tag{"vip"} }, []string{"tags"}},
		{"unknown institution", districtAdmin, func(p *NewPerson) { p.InstitutionID = 999 }, []string{"institution_id"}},
		{"everything at once", districtAdmin, func(p *NewPerson) {
			p.IDNumber, p.Phone, p.RegionCode, p.Name = "1", "1", "9", ""
		}, []string{"id_number", "phone", "region_code", "name"}},
	}
	// Nothing is written on error, so the cases can share one database.
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := zhang(villageA)
			tt.edit(&np)
			_, _, err := f.reg.Register(as(tt.who), np)
			wantFields(t, err, tt.fields...)
			if n := f.count(t, "persons"); n != 0 {
				t.Errorf("%d persons written on error", n)
			}
			if n := f.count(t, "audit_log"); n != 0 {
				t.Errorf("%d audit entries written on error", n)
			}
		})
	}
}

func TestRegisterNeedsPrincipal(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.reg.Register(context.Background(), zhang(villageA)); !apperr.Is(err, apperr.Unauthorized) {
		t.Errorf("Register without principal = %v, want Unauthorized", err)
	}
	if _, _, err := f.reg.Search(context.Background(), Query{}); !apperr.Is(err, apperr.Unauthorized) {
		t.Errorf("Search without principal = %v, want Unauthorized", err)
	}
}

// TestScope: a user scoped to one township cannot read, search or export a
// person of another. The registry is one: a re-registration is authorised by
// the residence it gives, which must lie in the writer's capture scope.
func TestScope(t *testing.T) {
	f := newFixture(t)
	p, _, err := f.reg.Register(as(staffA), zhang(villageA))
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []*scope.Principal{doctorB, outsider} {
		if _, err := f.reg.Get(as(who), p.ID); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("%s: Get = %v, want NotFound", who.Username, err)
		}
		if _, err := f.reg.Unmask(as(who), p.ID, "follow-up call"); !apperr.Is(err, apperr.NotFound) && !apperr.Is(err, apperr.Forbidden) {
			t.Errorf("%s: Unmask = %v, want NotFound", who.Username, err)
		}
		for _, q := range []Query{{}, {Q: p.IDNumber}, {Q: testPhone}, {Q: "张"}, {RegionCode: townshipA}, {Tag: TagElderly}} {
			items, _, err := f.reg.Search(as(who), q)
			if err != nil || len(items) != 0 {
				t.Errorf("%s: Search(%+v) = %d items, %v; want none", who.Username, q, len(items), err)
			}
		}
		n := 0
		if err := f.reg.Export(as(who), Query{}, "csv", func(Person) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("%s: Export = %d rows, %v; want none", who.Username, n, err)
		}
		// Re-registering them in the other township, keeping their residence: refused.
		if _, _, err := f.reg.Register(as(who), zhang(villageA)); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("%s: Register in another township = %v, want Invalid region_code", who.Username, err)
		}
	}
	if got, _ := f.reg.Get(as(staffA), p.ID); got.Phone != testPhone {
		t.Errorf("refused re-registrations changed the person: %+v", got)
	}
	// The district sees both townships.
	if items, _, err := f.reg.Search(as(districtAdmin), Query{}); err != nil || len(items) != 1 {
		t.Errorf("district Search = %d, %v", len(items), err)
	}
	// Township B cannot take the person over by re-registering them as living
	// there: the record lies outside its scope, so it is neither rewritten
	// nor shown (409), and township A still sees it unchanged.
	moved := zhang(villageB)
	moved.Name = "张改名"
	if _, _, err := f.reg.Register(as(doctorB), moved); !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("township B re-registering A's person = %v, want Conflict", err)
	}
	if got, err := f.reg.Get(as(staffA), p.ID); err != nil || got.Name != p.Name || got.RegionCode != p.RegionCode {
		t.Errorf("after a refused takeover township A sees %+v, %v", got, err)
	}
	// The district, whose scope covers both townships, moves the resident:
	// the one row moves, and township A no longer sees it.
	q, created, err := f.reg.Register(as(districtAdmin), zhang(villageB))
	if err != nil || created || q.ID != p.ID || q.RegionCode != villageB {
		t.Fatalf("move = %+v, created %v, %v", q, created, err)
	}
	if _, err := f.reg.Get(as(staffA), p.ID); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("old township Get after move = %v, want NotFound", err)
	}
	if _, err := f.reg.Get(as(doctorB), p.ID); err != nil {
		t.Errorf("new township Get after move = %v", err)
	}
	if n := f.count(t, "persons"); n != 1 {
		t.Errorf("%d persons, want 1", n)
	}
}

func TestInstitutionScope(t *testing.T) {
	f := newFixture(t)
	var instA, instB int64
	for _, in := range []struct {
		id   *int64
		name string
	}{{&instA, "北岙街道社区卫生服务中心"}, {&instB, "城中社区卫生室"}} {
		if err := f.db.QueryRow(`INSERT INTO institutions (name, type, region_code, created_at, updated_at)
			VALUES ($1, 'township_health_centre', $2, 0, 0) RETURNING id`, in.name, townshipA).Scan(in.id); err != nil {
			t.Fatal(err)
		}
	}
	clinicA := &scope.Principal{UserID: 5, Username: "clinic_a", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: townshipA, InstitutionID: instA}
	clinicB := &scope.Principal{UserID: 6, Username: "clinic_b", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: townshipA, InstitutionID: instB}
	p, _, err := f.reg.Register(as(clinicA), zhang(villageA))
	if err != nil || p.InstitutionID != instA {
		t.Fatalf("Register = %+v, %v", p, err)
	}
	if _, err := f.reg.Get(as(clinicA), p.ID); err != nil {
		t.Errorf("own institution Get = %v", err)
	}
	if _, err := f.reg.Get(as(clinicB), p.ID); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("other institution Get = %v, want NotFound", err)
	}
	np := zhang(villageA)
	np.InstitutionID = instA
	if _, _, err := f.reg.Register(as(clinicB), np); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("registering for another institution = %v, want Invalid", err)
	}
	// Clinic B re-registering clinic A's person under its own name neither
	// rewrites the record nor shows it.
	hijack := zhang(villageA)
	hijack.Name = "改名"
	if got, _, err := f.reg.Register(as(clinicB), hijack); !apperr.Is(err, apperr.Conflict) || got.ID != 0 {
		t.Errorf("re-registering another institution's person = %+v, %v; want Conflict and nothing shown", got, err)
	}
	if got, err := f.reg.Get(as(clinicA), p.ID); err != nil || got.Name != p.Name {
		t.Errorf("clinic A now sees %+v, %v; want the person unchanged", got, err)
	}
}

func TestSearch(t *testing.T) {
	f := newFixture(t)
	ctx := as(districtAdmin)
	var ids []int64
	for i, np := range []NewPerson{
		{IDNumber: residentID("330305", "19491231", 1), Name: "张三", Phone: "13800000001", RegionCode: villageA, Tags: []Tag{TagElderly}},
		{IDNumber: residentID("330305", "19900101", 2), Name: "张小红", Phone: "13800000002", RegionCode: villageB, Tags: []Tag{TagPregnant}},
		{IDNumber: residentID("330305", "20200101", 3), Name: "李四", NoPhone: true, RegionCode: villageB, Tags: []Tag{TagChild, TagElderly}},
		{IDType: IDPassport, IDNumber: "e12345678", Name: "John Smith", Phone: "13800000004", RegionCode: townshipA},
		{IDNumber: residentID("330305", "19800101", 5), Name: "王_%五", Phone: "13800000005", RegionCode: villageA},
	} {
		p, _, err := f.reg.Register(ctx, np)
		if err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
		ids = append(ids, p.ID)
	}
	tests := []struct {
		name string
		q    Query
		want []int64
	}{
		{"all, newest first", Query{}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"township", Query{RegionCode: townshipB}, []int64{ids[2], ids[1]}},
		{"tag", Query{Tag: TagElderly}, []int64{ids[2], ids[0]}},
		{"tag and region", Query{Tag: TagElderly, RegionCode: townshipA}, []int64{ids[0]}},
		{"name prefix", Query{Q: "张"}, []int64{ids[1], ids[0]}},
		{"name prefix longer", Query{Q: "张小"}, []int64{ids[1]}},
		{"name is not a substring match", Query{Q: "三"}, nil},
		{"LIKE wildcards are literal", Query{Q: "王_"}, []int64{ids[4]}},
		{"percent is literal", Query{Q: "%"}, nil},
		{"exact resident ID, lower-case x and spaces", Query{Q: " " + strings.ToLower(residentID("330305", "19900101", 2)) + " "}, []int64{ids[1]}},
		{"partial ID number finds nothing", Query{Q: residentID("330305", "19900101", 2)[:10]}, nil},
		{"passport number", Query{Q: "E12345678"}, []int64{ids[3]}},
		{"phone with prefix", Query{Q: "+86 138 0000 0002"}, []int64{ids[1]}},
		{"SQL injection", Query{Q: "' OR '1'='1"}, nil},
		{"SQL injection 2", Query{Q: "1; DROP TABLE persons; --"}, nil},
		{"SQL injection in a tag-like name", Query{Q: "张' OR 1=1 --"}, nil},
		{"region outside scope", Query{RegionCode: otherCity}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, next, err := f.reg.Search(ctx, tt.q)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			var got []int64
			for _, p := range items {
				got = append(got, p.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || next != 0 {
				t.Errorf("Search(%+v) = %v next %d, want %v", tt.q, got, next, tt.want)
			}
		})
	}
	if n := f.count(t, "persons"); n != 5 {
		t.Errorf("%d persons after searches, want 5", n)
	}

	// Pages of two.
	var all []int64
	q := Query{Limit: 2}
	for range 5 {
		items, next, err := f.reg.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range items {
			all = append(all, p.ID)
		}
		if next == 0 {
			break
		}
		q.Cursor = next
	}
	if fmt.Sprint(all) != fmt.Sprint([]int64{ids[4], ids[3], ids[2], ids[1], ids[0]}) {
		t.Errorf("paged = %v", all)
	}

	for _, q := range []Query{{RegionCode: "33x"}, {Tag: "vip"}, {Q: strings.Repeat("张", 101)}} {
		if _, _, err := f.reg.Search(ctx, q); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("Search(%+v) = %v, want Invalid", q, err)
		}
	}
}

func TestSearchAuditHasNoPersonalData(t *testing.T) {
	f := newFixture(t)
	ctx := as(districtAdmin)
	id := residentID("330305", "19491231", 1)
	if _, _, err := f.reg.Register(ctx, zhang(villageA)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []Query{{Q: id}, {Q: testPhone}, {Q: "张三", Tag: TagElderly, RegionCode: townshipA}} {
		if _, _, err := f.reg.Search(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	got := f.auditEntries(t)[1:]
	want := []string{"person.search ok  q=id_number", "person.search ok  q=id_number_or_phone", "person.search ok  region_code=330305001 tag=elderly q=name_prefix"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("audit = %q, want %q", got, want)
	}
	for _, e := range got {
		for _, secret := range []string{id, testPhone, "张三"} {
			if strings.Contains(e, secret) {
				t.Errorf("audit entry %q holds %q", e, secret)
			}
		}
	}
}

func TestUnmask(t *testing.T) {
	f := newFixture(t)
	p, _, err := f.reg.Register(as(districtAdmin), zhang(villageA))
	if err != nil {
		t.Fatal(err)
	}
	staff := &scope.Principal{UserID: 7, Username: "staff", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: district}
	if _, err := f.reg.Unmask(as(staff), p.ID, "need to call them"); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("Unmask by institution_staff = %v, want Forbidden", err)
	}
	for _, reason := range []string{"", "abc", "   ab  ", strings.Repeat("理", 201), "call\x00them"} {
		_, err := f.reg.Unmask(as(districtAdmin), p.ID, reason)
		wantFields(t, err, "reason")
	}
	got, err := f.reg.Unmask(as(districtAdmin), p.ID, "核对阳性者联系方式")
	if err != nil || got.Phone != testPhone || got.Name != "张三丰" {
		t.Fatalf("Unmask = %+v, %v", got, err)
	}
	if v := got.Unmasked(); v.Masked || v.BirthDate != "1949-12-31" || v.IDNumber != p.IDNumber {
		t.Errorf("Unmasked view = %+v", v)
	}
	if _, err := f.reg.Unmask(as(districtAdmin), p.ID+100, "核对阳性者联系方式"); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("Unmask of a missing person = %v, want NotFound", err)
	}
	entries := f.auditEntries(t)
	want := []string{"person.create ok 1", "person.unmask denied 1",
		"person.unmask ok 1 reason: 核对阳性者联系方式", fmt.Sprintf("person.unmask not_found %d reason: 核对阳性者联系方式", p.ID+100)}
	if strings.Join(entries, "|") != strings.Join(want, "|") {
		t.Errorf("audit = %q, want %q", entries, want)
	}
}

func TestMasked(t *testing.T) {
	p := Person{ID: 9, IDType: IDResident, IDNumber: "11010519491231002X", Name: "欧阳娜娜", Sex: SexFemale,
		BirthDate: time.Date(1949, 12, 31, 0, 0, 0, 0, time.UTC), Age: 75, Phone: "13812345678",
		Address: "浙江省温州市洞头区北岙街道城中路1号", RegionCode: villageA}
	v := p.Masked()
	if v.IDNumber != "11**************2X" || v.Name != "欧阳**" || v.Phone != "138****5678" ||
		v.Address != "浙江省温州市***" || v.BirthDate != "" || v.Age == nil || *v.Age != 75 || !v.Masked {
		t.Errorf("Masked = %+v", v)
	}
	if v.Tags == nil {
		t.Error("Masked tags are nil; the API must send []")
	}
	for _, tt := range []struct{ in, want string }{
		{"", ""}, {"1号", "1***"}, {"城中路1号", "城中***"}, {"浙江省温州市洞头区", "浙江省温***"},
		{"浙江省温州市洞头区北岙街道", "浙江省温州市***"}, {"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3", "***"},
	} {
		if got := MaskAddress(tt.in); got != tt.want {
			t.Errorf("MaskAddress(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
