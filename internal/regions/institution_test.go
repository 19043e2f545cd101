package regions

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// newInstitutions returns a register on a fresh database with a fixed clock.
func newInstitutions(t *testing.T) *Institutions {
	t.Helper()
	db := storagetest.Open(t, Migrations, audit.Migrations)
	now := func() time.Time { return time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC) }
	return NewInstitutions(db, tree(t), audit.New(db, now), now)
}

func as(p *scope.Principal) context.Context { return scope.WithPrincipal(context.Background(), p) }

// admin is a bureau admin of region.
func admin(region string) context.Context {
	return as(&scope.Principal{UserID: 1, Username: "admin" + region, Roles: []scope.Role{scope.BureauAdmin}, RegionCode: region})
}

// wantField fails unless err is an Invalid error naming field with code.
func wantField(t *testing.T, err error, field, code string) {
	t.Helper()
	e := apperr.As(err)
	if e == nil || e.Code != apperr.Invalid {
		t.Fatalf("err = %v, want an invalid-input error on %s", err, field)
	}
	for _, f := range e.Fields {
		if f.Field == field && f.Code == code {
			return
		}
	}
	t.Fatalf("err = %v, want field %s code %s", err, field, code)
}

func mustCreate(t *testing.T, s *Institutions, ctx context.Context, in InstitutionInput) Institution {
	t.Helper()
	got, err := s.Create(ctx, in)
	if err != nil {
		t.Fatalf("Create(%+v): %v", in, err)
	}
	return got
}

func TestInstitutionCreateAndGet(t *testing.T) {
	s := newInstitutions(t)
	ctx := admin("330305")
	bureau := mustCreate(t, s, ctx, InstitutionInput{Name: " 洞头区卫生健康局 ", Type: Bureau, RegionCode: "330305", Phone: "0577-63481234"})
	if bureau.Name != "洞头区卫生健康局" || !bureau.Active || bureau.RegionPath != "浙江省 温州市 洞头区" {
		t.Fatalf("created %+v", bureau)
	}
	thc := mustCreate(t, s, ctx, InstitutionInput{Name: "北岙街道社区卫生服务中心", Type: TownshipHealthCentre, RegionCode: "330305001", ParentID: bureau.ID})
	got, err := s.Get(ctx, thc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ParentID != bureau.ID || got.Type != TownshipHealthCentre || got.CreatedAt.IsZero() {
		t.Fatalf("Get = %+v", got)
	}
	var n int
	if err := s.db.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'institution.create'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("audit entries = %d, %v; want 2", n, err)
	}
}

func TestInstitutionRules(t *testing.T) {
	s := newInstitutions(t)
	ctx := admin("330305")
	bureau := mustCreate(t, s, ctx, InstitutionInput{Name: "洞头区卫生健康局", Type: Bureau, RegionCode: "330305"})
	other := mustCreate(t, s, admin("330304"), InstitutionInput{Name: "瓯海区卫生健康局", Type: Bureau, RegionCode: "330304"})
	thc := mustCreate(t, s, ctx, InstitutionInput{Name: "霓屿街道社区卫生服务中心", Type: TownshipHealthCentre, RegionCode: "330305003", ParentID: bureau.ID})

	tests := []struct {
		name        string
		in          InstitutionInput
		field, code string
	}{
		{"duplicate name in region", InstitutionInput{Name: "洞头区卫生健康局", Type: CDC, RegionCode: "330305"}, "name", "institution.name_taken"},
		{"capture outside scope", InstitutionInput{Name: "瓯海区疾控中心", Type: CDC, RegionCode: "330304"}, "region_code", "region_code.out_of_scope"},
		{"unknown region", InstitutionInput{Name: "x", Type: CDC, RegionCode: "330399"}, "region_code", "region_code.unknown"},
		{"province level", InstitutionInput{Name: "x", Type: CDC, RegionCode: "33"}, "region_code", "institution.region_level"},
		{"no name", InstitutionInput{Name: "  ", Type: CDC, RegionCode: "330305"}, "name", "required"},
		{"bad type", InstitutionInput{Name: "x", Type: "clinic", RegionCode: "330305"}, "type", "institution.type_unknown"},
		{"bad phone", InstitutionInput{Name: "x", Type: CDC, RegionCode: "330305", Phone: "call me"}, "phone", "institution.phone_invalid"},
		{"parent outside scope", InstitutionInput{Name: "x", Type: CDC, RegionCode: "330305", ParentID: other.ID}, "parent_id", "institution.parent_unknown"},
		{"parent missing", InstitutionInput{Name: "x", Type: CDC, RegionCode: "330305", ParentID: 9999}, "parent_id", "institution.parent_unknown"},
		{"parent region does not contain", InstitutionInput{Name: "x", Type: SamplingPoint, RegionCode: "330305001", ParentID: thc.ID}, "parent_id", "institution.parent_region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Create(ctx, tt.in)
			wantField(t, err, tt.field, tt.code)
		})
	}

	// The same name in another region is fine.
	mustCreate(t, s, ctx, InstitutionInput{Name: "霓屿街道社区卫生服务中心", Type: TownshipHealthCentre, RegionCode: "330305004"})

	t.Run("cycle", func(t *testing.T) {
		_, err := s.Update(ctx, bureau.ID, InstitutionInput{Name: bureau.Name, Type: Bureau, RegionCode: "330305", ParentID: thc.ID})
		wantField(t, err, "parent_id", "institution.parent_region")
		_, err = s.Update(ctx, bureau.ID, InstitutionInput{Name: bureau.Name, Type: Bureau, RegionCode: "330305", ParentID: bureau.ID})
		wantField(t, err, "parent_id", "institution.parent_cycle")
	})
	t.Run("only bureau admins write", func(t *testing.T) {
		cdc := as(&scope.Principal{UserID: 2, Roles: []scope.Role{scope.Epidemiologist}, RegionCode: "330305"})
		_, err := s.Create(cdc, InstitutionInput{Name: "洞头区疾控中心", Type: CDC, RegionCode: "330305"})
		if !apperr.Is(err, apperr.Forbidden) {
			t.Fatalf("err = %v, want forbidden", err)
		}
	})
}

