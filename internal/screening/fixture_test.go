package screening

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

// The test regions: 洞头区 and two of its townships, each with a village.
const (
	district  = "330305"
	townshipA = "330305001"    // 北岙街道
	villageA  = "330305001001" // 城中社区
	townshipB = "330305002"    // 灵昆街道
	villageB  = "330305002001" // 镇中居委会
	otherCity = "230506"
)

// start is the fixture clock's first reading: 15 June 2025, 10:00 in Beijing.
var start = time.Date(2025, 6, 15, 2, 0, 0, 0, time.UTC)

var loadTree = sync.OnceValues(regions.LoadTree)

// clock is a settable test clock, safe for concurrent use.
type clock struct{ ms atomic.Int64 }

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()).UTC() }
func (c *clock) Set(t time.Time)         { c.ms.Store(t.UnixMilli()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// fixture is a fresh screening module on a fresh database, with the
// institutions of a district: its bureau and CDC, a lab, two sampling
// point institutions (A in township A, B in township B).
type fixture struct {
	t     testing.TB
	db    *storage.DB
	tree  *regions.Tree
	clock *clock
	svc   *Service
	audit *audit.Log

	bureauID, cdcID, labID, lab2ID, pointInstA, pointInstB int64
}

// newFixture builds the module over a fresh database; opts, when given,
// tunes the registration group commit. There is no background filer.
func newFixture(t testing.TB, opts ...Options) *fixture {
	t.Helper()
	// Registrations stay queued until a test, a read or a result files
	// them, so that a test reading the tables directly fails every time,
	// not now and then, when it forgets to file first (filed). The
	// background filer has tests of its own.
	o := Options{holdFiling: true}
	if len(opts) > 0 {
		o = opts[0]
		o.holdFiling = true
	}
	tree, err := loadTree()
	if err != nil {
		t.Fatalf("load tree: %v", err)
	}
	db := storagetest.Open(t, regions.Migrations, audit.Migrations, settings.Migrations, deadlines.Migrations, people.Migrations, Migrations)
	c := &clock{}
	c.Set(start)
	f := &fixture{t: t, db: db, tree: tree, clock: c, audit: audit.New(db, c.Now)}
	f.svc = f.service(o)
	f.bureauID = f.institution(regions.Bureau, "洞头区卫生健康局", district)
	f.cdcID = f.institution(regions.CDC, "洞头区疾病预防控制中心", district)
	f.labID = f.institution(regions.Lab, "洞头区检测实验室", district)
	f.lab2ID = f.institution(regions.Lab, "第二检测实验室", district)
	f.pointInstA = f.institution(regions.SamplingPoint, "北岙采样点", townshipA)
	f.pointInstB = f.institution(regions.SamplingPoint, "灵昆采样点", townshipB)
	return f
}

// service builds another instance of the module over the fixture's
// database, as a second server process or the next start would be; it is
// closed when the test ends.
func (f *fixture) service(o Options) *Service {
	set := settings.New(f.db, f.audit, f.clock.Now)
	svc := New(Deps{
		DB: f.db, Tree: f.tree, People: people.NewRegistry(f.db, f.tree, f.audit, f.clock.Now),
		Institutions: regions.NewInstitutions(f.db, f.tree, f.audit, f.clock.Now), Audit: f.audit,
		Deadlines: deadlines.New(f.db, set, f.clock.Now), Settings: set, Now: f.clock.Now,
	}, o)
	f.t.Cleanup(svc.Close)
	return svc
}

// institution inserts an institution directly (the regions module's rules
// are tested there).
func (f *fixture) institution(typ regions.InstitutionType, name, region string) int64 {
	f.t.Helper()
	var id int64
	at := storage.Millis(f.clock.Now())
	err := f.db.QueryRow(`INSERT INTO institutions (name, type, region_code, address, phone, active, created_at, updated_at)
		VALUES ($1, $2, $3, '', '', TRUE, $4, $4) RETURNING id`, name, string(typ), region, at).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert institution %s: %v", name, err)
	}
	return id
}

// campaign inserts a campaign over the district directly, running from the
// fixture's start for two days; tests of campaign creation use the Service.
func (f *fixture) campaign(poolSize int) int64 {
	f.t.Helper()
	var id int64
	s, e := storage.Millis(start.Add(-time.Hour)), storage.Millis(start.Add(48*time.Hour))
	err := f.db.QueryRow(`INSERT INTO campaigns (name, pathogen, pool_size, starts_at, ends_at, results_due_at, region_code,
		institution_id, created_at, updated_at) VALUES ($1, 'sars_cov_2', $2, $3, $4, $5, $6, $7, $3, $3) RETURNING id`,
		fmt.Sprintf("第%d轮全员核酸", poolSize), poolSize, s, e, e+12*3600*1000, district, f.bureauID).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert campaign: %v", err)
	}
	if _, err := f.db.Exec("INSERT INTO campaign_regions (campaign_id, region_code) VALUES ($1, $2)", id, district); err != nil {
		f.t.Fatalf("insert campaign region: %v", err)
	}
	return id
}

