package screening

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// expectErr fails unless err has the code and, when field is given, names
// field with fieldCode.
func expectErr(t *testing.T, err error, code apperr.Code, field, fieldCode string) {
	t.Helper()
	if !apperr.Is(err, code) {
		t.Fatalf("err = %v, want code %s", err, code)
	}
	if field == "" {
		return
	}
	for _, fe := range apperr.As(err).Fields {
		if fe.Field == field && fe.Code == fieldCode {
			return
		}
	}
	t.Fatalf("err = %v, want field %s with code %s", err, field, fieldCode)
}

// seedResidents registers n residents of region directly (the registry's
// rules are tested there), numbered from seq, and returns their ids.
func seedResidents(f *fixture, region string, seq, n int) []int64 {
	f.t.Helper()
	ids := make([]int64, n)
	at := storage.Millis(start)
	for i := range n {
		err := f.db.QueryRow(`INSERT INTO persons (id_type, id_number, name, sex, birth_date, phone, address, region_code, created_at, updated_at)
			VALUES ('resident_id', $1, $2, 'female', '1950-01-01', '13800138000', '浙江省温州市洞头区北岙街道城中路1号', $3, $4, $4) RETURNING id`,
			residentID(seq+i), fmt.Sprintf("张%03d", seq+i), region, at).Scan(&ids[i])
		if err != nil {
			f.t.Fatalf("insert resident: %v", err)
		}
	}
	return ids
}

// validCampaign is a valid campaign over the given regions.
func validCampaign(regionCodes ...string) NewCampaign {
	return NewCampaign{Name: "全员核酸第1轮", Pathogen: SARSCoV2, RegionCodes: regionCodes, PoolSize: 10,
		StartsAt: start, EndsAt: start.Add(24 * time.Hour)}
}

// townshipAdminA is a bureau admin of township A only.
func townshipAdminA() context.Context {
	return as(&scope.Principal{UserID: 20, Username: "admin_a", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: townshipA})
}

func TestCreateCampaignValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name        string
		change      func(*NewCampaign)
		field, code string
	}{
		{"no name", func(c *NewCampaign) { c.Name = "  " }, "name", "required"},
		{"long name", func(c *NewCampaign) { c.Name = strings.Repeat("轮", 101) }, "name", "campaign.name_length"},
		{"no pathogen", func(c *NewCampaign) { c.Pathogen = "" }, "pathogen", "required"},
		{"unknown pathogen", func(c *NewCampaign) { c.Pathogen = "ebola" }, "pathogen", "campaign.pathogen_unknown"},
		{"no regions", func(c *NewCampaign) { c.RegionCodes = nil }, "region_codes", "required"},
		{"unknown region", func(c *NewCampaign) { c.RegionCodes = []string{"330399"} }, "region_codes", "region_code.unknown"},
		{"malformed region", func(c *NewCampaign) { c.RegionCodes = []string{"33030x"} }, "region_codes", "region_code.unknown"},
		{"city", func(c *NewCampaign) { c.RegionCodes = []string{"3303"} }, "region_codes", "campaign.region_level"},
		{"twice", func(c *NewCampaign) { c.RegionCodes = []string{townshipA, townshipA} }, "region_codes", "campaign.region_duplicate"},
		{"nested", func(c *NewCampaign) { c.RegionCodes = []string{villageA, townshipB, townshipA} }, "region_codes", "campaign.region_nested"},
		{"out of scope", func(c *NewCampaign) { c.RegionCodes = []string{townshipA, otherCity} }, "region_codes", "region_code.out_of_scope"},
		{"pool size", func(c *NewCampaign) { c.PoolSize = 3 }, "pool_size", "campaign.pool_size"},
		{"no start", func(c *NewCampaign) { c.StartsAt = time.Time{} }, "starts_at", "required"},
		{"no end", func(c *NewCampaign) { c.EndsAt = time.Time{} }, "ends_at", "required"},
		{"end before start", func(c *NewCampaign) { c.EndsAt = c.StartsAt }, "ends_at", "campaign.ends_before_start"},
		{"results before start", func(c *NewCampaign) { c.ResultsDueAt = c.StartsAt.Add(-time.Hour) }, "results_due_at", "campaign.results_due_before_start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := validCampaign(district)
			tt.change(&nc)
			_, err := f.svc.CreateCampaign(f.bureauAdmin(), nc)
			expectErr(t, err, apperr.Invalid, tt.field, tt.code)
		})
	}
	// Every bad field is named at once.
	_, err := f.svc.CreateCampaign(f.bureauAdmin(), NewCampaign{PoolSize: 2})
	if e := apperr.As(err); e == nil || len(e.Fields) != 6 {
		t.Errorf("empty campaign: %v, want 6 field errors", err)
	}
	for _, ctx := range []context.Context{f.samplerA(), f.townshipStaffA(), f.epidemiologist(), f.lab()} {
		_, err := f.svc.CreateCampaign(ctx, validCampaign(townshipA))
		expectErr(t, err, apperr.Forbidden, "", "")
	}
	if n := f.count("campaigns") + f.count("campaign_regions") + f.count("coverage"); n != 0 {
		t.Errorf("refused campaigns wrote %d rows", n)
	}
}

