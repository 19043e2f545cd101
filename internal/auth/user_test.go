package auth

import (
	"testing"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
)

func TestCreateUserValidation(t *testing.T) {
	e := newEnv(t, false)
	inst := e.institution("灵昆卫生院", townshipB)
	tests := []struct {
		name string
		in   NewUser
		want map[string]string
	}{
		{"ok", NewUser{Username: "ok.user", Password: password, Roles: []scope.Role{scope.Sampler}, RegionCode: townshipA}, nil},
		{"ok institution", NewUser{Username: "inst.user", Password: password, Roles: []scope.Role{scope.Lab}, InstitutionID: inst}, nil},
		{"everything wrong", NewUser{Username: "A!", Password: "short"},
			map[string]string{"username": "username.format", "password": "password.too_short", "roles": "required", "region_code": "scope.required"}},
		{"too short username", NewUser{Username: "ab", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: townshipA},
			map[string]string{"username": "username.format"}},
		{"password is username", NewUser{Username: "zhang.san.2024", Password: "zhang.san.2024", Roles: []scope.Role{scope.Lab}, RegionCode: townshipA},
			map[string]string{"password": "password.same_as_username"}},
		{"unknown role", NewUser{Username: "r.user", Password: password, Roles: []scope.Role{"root"}, RegionCode: townshipA},
			map[string]string{"roles": "role.unknown"}},
		{"both scopes", NewUser{Username: "b.user", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: townshipA, InstitutionID: inst},
			map[string]string{"institution_id": "scope.one_only"}},
		{"unknown region", NewUser{Username: "u.user", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: "330305999"},
			map[string]string{"region_code": "region_code.unknown"}},
		{"province", NewUser{Username: "p.user", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: "33"},
			map[string]string{"region_code": "user_region.level"}},
		{"unknown institution", NewUser{Username: "i.user", Password: password, Roles: []scope.Role{scope.Lab}, InstitutionID: 9999},
			map[string]string{"institution_id": "user_institution.unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := e.svc.CreateUser(sys(), tt.in)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CreateUser: %v", err)
				}
				if u.ID == 0 || u.Username != tt.in.Username || len(u.Roles) != len(tt.in.Roles) {
					t.Errorf("created %+v", u)
				}
				if tt.in.InstitutionID != 0 && (u.RegionCode != townshipB || u.InstitutionID != inst) {
					t.Errorf("institution user scope = %q/%d; want the institution's region %s", u.RegionCode, u.InstitutionID, townshipB)
				}
				return
			}
			if got := fieldCodes(err); !equalMaps(got, tt.want) {
				t.Errorf("CreateUser errors = %v (%v); want %v", got, err, tt.want)
			}
		})
	}
	if _, err := e.svc.CreateUser(sys(), NewUser{Username: "OK.User ", Password: password, Roles: []scope.Role{scope.Lab}, RegionCode: townshipA}); fieldCodes(err)["username"] != "username.taken" {
		t.Errorf("duplicate username (case-folded): %v; want username.taken", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestCreateUserGrantsNoWiderThanOwn(t *testing.T) {
	e := newEnv(t, false)
	adminA := principal(e.user("admin.a", townshipA, 0, scope.BureauAdmin))
	sampler := principal(e.user("sampler.a", townshipA, 0, scope.Sampler))
	instA := e.institution("北岙卫生院", townshipA)
	instB := e.institution("灵昆卫生院", townshipB)
	instAdmin := principal(e.user("admin.inst", "", instA, scope.BureauAdmin))
	in := func(region string, inst int64) NewUser {
		return NewUser{Username: "new.user", Password: password, Roles: []scope.Role{scope.Epidemiologist}, RegionCode: region, InstitutionID: inst}
	}
	tests := []struct {
		name   string
		caller *scope.Principal
		in     NewUser
		code   apperr.Code
		field  string
	}{
		{"other township", adminA, in(townshipB, 0), apperr.Invalid, "region_code"},
		{"whole district", adminA, in(district, 0), apperr.Invalid, "region_code"},
		{"institution elsewhere", adminA, in("", instB), apperr.Invalid, "institution_id"},
		{"non-admin", sampler, in(townshipA, 0), apperr.Forbidden, ""},
		{"institution admin, region", instAdmin, in(townshipA, 0), apperr.Invalid, "region_code"},
		{"institution admin, other institution", instAdmin, in("", instB), apperr.Invalid, "institution_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.CreateUser(as(tt.caller), tt.in)
			if apperr.CodeOf(err) != tt.code {
				t.Fatalf("CreateUser = %v; want %s", err, tt.code)
			}
			if tt.field != "" && fieldCodes(err)[tt.field] == "" {
				t.Errorf("CreateUser = %v; want an error naming %s", err, tt.field)
			}
		})
	}
	// Within scope it works: own township, a village in it, own institution.
	for i, ok := range []struct {
		caller *scope.Principal
		in     NewUser
	}{{adminA, in(townshipA, 0)}, {adminA, in("330305001001", 0)}, {adminA, in("", instA)}, {instAdmin, in("", instA)}} {
		ok.in.Username = "ok" + string(rune('a'+i)) + ".user"
		if _, err := e.svc.CreateUser(as(ok.caller), ok.in); err != nil {
			t.Errorf("CreateUser(%+v) within scope: %v", ok.in, err)
		}
	}
}

func TestListUsersScoped(t *testing.T) {
	e := newEnv(t, false)
	adminA := principal(e.user("admin.a", townshipA, 0, scope.BureauAdmin))
	e.user("lab.a", townshipA, 0, scope.Lab)
	e.user("sampler.a", "330305001001", 0, scope.Sampler, scope.Lab)
	e.user("lab.b", townshipB, 0, scope.Lab)
	e.user("admin.district", district, 0, scope.BureauAdmin)
	inst := e.institution("北岙卫生院", townshipA)
	e.user("staff.inst", "", inst, scope.InstitutionStaff)

	names := func(us []User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.Username)
		}
		return out
	}
	tests := []struct {
		f    UserFilter
		want []string
	}{
		{UserFilter{}, []string{"admin.a", "lab.a", "sampler.a", "staff.inst"}},
		{UserFilter{Role: scope.Lab}, []string{"lab.a", "sampler.a"}},
		{UserFilter{Q: "SAMP"}, []string{"sampler.a"}},
		{UserFilter{Q: "_"}, nil}, // a LIKE wildcard is matched literally
	}
	for _, tt := range tests {
		got, _, err := e.svc.ListUsers(as(adminA), tt.f, "")
		if err != nil {
			t.Fatal(err)
		}
		if g := names(got); joinNames(g) != joinNames(tt.want) {
			t.Errorf("ListUsers(%+v) = %v; want %v", tt.f, g, tt.want)
		}
	}
	// Paging with a cursor returns every row once.
	var all []string
	cursor := ""
	for range 10 {
		page, next, err := e.svc.ListUsers(sys(), UserFilter{Limit: 2}, cursor)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, names(page)...)
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(all) != 6 {
		t.Errorf("paged through %v; want 6 users", all)
	}
	if _, _, err := e.svc.ListUsers(as(&scope.Principal{UserID: 99, Roles: []scope.Role{scope.Lab}, RegionCode: district}), UserFilter{}, ""); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("ListUsers by a non-admin = %v; want forbidden", err)
	}
}

