package screening

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

func TestCreateSamplingPoint(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10)
	other := f.campaign(20)
	auditBefore := f.count("audit_log")
	institutions := f.count("institutions")

	sp, err := f.svc.CreateSamplingPoint(f.bureauAdmin(), NewSamplingPoint{CampaignID: id, Name: " 城中社区采样点 ", RegionCode: villageA,
		Address: "城中路1号", CapacityPerHour: 120, Samplers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if sp.Name != "城中社区采样点" || sp.Opens != "07:00" || sp.Closes != "21:00" || sp.CampaignID != id || sp.RegionCode != villageA ||
		sp.CapacityPerDay() != 120*14 || sp.RegionName == "" {
		t.Errorf("point = %+v", sp)
	}
	var typ, region string
	if err := f.db.QueryRow("SELECT type, region_code FROM institutions WHERE id = $1", sp.InstitutionID).Scan(&typ, &region); err != nil {
		t.Fatal(err)
	}
	if typ != string(regions.SamplingPoint) || region != villageA || f.count("institutions") != institutions+1 {
		t.Errorf("institution %s in %s; %d institutions", typ, region, f.count("institutions"))
	}
	if n := f.count("audit_log") - auditBefore; n != 2 {
		t.Errorf("%d audit entries, want 2 (institution, point)", n)
	}
	// The same name in the same region is the same institution.
	again, err := f.svc.CreateSamplingPoint(f.bureauAdmin(), NewSamplingPoint{CampaignID: other, Name: "城中社区采样点", RegionCode: villageA})
	if err != nil {
		t.Fatal(err)
	}
	if again.InstitutionID != sp.InstitutionID || f.count("institutions") != institutions+1 {
		t.Errorf("second campaign's point: institution %d, want %d", again.InstitutionID, sp.InstitutionID)
	}
	_, err = f.svc.CreateSamplingPoint(f.bureauAdmin(), NewSamplingPoint{CampaignID: id, Name: "城中社区采样点", RegionCode: villageA})
	expectErr(t, err, apperr.Invalid, "institution_id", "point.duplicate")
	// A named institution.
	withInst, err := f.svc.CreateSamplingPoint(f.bureauAdmin(), NewSamplingPoint{CampaignID: id, InstitutionID: f.pointInstA, Name: "北岙采样点",
		RegionCode: townshipA, Opens: "08:00", Closes: "18:30"})
	if err != nil || withInst.InstitutionID != f.pointInstA {
		t.Fatalf("point of a named institution: %+v, %v", withInst, err)
	}

	valid := func() NewSamplingPoint {
		return NewSamplingPoint{CampaignID: id, Name: "新点", RegionCode: villageB}
	}
	tests := []struct {
		name        string
		change      func(*NewSamplingPoint)
		field, code string
	}{
		{"no campaign", func(p *NewSamplingPoint) { p.CampaignID = 0 }, "campaign_id", "required"},
		{"unknown campaign", func(p *NewSamplingPoint) { p.CampaignID = 9999 }, "campaign_id", "campaign.unknown"},
		{"no name", func(p *NewSamplingPoint) { p.Name = "" }, "name", "required"},
		{"long name", func(p *NewSamplingPoint) { p.Name = strings.Repeat("点", 101) }, "name", "point.name_length"},
		{"no region", func(p *NewSamplingPoint) { p.RegionCode = "" }, "region_code", "required"},
		{"unknown region", func(p *NewSamplingPoint) { p.RegionCode = "330305999" }, "region_code", "region_code.unknown"},
		{"city", func(p *NewSamplingPoint) { p.RegionCode = "3303" }, "region_code", "point.region_level"},
		{"out of scope", func(p *NewSamplingPoint) { p.RegionCode = otherCity }, "region_code", "region_code.out_of_scope"},
		{"bad opens", func(p *NewSamplingPoint) { p.Opens = "7:00" }, "opens", "point.time_invalid"},
		{"bad closes", func(p *NewSamplingPoint) { p.Closes = "25:00" }, "closes", "point.time_invalid"},
		{"closes first", func(p *NewSamplingPoint) { p.Opens, p.Closes = "12:00", "08:00" }, "closes", "point.closes_before_opens"},
		{"capacity", func(p *NewSamplingPoint) { p.CapacityPerHour = -1 }, "capacity_per_hour", "point.capacity_range"},
		{"samplers", func(p *NewSamplingPoint) { p.Samplers = 5000 }, "samplers", "point.samplers_range"},
		{"long address", func(p *NewSamplingPoint) { p.Address = strings.Repeat("路", 201) }, "address", "point.address_length"},
		{"lab", func(p *NewSamplingPoint) { p.InstitutionID = f.labID }, "institution_id", "point.institution_type"},
		{"no such institution", func(p *NewSamplingPoint) { p.InstitutionID = 9999 }, "institution_id", "point.institution_unknown"},
		{"a lab's name", func(p *NewSamplingPoint) { p.Name, p.RegionCode = "洞头区检测实验室", district }, "name", "point.name_taken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			np := valid()
			tt.change(&np)
			_, err := f.svc.CreateSamplingPoint(f.bureauAdmin(), np)
			expectErr(t, err, apperr.Invalid, tt.field, tt.code)
		})
	}

	// A point must lie in the campaign's regions, and the campaign be open.
	c, err := f.svc.CreateCampaign(f.bureauAdmin(), validCampaign(townshipA))
	if err != nil {
		t.Fatal(err)
	}
	np := valid()
	np.CampaignID = c.ID
	_, err = f.svc.CreateSamplingPoint(f.bureauAdmin(), np)
	expectErr(t, err, apperr.Invalid, "region_code", "point.outside_campaign")
	if _, err := f.svc.CloseCampaign(f.bureauAdmin(), other); err != nil {
		t.Fatal(err)
	}
	np = valid()
	np.CampaignID = other
	_, err = f.svc.CreateSamplingPoint(f.bureauAdmin(), np)
	expectErr(t, err, apperr.Invalid, "campaign_id", "campaign.closed")
	_, err = f.svc.CreateSamplingPoint(f.samplerA(), valid())
	expectErr(t, err, apperr.Forbidden, "", "")
	// A campaign outside the caller's scope is as unknown as a missing one.
	np = valid()
	np.RegionCode = "230506001"
	_, err = f.svc.CreateSamplingPoint(f.outsider(), np)
	expectErr(t, err, apperr.Invalid, "campaign_id", "campaign.unknown")
	// A township admin places points in their township of the district's campaign.
	if _, err := f.svc.CreateSamplingPoint(townshipAdminA(), NewSamplingPoint{CampaignID: id, Name: "上新社区采样点", RegionCode: "330305001002"}); err != nil {
		t.Errorf("township admin: %v", err)
	}
}

func TestSamplingPointScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10)
	a := f.point(id, f.pointInstA, "北岙采样点", townshipA)
	b := f.point(id, f.pointInstB, "灵昆采样点", townshipB)
	tests := []struct {
		name string
		ctx  context.Context
		want []int64
	}{
		{"admin", f.bureauAdmin(), []int64{a, b}},
		{"sampler A", f.samplerA(), []int64{a}},
		{"township B", f.townshipStaffB(), []int64{b}},
		{"other city", f.outsider(), nil},
	}
	for _, tt := range tests {
		list, _, err := f.svc.SamplingPoints(tt.ctx, PointQuery{CampaignID: id})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var got []int64
		for _, sp := range list {
			got = append(got, sp.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s sees %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := f.svc.SamplingPoint(f.samplerA(), b); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("sampler A reads point B: %v", err)
	}
	page, next, err := f.svc.SamplingPoints(f.bureauAdmin(), PointQuery{Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != a || next == "" {
		t.Fatalf("first page %v %q %v", page, next, err)
	}
	page, next, err = f.svc.SamplingPoints(f.bureauAdmin(), PointQuery{Limit: 1, Cursor: next})
	if err != nil || len(page) != 1 || page[0].ID != b || next != "" {
		t.Fatalf("second page %v %q %v", page, next, err)
	}
	samplerPoints(t, f, id, a, b)
}

// samplerPoints checks the points offered to samplers: those of open
// campaigns (a, b of campaign open) in the caller's scope.
func samplerPoints(t *testing.T, f *fixture, open, a, b int64) {
	t.Helper()
	closed := f.campaign(5)
	f.point(closed, f.pointInstA, "北岙采样点", townshipA)
	if _, err := f.db.Exec("UPDATE campaigns SET closed_at = $1 WHERE id = $2", storage.Millis(start), closed); err != nil {
		t.Fatal(err)
	}
	ids := func(ctx context.Context) []int64 {
		t.Helper()
		list, err := f.svc.SamplerPoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, sp := range list {
			if sp.CampaignID != open || sp.PoolSize != 10 || sp.CampaignName == "" {
				t.Errorf("sampler point %+v", sp)
			}
			out = append(out, sp.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := ids(f.samplerA()); !slices.Equal(got, []int64{a}) {
		t.Errorf("sampler A: %v, want [%d]", got, a)
	}
	if got := ids(f.bureauAdmin()); !slices.Equal(got, []int64{a, b}) {
		t.Errorf("admin: %v, want [%d %d]", got, a, b)
	}
	if _, err := f.svc.SamplerPoints(f.lab()); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("lab: %v, want forbidden", err)
	}
	// The campaign ends 48 h after the start; its points stay 12 h more.
	f.clock.Set(start.Add(59 * time.Hour))
	if got := ids(f.samplerA()); len(got) != 1 {
		t.Errorf("11 h after the end: %v", got)
	}
	f.clock.Set(start.Add(61 * time.Hour))
	if got := ids(f.samplerA()); len(got) != 0 {
		t.Errorf("13 h after the end: %v", got)
	}
}

// beijingAt is a time of the fixture's first day, hour:minute in Beijing.
func beijingAt(hour, minute int) time.Time {
	return time.Date(2025, 6, 15, hour, minute, 0, 0, time.FixedZone("CST", 8*3600)).UTC()
}

func TestSlotRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10) // from 09:00 on the 15th for 49 hours
	other := f.campaign(20)
	a := f.point(id, f.pointInstA, "北岙采样点", townshipA)
	b := f.point(id, f.pointInstB, "灵昆采样点", townshipB)
	elsewhere := f.point(other, f.pointInstA, "北岙采样点", townshipA)
	first, err := f.svc.CreateSlot(f.bureauAdmin(), id, NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(10, 0), EndsAt: beijingAt(11, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if first.PointName != "北岙采样点" || first.RegionName == "" || first.CampaignID != id {
		t.Errorf("slot = %+v", first)
	}
	tests := []struct {
		name        string
		slot        NewSlot
		field, code string // "" when accepted
	}{
		{"overlapping", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(10, 30), EndsAt: beijingAt(11, 30)}, "starts_at", "slot.overlap"},
		{"inside", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(10, 15), EndsAt: beijingAt(10, 45)}, "starts_at", "slot.overlap"},
		{"around", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(9, 30), EndsAt: beijingAt(12, 0)}, "starts_at", "slot.overlap"},
		{"right after", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(11, 0), EndsAt: beijingAt(12, 0)}, "", ""},
		{"other buildings", NewSlot{SamplingPointID: a, RegionCode: villageA, Label: "1–6幢", StartsAt: beijingAt(10, 0), EndsAt: beijingAt(11, 0)}, "", ""},
		{"same buildings", NewSlot{SamplingPointID: a, RegionCode: villageA, Label: " 1–6幢 ", StartsAt: beijingAt(10, 30), EndsAt: beijingAt(11, 0)}, "starts_at", "slot.overlap"},
		{"other village", NewSlot{SamplingPointID: a, RegionCode: "330305001002", StartsAt: beijingAt(10, 0), EndsAt: beijingAt(11, 0)}, "", ""},
		{"other point", NewSlot{SamplingPointID: b, RegionCode: villageA, StartsAt: beijingAt(10, 0), EndsAt: beijingAt(11, 0)}, "", ""},
		{"before the campaign", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(8, 0), EndsAt: beijingAt(9, 30)}, "starts_at", "slot.outside_campaign"},
		{"after the campaign", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(10, 0).Add(48 * time.Hour), EndsAt: beijingAt(11, 0).Add(48 * time.Hour)}, "ends_at", "slot.outside_campaign"},
		{"ends first", NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(14, 0), EndsAt: beijingAt(13, 0)}, "ends_at", "slot.ends_before_start"},
		{"no times", NewSlot{SamplingPointID: a, RegionCode: villageA}, "starts_at", "required"},
		{"district", NewSlot{SamplingPointID: a, RegionCode: district, StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)}, "region_code", "slot.region_level"},
		{"unknown village", NewSlot{SamplingPointID: a, RegionCode: "330305999001", StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)}, "region_code", "region_code.unknown"},
		{"no point", NewSlot{RegionCode: villageA, StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)}, "sampling_point_id", "required"},
		{"another campaign's point", NewSlot{SamplingPointID: elsewhere, RegionCode: villageA, StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)}, "sampling_point_id", "sampling_point.unknown"},
		{"long label", NewSlot{SamplingPointID: a, RegionCode: villageA, Label: strings.Repeat("幢", 101), StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)}, "label", "slot.label_length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.CreateSlot(f.bureauAdmin(), id, tt.slot)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			expectErr(t, err, apperr.Invalid, tt.field, tt.code)
		})
	}
	// A village the campaign does not target.
	c, err := f.svc.CreateCampaign(f.bureauAdmin(), validCampaign(townshipA))
	if err != nil {
		t.Fatal(err)
	}
	pa := f.point(c.ID, f.pointInstA, "北岙采样点", townshipA)
	_, err = f.svc.CreateSlot(f.bureauAdmin(), c.ID, NewSlot{SamplingPointID: pa, RegionCode: villageB, StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)})
	expectErr(t, err, apperr.Invalid, "region_code", "slot.region_outside")
	_, err = f.svc.CreateSlot(f.outsider(), id, NewSlot{SamplingPointID: a, RegionCode: "230506001001", StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)})
	expectErr(t, err, apperr.NotFound, "", "")
	_, err = f.svc.CreateSlot(f.townshipStaffA(), id, NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(14, 0), EndsAt: beijingAt(15, 0)})
	expectErr(t, err, apperr.Forbidden, "", "")

	// The slots in time order; a point's notice lists its own.
	slots, _, err := f.svc.Slots(f.bureauAdmin(), id, SlotQuery{SamplingPointID: a})
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 4 || slots[0].ID != first.ID || !slices.IsSortedFunc(slots, func(x, y Slot) int { return x.StartsAt.Compare(y.StartsAt) }) {
		t.Errorf("point A's slots: %+v", slots)
	}
	notice, err := f.svc.PointNotice(f.samplerA(), a, villageA)
	if err != nil || len(notice.Slots) != 3 || notice.Point.ID != a || notice.Campaign.ID != id {
		t.Errorf("notice for village A: %d slots, %v", len(notice.Slots), err)
	}
	if _, err := f.svc.PointNotice(f.samplerA(), b, ""); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("sampler A's notice of point B: %v", err)
	}

	// A township B admin cannot delete point A's slots.
	adminB := as(&scope.Principal{UserID: 21, Username: "admin_b", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: townshipB})
	if _, err := f.svc.DeleteSlot(adminB, first.ID); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("township B admin deletes point A's slot: %v", err)
	}
	if _, err := f.svc.DeleteSlot(f.bureauAdmin(), first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateSlot(f.bureauAdmin(), id, NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(10, 30), EndsAt: beijingAt(11, 0)}); err != nil {
		t.Errorf("the freed window is refused: %v", err)
	}
	if _, err := f.svc.DeleteSlot(f.bureauAdmin(), first.ID); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("deleting twice: %v", err)
	}
	// A closed campaign takes no slots.
	if _, err := f.svc.CloseCampaign(f.bureauAdmin(), id); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.CreateSlot(f.bureauAdmin(), id, NewSlot{SamplingPointID: a, RegionCode: villageA, StartsAt: beijingAt(15, 0), EndsAt: beijingAt(16, 0)})
	expectErr(t, err, apperr.Conflict, "", "")
}
