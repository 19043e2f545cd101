package screening

import (
	"context"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/people"
)

// setCounters writes a coverage counter row directly, as registration and
// results keep them.
func setCounters(f *fixture, campaignID int64, region string, c Counts) {
	f.t.Helper()
	_, err := f.db.Exec(`INSERT INTO coverage (campaign_id, region_code, targeted, sampled, resulted, positive) VALUES ($1, $2, $3, $4, $5, $6)`,
		campaignID, region, c.Targeted, c.Sampled, c.Resulted, c.Positive)
	if err != nil {
		f.t.Fatalf("insert coverage: %v", err)
	}
}

// childCounts returns the children of a coverage by region code.
func childCounts(cov Coverage) map[string]RegionCoverage {
	m := map[string]RegionCoverage{}
	for _, c := range cov.Children {
		m[c.RegionCode] = c
	}
	return m
}

func TestCoverageAggregation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10)
	const village2A, unlistedB = "330305001002", "330305002999"
	setCounters(f, id, villageA, Counts{Targeted: 100, Sampled: 60, Resulted: 50, Positive: 1})
	setCounters(f, id, village2A, Counts{Targeted: 50})
	setCounters(f, id, townshipA, Counts{Targeted: 10, Sampled: 12, Resulted: 12})
	setCounters(f, id, villageB, Counts{Targeted: 80, Sampled: 80, Resulted: 80})
	setCounters(f, id, unlistedB, Counts{Targeted: 5, Sampled: 1})
	other := f.campaign(20)
	setCounters(f, other, villageA, Counts{Targeted: 7, Sampled: 7})
	for _, r := range []struct {
		region        string
		bucket, tubes int
	}{{townshipA, 6, 3}, {townshipB, 24, 2}, {villageA, 0, 1}} {
		if _, err := f.db.Exec("INSERT INTO turnaround (campaign_id, region_code, bucket, tubes) VALUES ($1, $2, $3, $4)", id, r.region, r.bucket, r.tubes); err != nil {
			t.Fatal(err)
		}
	}

	cov, err := f.svc.Coverage(f.bureauAdmin(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Targeted: 245, Sampled: 153, Resulted: 142, Positive: 1, NotSampled: 92}
	if cov.RegionCode != district || cov.Counts != want {
		t.Errorf("district %s: %+v, want %+v", cov.RegionCode, cov.Counts, want)
	}
	if n := len(f.tree.Children(district)); len(cov.Children) != n {
		t.Errorf("%d children, want every township (%d)", len(cov.Children), n)
	}
	kids := childCounts(cov)
	if got := kids[townshipA].Counts; got != (Counts{Targeted: 160, Sampled: 72, Resulted: 62, Positive: 1, NotSampled: 88}) {
		t.Errorf("township A: %+v", got)
	}
	if got := kids[townshipB].Counts; got != (Counts{Targeted: 85, Sampled: 81, Resulted: 80, NotSampled: 4}) {
		t.Errorf("township B: %+v", got)
	}
	if kids[townshipA].Name != "北岙街道" || kids["330305003"].Counts != (Counts{}) {
		t.Errorf("children: %+v", cov.Children)
	}
	wantTurnaround := []TurnaroundBucket{{6, 3}, {12, 0}, {24, 2}, {48, 0}, {0, 1}}
	for i, b := range cov.Turnaround {
		if b != wantTurnaround[i] {
			t.Errorf("turnaround %v, want %v", cov.Turnaround, wantTurnaround)
			break
		}
	}

	// Township A: its villages, and the residents Registered at the
	// township itself in a row of their own.
	cov, err = f.svc.Coverage(f.bureauAdmin(), id, townshipA)
	if err != nil {
		t.Fatal(err)
	}
	kids = childCounts(cov)
	if got := kids[villageA].Counts; got != (Counts{Targeted: 100, Sampled: 60, Resulted: 50, Positive: 1, NotSampled: 40}) {
		t.Errorf("village A: %+v", got)
	}
	if direct := kids[townshipA]; !direct.Direct || direct.NotSampled != 0 || direct.Sampled != 12 {
		t.Errorf("direct row: %+v", direct)
	}
	if last := cov.Children[len(cov.Children)-1]; last.RegionCode != townshipA {
		t.Errorf("the direct row is not last: %+v", last)
	}
	if cov.Turnaround[0].Tubes != 3 || cov.Turnaround[4].Tubes != 1 || cov.Turnaround[2].Tubes != 0 {
		t.Errorf("township A turnaround %v", cov.Turnaround)
	}
	// Township B: a village the data does not list is a child of its own.
	cov, err = f.svc.Coverage(f.bureauAdmin(), id, townshipB)
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := childCounts(cov)[unlistedB]; !ok || u.Targeted != 5 || u.Name != "" {
		t.Errorf("unlisted village: %+v (%v)", u, ok)
	}
	// A village has no children.
	cov, err = f.svc.Coverage(f.bureauAdmin(), id, villageA)
	if err != nil || cov.Targeted != 100 || len(cov.Children) != 0 {
		t.Errorf("village: %+v, %v", cov, err)
	}
}

