package auth

import (
	"strconv"
	"strings"
	"testing"
	"time"

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
		{"the city above", &scope.Principal{UserID: 999, Username: "district.admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: district}, in("3303", 0), apperr.Invalid, "region_code"},
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
	}{{adminA, in(townshipA, 0)}, {adminA, in("330305001001", 0)}, {adminA, in("", instA)}, {instAdmin, in("", instA)},
		{scope.System(), in("3303", 0)}} { // a city health commission (市卫健委) user
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
		{UserFilter{Role: scope.InstitutionStaff}, []string{"staff.inst"}}, // a role code with '_' in it
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
	if _, err := e.svc.Login(sys(), Attempt{Username: "lab.a", Password: password}); err != ErrLoginFailed {
		t.Errorf("disabled user login = %v; want ErrLoginFailed", err)
	}
	if err := e.svc.SetDisabled(ctx, inA.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ResetPassword(ctx, inA.ID, "short"); fieldCodes(err)["password"] != "password.too_short" {
		t.Errorf("reset to a short password = %v", err)
	}
	// The reset revokes the user's tokens; the admin's own stay.
	_, labSecret, err := e.svc.CreateToken(as(principal(inA)), inA.ID, "laptop", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, adminSecret, err := e.svc.CreateToken(ctx, adminA.UserID, "admin", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.tokenPrincipal(sys(), labSecret); err != nil {
		t.Fatalf("token before the reset: %v", err)
	}
	if err := e.svc.ResetPassword(ctx, inA.ID, "a new long password"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Login(sys(), Attempt{Username: "lab.a", Password: "a new long password"}); err != nil {
		t.Errorf("login with the reset password: %v", err)
	}
	if _, err := e.svc.tokenPrincipal(sys(), labSecret); !apperr.Is(err, apperr.Unauthorized) {
		t.Errorf("the user's token after the reset: %v; want unauthorized", err)
	}
	if _, err := e.svc.tokenPrincipal(sys(), adminSecret); err != nil {
		t.Errorf("another user's token after the reset: %v", err)
	}
	var detail string
	if err := e.db.QueryRow("SELECT detail FROM audit_log WHERE action = 'user.reset_password'").Scan(&detail); err != nil ||
		!strings.Contains(detail, "API tokens revoked: 1") {
		t.Errorf("reset audit detail = %q, %v; want it to name the revoked token", detail, err)
	}
}

func TestUpdateUser(t *testing.T) {
	e := newEnv(t, false)
	adminA := principal(e.user("admin.a", townshipA, 0, scope.BureauAdmin))
	sampler := principal(e.user("sampler.a", townshipA, 0, scope.Sampler))
	labA := e.user("lab.a", townshipA, 0, scope.Lab)
	labB := e.user("lab.b", townshipB, 0, scope.Lab)
	instA := e.institution("北岙卫生院", townshipA)
	instB := e.institution("灵昆卫生院", townshipB)
	str := func(s string) *string { return &s }
	id := func(n int64) *int64 { return &n }
	roles := func(rs ...scope.Role) *[]scope.Role { return &rs }
	tests := []struct {
		name   string
		caller *scope.Principal
		target int64
		in     UserChange
		code   apperr.Code
		fields map[string]string
	}{
		{"out of scope", adminA, labB.ID, UserChange{Roles: roles(scope.Sampler)}, apperr.NotFound, nil},
		{"non-admin", sampler, labA.ID, UserChange{Roles: roles(scope.Sampler)}, apperr.Forbidden, nil},
		{"wider region", adminA, labA.ID, UserChange{RegionCode: str(district)}, apperr.Invalid, map[string]string{"region_code": "region_code.out_of_scope"}},
		{"other township", adminA, labA.ID, UserChange{RegionCode: str(townshipB)}, apperr.Invalid, map[string]string{"region_code": "region_code.out_of_scope"}},
		{"institution elsewhere", adminA, labA.ID, UserChange{InstitutionID: id(instB)}, apperr.Invalid, map[string]string{"institution_id": "user_institution.unknown"}},
		{"both scopes", adminA, labA.ID, UserChange{RegionCode: str(townshipA), InstitutionID: id(instA)}, apperr.Invalid, map[string]string{"institution_id": "scope.one_only"}},
		{"no roles, long name", adminA, labA.ID, UserChange{Roles: roles(), DisplayName: str(strings.Repeat("名", 101))}, apperr.Invalid,
			map[string]string{"roles": "required", "display_name": "display_name.too_long"}},
		{"unknown role", adminA, labA.ID, UserChange{Roles: roles("root")}, apperr.Invalid, map[string]string{"roles": "role.unknown"}},
		{"self-demotion", adminA, adminA.UserID, UserChange{Roles: roles(scope.Epidemiologist)}, apperr.Invalid, map[string]string{"roles": "user.own_admin_role"}},
		{"self narrowing", adminA, adminA.UserID, UserChange{RegionCode: str("330305001001")}, apperr.Invalid, map[string]string{"region_code": "user.own_scope"}},
		{"self to an institution", adminA, adminA.UserID, UserChange{InstitutionID: id(instA)}, apperr.Invalid, map[string]string{"institution_id": "user.own_scope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := e.svc.GetUser(sys(), tt.target)
			_, err := e.svc.UpdateUser(as(tt.caller), tt.target, tt.in)
			if apperr.CodeOf(err) != tt.code {
				t.Fatalf("UpdateUser = %v; want %s", err, tt.code)
			}
			if tt.fields != nil && !equalMaps(fieldCodes(err), tt.fields) {
				t.Errorf("UpdateUser errors = %v; want %v", fieldCodes(err), tt.fields)
			}
			if after, _ := e.svc.GetUser(sys(), tt.target); formatRoles(after.Roles) != formatRoles(before.Roles) || after.RegionCode != before.RegionCode ||
				after.InstitutionID != before.InstitutionID || after.DisplayName != before.DisplayName {
				t.Errorf("a refused change was written: %+v", after)
			}
		})
	}

	// Allowed: roles, a village, then an institution, then back to a region.
	ctx := as(adminA)
	u, err := e.svc.UpdateUser(ctx, labA.ID, UserChange{Roles: roles(scope.Lab, scope.Sampler, scope.Lab), RegionCode: str("330305001001"), DisplayName: str(" 王检验 ")})
	if err != nil {
		t.Fatal(err)
	}
	if formatRoles(u.Roles) != "sampler,lab" || u.RegionCode != "330305001001" || u.InstitutionID != 0 || u.DisplayName != "王检验" {
		t.Errorf("updated user = %+v", u)
	}
	if u, err = e.svc.UpdateUser(ctx, labA.ID, UserChange{InstitutionID: id(instA)}); err != nil || u.InstitutionID != instA || u.RegionCode != townshipA {
		t.Errorf("move to an institution = %+v, %v", u, err)
	}
	// The form sends the unchanged scope back with a name change: allowed,
	// and only the name is recorded as changed.
	if u, err = e.svc.UpdateUser(ctx, labA.ID, UserChange{DisplayName: str("王二"), RegionCode: str(""), InstitutionID: id(instA)}); err != nil || u.DisplayName != "王二" || u.InstitutionID != instA {
		t.Errorf("rename with the same scope = %+v, %v", u, err)
	}
	if u, err = e.svc.UpdateUser(ctx, labA.ID, UserChange{RegionCode: str(townshipA)}); err != nil || u.InstitutionID != 0 || u.RegionCode != townshipA {
		t.Errorf("back to a region = %+v, %v", u, err)
	}
	// An admin may change their own name, and keep their scope and role.
	if _, err := e.svc.UpdateUser(ctx, adminA.UserID, UserChange{DisplayName: str("管理员"), Roles: roles(scope.BureauAdmin, scope.Lab), RegionCode: str(townshipA)}); err != nil {
		t.Errorf("admin edits own name and adds a role: %v", err)
	}

	var details []string
	rows, err := e.db.Query("SELECT detail FROM audit_log WHERE action = 'user.update' AND object_id = $1 ORDER BY id", strconv.FormatInt(labA.ID, 10))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		details = append(details, d)
	}
	want := []string{
		"display_name; roles lab -> sampler,lab; scope region 330305001 -> region 330305001001",
		"scope region 330305001001 -> institution " + strconv.FormatInt(instA, 10),
		"display_name",
		"scope institution " + strconv.FormatInt(instA, 10) + " -> region 330305001",
	}
	if strings.Join(details, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit details:\n%s\nwant:\n%s", strings.Join(details, "\n"), strings.Join(want, "\n"))
	}
	for _, d := range details {
		if strings.Contains(d, "王") {
			t.Errorf("audit detail %q holds the display name", d)
		}
	}
}