func joinNames(s []string) string {
	out := ""
	for _, x := range s {
		out += x + ","
	}
	return out
}

func TestAdminActionsScoped(t *testing.T) {
	e := newEnv(t, false)
	adminA := principal(e.user("admin.a", townshipA, 0, scope.BureauAdmin))
	inA := e.user("lab.a", townshipA, 0, scope.Lab)
	inB := e.user("lab.b", townshipB, 0, scope.Lab)
	ctx := as(adminA)
	if _, err := e.svc.GetUser(ctx, inB.ID); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("GetUser out of scope = %v; want not found", err)
	}
	if err := e.svc.SetDisabled(ctx, inB.ID, true); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("disable out of scope = %v; want not found", err)
	}
	if err := e.svc.ResetPassword(ctx, inB.ID, "a new long password"); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("reset out of scope = %v; want not found", err)
	}
	if err := e.svc.SetDisabled(ctx, adminA.UserID, true); !apperr.Is(err, apperr.Conflict) {
		t.Errorf("disable self = %v; want conflict", err)
	}
	if err := e.svc.SetDisabled(ctx, inA.ID, true); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.svc.GetUser(ctx, inA.ID); !u.Disabled {
		t.Error("user not disabled")
	}
	if _, err := e.svc.Login(sys(), "lab.a", password, "", ""); err != ErrLoginFailed {
		t.Errorf("disabled user login = %v; want ErrLoginFailed", err)
	}
	if err := e.svc.SetDisabled(ctx, inA.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ResetPassword(ctx, inA.ID, "short"); fieldCodes(err)["password"] != "password.too_short" {
		t.Errorf("reset to a short password = %v", err)
	}
	if err := e.svc.ResetPassword(ctx, inA.ID, "a new long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(sys(), "lab.a", "a new long password", "", ""); err != nil {
		t.Errorf("login with the reset password: %v", err)
	}
}