func TestCoverageScope(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10)
	setCounters(f, id, villageA, Counts{Targeted: 100, Sampled: 60})
	setCounters(f, id, villageB, Counts{Targeted: 80, Sampled: 80})

	// A township user sees the district's campaign, but only its township.
	cov, err := f.svc.Coverage(f.townshipStaffA(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if cov.RegionCode != townshipA || cov.Targeted != 100 || cov.NotSampled != 40 {
		t.Errorf("township A default: %s %+v", cov.RegionCode, cov.Counts)
	}
	for name, region := range map[string]string{"district": district, "township B": townshipB, "village B": villageB, "other city": otherCity} {
		if _, err := f.svc.Coverage(f.townshipStaffA(), id, region); !apperr.Is(err, apperr.NotFound) {
			t.Errorf("township A asks %s: %v, want not found", name, err)
		}
	}
	if cov, err := f.svc.Coverage(f.townshipStaffA(), id, villageA); err != nil || cov.Targeted != 100 {
		t.Errorf("township A asks its village: %+v %v", cov, err)
	}
	if _, err := f.svc.Coverage(f.bureauAdmin(), id, "33030"); !apperr.Is(err, apperr.Invalid) {
		t.Errorf("malformed region: %v", err)
	}
	if _, err := f.svc.Coverage(f.bureauAdmin(), id, otherCity); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("admin asks another city: %v", err)
	}
	if _, err := f.svc.Coverage(f.outsider(), id, ""); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("other city's admin: %v", err)
	}
	if _, err := f.svc.Coverage(f.samplerA(), id, ""); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("sampler: %v, want forbidden", err)
	}
	// The dashboard counts recalls in scope only.
	d, err := f.svc.Dashboard(f.townshipStaffA(), id, "")
	if err != nil || d.Recalls != 0 || d.Coverage.RegionCode != townshipA {
		t.Errorf("dashboard: %+v %v", d, err)
	}
}

// notSampledIDs pages through the not-sampled list and returns its ids.
func notSampledIDs(t *testing.T, f *fixture, ctx context.Context, id int64, region string, limit int) []int64 {
	t.Helper()
	var ids []int64
	q := NotSampledQuery{RegionCode: region, Limit: limit}
	for range 10 {
		page, next, err := f.svc.NotSampled(ctx, id, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		if next.IsZero() {
			return ids
		}
		q.Cursor = next
	}
	t.Fatal("the list does not end")
	return nil
}

func TestNotSampled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := seedResidents(f, villageA, 0, 3)
	b := seedResidents(f, villageB, 10, 2)
	seedResidents(f, "230506001001", 20, 1)
	c, err := f.svc.CreateCampaign(f.bureauAdmin(), validCampaign(district))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec("INSERT INTO campaign_persons (campaign_id, person_id, region_code, first_sampled_at) VALUES ($1, $2, $3, 0)",
		c.ID, a[1], villageA); err != nil {
		t.Fatal(err)
	}
	audits := f.count("audit_log")
	got := notSampledIDs(t, f, f.bureauAdmin(), c.ID, "", 3)
	want := []int64{a[0], a[2], b[0], b[1]} // village by village
	if len(got) != len(want) {
		t.Fatalf("not sampled %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("not sampled %v, want %v", got, want)
		}
	}
	if n := f.count("audit_log") - audits; n != 2 {
		t.Errorf("%d audit entries for 2 pages, want 2", n)
	}
	page, _, err := f.svc.NotSampled(f.bureauAdmin(), c.ID, NotSampledQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if v := page[0].Masked(); v.Name != "张***" || !strings.Contains(v.IDNumber, "*") || v.Age == nil || page[0].RegionName == "" {
		t.Errorf("masked view %+v", v)
	}
	// A township user: its residents only, and nothing beyond.
	if got := notSampledIDs(t, f, f.townshipStaffA(), c.ID, "", 50); len(got) != 2 || got[0] != a[0] {
		t.Errorf("township A's list %v", got)
	}
	if _, _, err := f.svc.NotSampled(f.townshipStaffA(), c.ID, NotSampledQuery{RegionCode: townshipB}); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("township A asks for B's list: %v", err)
	}
	if _, _, err := f.svc.NotSampled(f.samplerA(), c.ID, NotSampledQuery{}); !apperr.Is(err, apperr.Forbidden) {
		t.Errorf("sampler: %v", err)
	}
	// A campaign of township A only leaves township B's residents out,
	// even on the district admin's list.
	onlyA, err := f.svc.CreateCampaign(f.bureauAdmin(), validCampaign(townshipA))
	if err != nil {
		t.Fatal(err)
	}
	if got := notSampledIDs(t, f, f.bureauAdmin(), onlyA.ID, district, 50); len(got) != 3 {
		t.Errorf("township A's campaign lists %v", got)
	}
	// Its coverage under the district shows township A alone.
	if cov, err := f.svc.Coverage(f.bureauAdmin(), onlyA.ID, district); err != nil || len(cov.Children) != 1 || cov.Children[0].RegionCode != townshipA || cov.Targeted != 3 {
		t.Errorf("township A's campaign under the district: %+v %v", cov, err)
	}
	// The export is audited before its rows and lists the same people.
	audits = f.count("audit_log")
	var exported []people.Person
	err = f.svc.ExportNotSampled(f.bureauAdmin(), c.ID, NotSampledQuery{Limit: 1}, "csv", func(p people.Person) error {
		exported = append(exported, p)
		return nil
	})
	if err != nil || len(exported) != 4 {
		t.Fatalf("exported %d (%v), want 4", len(exported), err)
	}
	var action string
	if err := f.db.QueryRow("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1").Scan(&action); err != nil {
		t.Fatal(err)
	}
	if f.count("audit_log") != audits+1 || action != "screening.not_sampled.export" {
		t.Errorf("export audit: %q, %d entries", action, f.count("audit_log")-audits)
	}
}