func TestCreateCampaignCountsTargeted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	seedResidents(f, villageA, 0, 3)
	seedResidents(f, townshipA, 10, 1)
	seedResidents(f, villageB, 20, 2)
	seedResidents(f, "330305003001", 30, 4) // 东屏街道: not targeted
	seedResidents(f, "230506001001", 40, 1) // another city
	auditBefore := f.count("audit_log")

	nc := validCampaign(villageB, townshipA)
	nc.ResultsDueAt = time.Time{}
	c, err := f.svc.CreateCampaign(f.bureauAdmin(), nc)
	if err != nil {
		t.Fatal(err)
	}
	if c.RegionCode != district || !slices.Equal(c.RegionCodes, []string{townshipA, villageB}) {
		t.Errorf("regions %s %v, want %s [%s %s]", c.RegionCode, c.RegionCodes, district, townshipA, villageB)
	}
	if !c.ResultsDueAt.Equal(nc.EndsAt.Add(12*time.Hour)) || c.Closed() || c.PoolSize != 10 || c.Pathogen != SARSCoV2 {
		t.Errorf("campaign = %+v", c)
	}
	rows, err := f.db.Query("SELECT region_code, targeted, sampled FROM coverage WHERE campaign_id = $1 ORDER BY region_code", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var code string
		var targeted, sampled int
		if err := rows.Scan(&code, &targeted, &sampled); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s=%d/%d", code, targeted, sampled))
	}
	want := []string{townshipA + "=1/0", villageA + "=3/0", villageB + "=2/0"}
	if !slices.Equal(got, want) {
		t.Errorf("coverage rows %v, want %v", got, want)
	}
	if n := f.count("audit_log") - auditBefore; n != 1 {
		t.Errorf("%d audit entries, want 1", n)
	}

	// One village: the campaign's region is the village itself.
	c, err = f.svc.CreateCampaign(f.bureauAdmin(), validCampaign(villageA))
	if err != nil {
		t.Fatal(err)
	}
	if c.RegionCode != villageA {
		t.Errorf("region %s, want %s", c.RegionCode, villageA)
	}
	// A township admin may start one in their township only.
	if _, err := f.svc.CreateCampaign(townshipAdminA(), validCampaign(townshipB)); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("township admin over another township: %v", err)
	}
	if _, err := f.svc.CreateCampaign(townshipAdminA(), validCampaign(villageA)); err != nil {
		t.Errorf("township admin over own village: %v", err)
	}
}

func TestEnclosingRegion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		codes []string
		want  string
	}{
		{[]string{villageA}, villageA},
		{[]string{villageA, "330305001002"}, townshipA},
		{[]string{villageA, villageB}, district},
		{[]string{district, "330302"}, "3303"},
		{[]string{district, otherCity}, ""},
	}
	for _, tt := range tests {
		if got := enclosingRegion(tt.codes); got != tt.want {
			t.Errorf("enclosingRegion(%v) = %q, want %q", tt.codes, got, tt.want)
		}
	}
}

func TestCampaignScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10) // the district
	for name, ctx := range map[string]context.Context{"admin": f.bureauAdmin(), "township": f.townshipStaffA(),
		"sampler": f.samplerA(), "lab": f.lab(), "cdc": f.epidemiologist()} {
		if _, err := f.svc.Campaign(ctx, id); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := f.svc.Campaign(f.outsider(), id); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("other city: %v, want not found", err)
	}
	if list, _, err := f.svc.Campaigns(f.outsider(), CampaignQuery{}); err != nil || len(list) != 0 {
		t.Errorf("other city lists %d campaigns (%v)", len(list), err)
	}

	// A campaign of township B only: township A's people do not see it,
	// until point A's institution takes part in it.
	var onlyB int64
	err := f.db.QueryRow(`INSERT INTO campaigns (name, pathogen, pool_size, starts_at, ends_at, results_due_at, region_code, created_at, updated_at)
		VALUES ('灵昆专项', 'sars_cov_2', 5, $1, $2, $2, $3, $1, $1) RETURNING id`, storage.Millis(start), storage.Millis(start.Add(time.Hour)), townshipB).Scan(&onlyB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec("INSERT INTO campaign_regions (campaign_id, region_code) VALUES ($1, $2)", onlyB, townshipB); err != nil {
		t.Fatal(err)
	}
	for name, ctx := range map[string]context.Context{"township A": f.townshipStaffA(), "sampler A": f.samplerA()} {
		if _, err := f.svc.Campaign(ctx, onlyB); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("%s sees township B's campaign: %v", name, err)
		}
	}
	if _, err := f.svc.Campaign(f.samplerB(), onlyB); err != nil {
		t.Errorf("sampler B: %v", err)
	}
	f.point(onlyB, f.pointInstA, "北岙支援点", townshipB)
	if _, err := f.svc.Campaign(f.samplerA(), onlyB); err != nil {
		t.Errorf("sampler A with a point in the campaign: %v", err)
	}
	if list, _, err := f.svc.Campaigns(f.townshipStaffA(), CampaignQuery{}); err != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("township A lists %v (%v), want only %d", list, err, id)
	}
}

// TestCampaignsPages pages through the campaigns, closes one and filters
// by state.
func TestCampaignsPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ids []int64
	for _, region := range []string{villageA, villageB, district} {
		c, err := f.svc.CreateCampaign(f.bureauAdmin(), validCampaign(region))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	first, next, err := f.svc.Campaigns(f.bureauAdmin(), CampaignQuery{Limit: 2})
	if err != nil || len(first) != 2 || next == "" || first[0].ID != ids[2] || first[1].ID != ids[1] {
		t.Fatalf("first page %v next %q (%v)", first, next, err)
	}
	if !slices.Equal(first[0].RegionCodes, []string{district}) {
		t.Errorf("regions of the page's campaign: %v", first[0].RegionCodes)
	}
	second, next, err := f.svc.Campaigns(f.bureauAdmin(), CampaignQuery{Limit: 2, Cursor: next})
	if err != nil || len(second) != 1 || next != "" || second[0].ID != ids[0] {
		t.Fatalf("second page %v next %q (%v)", second, next, err)
	}
	closeCampaign(t, f, ids[2])
	for state, want := range map[string]int{"": 3, "active": 2, "closed": 1} {
		list, _, err := f.svc.Campaigns(f.bureauAdmin(), CampaignQuery{State: state})
		if err != nil || len(list) != want {
			t.Errorf("state %q: %d campaigns (%v), want %d", state, len(list), err, want)
		}
	}
	_, _, err = f.svc.Campaigns(f.bureauAdmin(), CampaignQuery{State: "done"})
	expectErr(t, err, apperr.Invalid, "state", "campaign.state_unknown")
	_, _, err = f.svc.Campaigns(f.bureauAdmin(), CampaignQuery{Cursor: "!!"})
	expectErr(t, err, apperr.Invalid, "cursor", "cursor.invalid")
}

// closeCampaign checks who may close campaign id, and that closing is
// done once.
func closeCampaign(t *testing.T, f *fixture, id int64) {
	t.Helper()
	_, err := f.svc.CloseCampaign(f.samplerA(), id)
	expectErr(t, err, apperr.Forbidden, "", "")
	// The township admin sees the district's campaign but may not close it.
	if _, err := f.svc.Campaign(townshipAdminA(), id); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CloseCampaign(townshipAdminA(), id)
	expectErr(t, err, apperr.NotFound, "", "")
	_, err = f.svc.CloseCampaign(f.outsider(), id)
	expectErr(t, err, apperr.NotFound, "", "")

	f.clock.Advance(time.Hour)
	c, err := f.svc.CloseCampaign(f.bureauAdmin(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClosedAt == nil || !c.ClosedAt.Equal(f.clock.Now()) {
		t.Fatalf("closed at %v, want %v", c.ClosedAt, f.clock.Now())
	}
	audits := f.count("audit_log")
	f.clock.Advance(time.Hour)
	again, err := f.svc.CloseCampaign(f.bureauAdmin(), id)
	if err != nil || !again.ClosedAt.Equal(*c.ClosedAt) {
		t.Errorf("closing again: %v, %v", again.ClosedAt, err)
	}
	if f.count("audit_log") != audits {
		t.Errorf("closing a closed campaign was audited")
	}
}