func TestInstitutionScope(t *testing.T) {
	s := newInstitutions(t)
	ctx := admin("330305")
	bureau := mustCreate(t, s, ctx, InstitutionInput{Name: "洞头区卫生健康局", Type: Bureau, RegionCode: "330305"})
	point := mustCreate(t, s, ctx, InstitutionInput{Name: "北岙采样点", Type: SamplingPoint, RegionCode: "330305001", ParentID: bureau.ID})
	other := mustCreate(t, s, admin("330304"), InstitutionInput{Name: "瓯海区卫生健康局", Type: Bureau, RegionCode: "330304"})

	sampler := as(&scope.Principal{UserID: 3, Roles: []scope.Role{scope.Sampler}, RegionCode: "330305001", InstitutionID: point.ID})
	township := admin("330305001")
	tests := []struct {
		name string
		ctx  context.Context
		id   int64
		ok   bool
	}{
		{"admin sees own bureau", ctx, bureau.ID, true},
		{"admin does not see another district", ctx, other.ID, false},
		{"sampler sees own point", sampler, point.ID, true},
		{"sampler does not see the bureau", sampler, bureau.ID, false},
		{"township admin does not see the district bureau", township, bureau.ID, false},
		{"township admin sees its point", township, point.ID, true},
		{"nobody signed in", context.Background(), point.ID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Get(tt.ctx, tt.id)
			if tt.ok && err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !tt.ok && !apperr.Is(err, apperr.NotFound) && !apperr.Is(err, apperr.Unauthorized) {
				t.Fatalf("Get = %v, want not found", err)
			}
		})
	}
	t.Run("update outside scope is not found", func(t *testing.T) {
		_, err := s.Update(ctx, other.ID, InstitutionInput{Name: "x", Type: Bureau, RegionCode: "330305"})
		if !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("err = %v, want not found", err)
		}
		_, err = s.SetActive(ctx, other.ID, false)
		if !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("SetActive err = %v, want not found", err)
		}
	})
	t.Run("list keeps to scope", func(t *testing.T) {
		items, _, err := s.List(sampler, InstitutionFilter{})
		if err != nil || len(items) != 1 || items[0].ID != point.ID {
			t.Fatalf("sampler list = %+v, %v", items, err)
		}
		items, _, err = s.List(ctx, InstitutionFilter{})
		if err != nil || len(items) != 2 {
			t.Fatalf("admin list = %+v, %v", items, err)
		}
	})
}