// point adds a sampling point institution to a campaign directly.
func (f *fixture) point(campaignID, institutionID int64, name, region string) int64 {
	f.t.Helper()
	var id int64
	err := f.db.QueryRow(`INSERT INTO sampling_points (campaign_id, institution_id, name, region_code, created_at)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`, campaignID, institutionID, name, region, storage.Millis(start)).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert sampling point: %v", err)
	}
	return id
}

// The principals of the tests.
func (f *fixture) bureauAdmin() context.Context {
	return as(&scope.Principal{UserID: 1, Username: "admin", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: district, InstitutionID: 0})
}
func (f *fixture) samplerA() context.Context {
	return as(&scope.Principal{UserID: 2, Username: "sampler_a", Roles: []scope.Role{scope.Sampler}, RegionCode: townshipA, InstitutionID: f.pointInstA})
}
func (f *fixture) samplerB() context.Context {
	return as(&scope.Principal{UserID: 3, Username: "sampler_b", Roles: []scope.Role{scope.Sampler}, RegionCode: townshipB, InstitutionID: f.pointInstB})
}
func (f *fixture) lab() context.Context {
	return as(&scope.Principal{UserID: 4, Username: "lab", Roles: []scope.Role{scope.Lab}, RegionCode: district, InstitutionID: f.labID})
}
func (f *fixture) lab2() context.Context {
	return as(&scope.Principal{UserID: 5, Username: "lab2", Roles: []scope.Role{scope.Lab}, RegionCode: district, InstitutionID: f.lab2ID})
}
func (f *fixture) townshipStaffA() context.Context {
	return as(&scope.Principal{UserID: 6, Username: "staff_a", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: townshipA})
}
func (f *fixture) townshipStaffB() context.Context {
	return as(&scope.Principal{UserID: 7, Username: "staff_b", Roles: []scope.Role{scope.InstitutionStaff}, RegionCode: townshipB})
}
func (f *fixture) epidemiologist() context.Context {
	return as(&scope.Principal{UserID: 8, Username: "cdc", Roles: []scope.Role{scope.Epidemiologist}, RegionCode: district, InstitutionID: 0})
}
func (f *fixture) outsider() context.Context {
	return as(&scope.Principal{UserID: 9, Username: "outsider", Roles: []scope.Role{scope.BureauAdmin}, RegionCode: otherCity})
}

func as(p *scope.Principal) context.Context { return scope.WithPrincipal(context.Background(), p) }

// residentID returns a distinct valid resident ID number for each seq: the
// birth date moves a day every thousand numbers.
func residentID(seq int) string {
	birth := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, seq/1000)
	first17 := fmt.Sprintf("330305%s%03d", birth.Format("20060102"), seq%1000)
	return first17 + string(people.CheckChar(first17))
}

// count returns the number of rows of a table.
// checkCountedRegions checks that each tube's counted_regions lists the
// residences of exactly its specimens counted in coverage: the results path
// counts a tube's members from that list, not from the specimens.
func (f *fixture) checkCountedRegions() {
	f.t.Helper()
	f.filed()
	type tube struct {
		id      int64
		counted string
	}
	tubes, err := storage.Query(context.Background(), f.db, func(r storage.Scanner) (tube, error) {
		var t tube
		return t, r.Scan(&t.id, &t.counted)
	}, "SELECT id, counted_regions FROM tubes ORDER BY id")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, t := range tubes {
		want, err := storage.Query(context.Background(), f.db, func(r storage.Scanner) (string, error) {
			var region string
			return region, r.Scan(&region)
		}, "SELECT region_code FROM specimens WHERE tube_id = $1 AND counted = TRUE ORDER BY region_code", t.id)
		if err != nil {
			f.t.Fatal(err)
		}
		got := strings.Fields(t.counted)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			f.t.Errorf("tube %d: counted_regions %q, counted specimens live in %q", t.id, got, want)
		}
	}
	if len(tubes) == 0 {
		f.t.Error("no tubes to check")
	}
}

func (f *fixture) count(table string) int {
	f.t.Helper()
	f.filed()
	var n int
	if err := f.db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		f.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// filed files every acknowledged registration, as the background filer
// does a moment later: tests that read the tables directly call it first.
func (f *fixture) filed() {
	f.t.Helper()
	if err := f.svc.FileQueued(context.Background()); err != nil {
		f.t.Fatalf("file registrations: %v", err)
	}
}
