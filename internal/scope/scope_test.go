package scope

import (
	"context"
	"testing"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/storage"
)

func TestNextPrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"330305", "330306", true},
		{"3303", "3304", true},
		{"339", "34", true},
		{"3399", "34", true},
		{"99", "", false},
		{"330305109", "33030511", true},
	} {
		got, ok := nextPrefix(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("nextPrefix(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestRegionPrefixMatchesStringPrefix checks the range condition against the
// plain prefix rule it stands for, over codes around the boundaries.
func TestRegionPrefixMatchesStringPrefix(t *testing.T) {
	codes := []string{"33", "3303", "330305", "330305001", "330305001001", "330306", "3304", "339999", "34", "330304999", "3303059"}
	for _, root := range []string{"3303", "330305", "330305001", "33", "3399"} {
		upper, ok := nextPrefix(root)
		for _, c := range codes {
			inRange := c >= root && (!ok || c < upper)
			hasPrefix := len(c) >= len(root) && c[:len(root)] == root
			if inRange != hasPrefix {
				t.Errorf("root %s code %s: range says %v, prefix says %v", root, c, inRange, hasPrefix)
			}
		}
	}
}

func TestWhere(t *testing.T) {
	var a storage.Args
	p := &Principal{UserID: 1, RegionCode: "330305"}
	if got := p.Where(&a, "region_code", "institution_id"); got != "(region_code >= $1 AND region_code < $2)" {
		t.Errorf("region scope: %s", got)
	}
	a = storage.Args{}
	p = &Principal{UserID: 1, RegionCode: "330305", InstitutionID: 7}
	if got := p.Where(&a, "region_code", "institution_id"); got != "institution_id = $1" || a.Values()[0] != int64(7) {
		t.Errorf("institution scope: %s %v", got, a.Values())
	}
	a = storage.Args{}
	if got := (&Principal{UserID: 1}).Where(&a, "r", "i"); got != "1=0" {
		t.Errorf("empty scope must see nothing, got %s", got)
	}
	if got := System().Where(&a, "r", "i"); got != "1=1" {
		t.Errorf("system: %s", got)
	}
}

func TestCoversScope(t *testing.T) {
	region := &Principal{RegionCode: "330305001"}
	inst := &Principal{RegionCode: "330305001", InstitutionID: 9}
	for _, tc := range []struct {
		p    *Principal
		code string
		inst int64
		want bool
	}{
		{region, "330305001002", 0, true},
		{region, "330305001", 0, true},
		{region, "330305", 0, false},
		{region, "330305002", 0, false},
		{region, "", 0, false},
		{inst, "330305001", 9, true},
		{inst, "330305001", 0, false},
		{inst, "330305001", 8, false},
		{&Principal{UserID: 3}, "330305001", 0, false}, // no region: nothing, as Where
	} {
		if got := tc.p.CoversScope(tc.code, tc.inst); got != tc.want {
			t.Errorf("%+v covers (%s,%d) = %v, want %v", tc.p, tc.code, tc.inst, got, tc.want)
		}
	}
}

func TestFromContextFailsClosed(t *testing.T) {
	if _, err := FromContext(context.Background()); err == nil {
		t.Fatal("no principal must be an error")
	}
	p := &Principal{UserID: 3}
	got, err := FromContext(WithPrincipal(context.Background(), p))
	if err != nil || got != p {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestRequire(t *testing.T) {
	if _, err := Require(context.Background(), Sampler); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Fatalf("nobody: %v, want unauthorized", err)
	}
	p := &Principal{UserID: 3, Roles: []Role{Lab}}
	ctx := WithPrincipal(context.Background(), p)
	if _, err := Require(ctx, Sampler, Inspector); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a lab as sampler: %v, want forbidden", err)
	}
	if got, err := Require(ctx, Sampler, Lab); err != nil || got != p {
		t.Fatalf("a lab as lab: %v, %v", got, err)
	}
}

func TestWhereOverlaps(t *testing.T) {
	var a storage.Args
	p := &Principal{UserID: 1, RegionCode: "330305001"}
	got := p.WhereOverlaps(&a, "c")
	if got != "((c >= $1 AND c < $2) OR c IN ($3, $4, $5))" {
		t.Fatalf("township: %s", got)
	}
	want := []any{"330305001", "330305002", "33", "3303", "330305"}
	for i, v := range a.Values() {
		if v != want[i] {
			t.Errorf("arg %d = %v, want %v", i+1, v, want[i])
		}
	}
	a = storage.Args{}
	if got := (&Principal{UserID: 1, RegionCode: "33"}).WhereOverlaps(&a, "c"); got != "(c >= $1 AND c < $2)" {
		t.Errorf("province: %s", got)
	}
	if got := (&Principal{UserID: 1}).WhereOverlaps(&a, "c"); got != "1=0" {
		t.Errorf("empty scope must see nothing, got %s", got)
	}
	if got := System().WhereOverlaps(&a, "c"); got != "1=1" {
		t.Errorf("system: %s", got)
	}
}