func TestInstitutionListFiltersAndCursor(t *testing.T) {
	s := newInstitutions(t)
	ctx := admin("330305")
	townships := []string{"330305001", "330305002", "330305003", "330305004", "330305101"}
	for i, code := range townships {
		mustCreate(t, s, ctx, InstitutionInput{Name: "采样点" + string(rune('A'+i)), Type: SamplingPoint, RegionCode: code})
		mustCreate(t, s, ctx, InstitutionInput{Name: "卫生院" + string(rune('A'+i)), Type: TownshipHealthCentre, RegionCode: code})
	}
	last := mustCreate(t, s, ctx, InstitutionInput{Name: "Lab One", Type: Lab, RegionCode: "330305"})
	if _, err := s.SetActive(ctx, last.ID, false); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		f    InstitutionFilter
		want int
	}{
		{"all", InstitutionFilter{}, 11},
		{"type", InstitutionFilter{Type: SamplingPoint}, 5},
		{"region", InstitutionFilter{Region: "330305001"}, 2},
		{"name", InstitutionFilter{Q: "卫生院"}, 5},
		{"name ignores ASCII case", InstitutionFilter{Q: "lab one"}, 1},
		{"like wildcards are literal", InstitutionFilter{Q: "%"}, 0},
		{"inactive", InstitutionFilter{Active: "false"}, 1},
		{"active", InstitutionFilter{Active: "true"}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, _, err := s.List(ctx, tt.f)
			if err != nil || len(items) != tt.want {
				t.Fatalf("List = %d items, %v; want %d", len(items), err, tt.want)
			}
		})
	}

	// Walking pages of 3 gives every institution once, in order.
	seen := map[int64]bool{}
	var prev Institution
	f := InstitutionFilter{Limit: 3}
	for pages := 0; ; pages++ {
		items, next, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if seen[it.ID] {
				t.Fatalf("institution %d twice", it.ID)
			}
			if prev.ID != 0 && (it.RegionCode < prev.RegionCode || it.RegionCode == prev.RegionCode && it.Name < prev.Name) {
				t.Fatalf("out of order: %v after %v", it.Name, prev.Name)
			}
			seen[it.ID], prev = true, it
		}
		if next == "" {
			break
		}
		if pages > 10 {
			t.Fatal("cursor does not advance")
		}
		f.Cursor = next
	}
	if len(seen) != 11 {
		t.Fatalf("paged through %d institutions, want 11", len(seen))
	}

	for _, bad := range []InstitutionFilter{{Type: "x"}, {Region: "3303x"}, {Active: "maybe"}, {Cursor: "!!"}, {Limit: 5000}} {
		if _, _, err := s.List(ctx, bad); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("List(%+v) err = %v, want invalid", bad, err)
		}
	}
}

func TestCountByRegion(t *testing.T) {
	s := newInstitutions(t)
	ctx := admin("330305")
	mustCreate(t, s, ctx, InstitutionInput{Name: "局", Type: Bureau, RegionCode: "330305"})
	mustCreate(t, s, ctx, InstitutionInput{Name: "a", Type: SamplingPoint, RegionCode: "330305001"})
	mustCreate(t, s, ctx, InstitutionInput{Name: "b", Type: SamplingPoint, RegionCode: "330305001001"})
	mustCreate(t, s, ctx, InstitutionInput{Name: "c", Type: SamplingPoint, RegionCode: "330305003"})
	got, err := s.CountByRegion(ctx, "330305")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"330305": 1, "330305001": 2, "330305003": 1}
	if len(got) != len(want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("counts = %v, want %v", got, want)
		}
	}
}

// TestInstitutionChangedHook checks that edits and (de)activation tell the
// sign-in caches, which hold the scopes of the institution's users.
func TestInstitutionChangedHook(t *testing.T) {
	s := newInstitutions(t)
	ctx := admin("330305")
	var changed []int64
	s.Changed = func(id int64) { changed = append(changed, id) }
	in := mustCreate(t, s, ctx, InstitutionInput{Name: "北岙采样点", Type: SamplingPoint, RegionCode: "330305001"})
	if len(changed) != 0 {
		t.Fatalf("creating told the caches %v; nobody can be signed in to a new institution", changed)
	}
	if _, err := s.Update(ctx, in.ID, InstitutionInput{Name: "北岙一号采样点", Type: SamplingPoint, RegionCode: "330305002"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetActive(ctx, in.ID, false); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(changed) != fmt.Sprint([]int64{in.ID, in.ID}) {
		t.Errorf("changed %v, want the institution after the edit and the deactivation", changed)
	}
}