func TestPlanNumbers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.campaign(10) // 49 hours: 3 days
	setCounters(f, id, villageA, Counts{Targeted: 5000})
	setCounters(f, id, villageB, Counts{Targeted: 700})
	if _, err := f.svc.CreateSamplingPoint(f.bureauAdmin(), NewSamplingPoint{CampaignID: id, InstitutionID: f.pointInstA, Name: "北岙采样点",
		RegionCode: villageA, CapacityPerHour: 100, Samplers: 10}); err != nil {
		t.Fatal(err)
	}
	f.point(id, f.pointInstB, "灵昆采样点", villageB)

	plan, err := f.svc.Plan(f.bureauAdmin(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if plan.Days != 3 || plan.RegionCode != district {
		t.Fatalf("plan over %d days of %s", plan.Days, plan.RegionCode)
	}
	rows := map[string]PlanRow{}
	for _, r := range plan.Rows {
		rows[r.RegionCode] = r
	}
	tests := []struct {
		name string
		got  PlanFigure
		want PlanFigure
	}{
		// 5,000 residents: 2–3 points, 5 samplers over 3 days
		// (5,000 / 1,080); 100 an hour for 14 hours a day is 4,200 in 3 days.
		{"township A", rows[townshipA].PlanFigure, PlanFigure{Residents: 5000, PointCount: 1, PointsNeeded: 2, PointsIdeal: 3, Samplers: 10,
			SamplersNeeded: 5, CapacityPerDay: 1400, PointShortfall: 1, CapacityShortfall: true}},
		{"township B", rows[townshipB].PlanFigure, PlanFigure{Residents: 700, PointCount: 1, PointsNeeded: 1, PointsIdeal: 1,
			SamplersNeeded: 1, SamplerShortfall: 1}},
		{"no residents", rows["330305003"].PlanFigure, PlanFigure{}},
		{"total", plan.Total, PlanFigure{Residents: 5700, PointCount: 2, PointsNeeded: 3, PointsIdeal: 4, Samplers: 10, SamplersNeeded: 6,
			CapacityPerDay: 1400, PointShortfall: 1, SamplerShortfall: 1, CapacityShortfall: true}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s:\n got  %+v\n want %+v", tt.name, tt.got, tt.want)
		}
	}
	if len(rows[townshipA].Points) != 1 || rows[townshipA].Points[0].Name != "北岙采样点" || !rows[townshipA].Short() || rows["330305003"].Short() {
		t.Errorf("township A's row: %+v", rows[townshipA])
	}
	// Township A's staff plan their villages and see no point of B.
	plan, err = f.svc.Plan(f.townshipStaffA(), id, "")
	if err != nil {
		t.Fatal(err)
	}
	if plan.RegionCode != townshipA || plan.Total.Residents != 5000 || plan.Total.PointCount != 1 {
		t.Errorf("township A's plan: %s %+v", plan.RegionCode, plan.Total)
	}
	for _, r := range plan.Rows {
		if r.RegionCode == villageA && (r.Residents != 5000 || r.PointCount != 1) {
			t.Errorf("village A: %+v", r)
		}
	}
	if _, err := f.svc.Plan(f.townshipStaffA(), id, townshipB); !apperr.Is(err, apperr.NotFound) {
		t.Errorf("township A plans B: %v", err)
	}
}
