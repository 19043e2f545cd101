package screening

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// Counts are a region's coverage figures (应检尽检).
type Counts struct {
	Targeted int64 `json:"targeted"`
	Sampled  int64 `json:"sampled"`
	Resulted int64 `json:"resulted"`
	// NotSampled is max(targeted − sampled, 0): people sampled who were
	// not Registered residents when the campaign began count as sampled but
	// were never targeted.
	NotSampled int64 `json:"not_sampled"`
	Positive   int64 `json:"positive"`
}

// Percent returns sampled as a whole percentage of targeted (0 when none
// are targeted), capped at 100.
func (c Counts) Percent() int64 {
	if c.Targeted <= 0 {
		return 0
	}
	return min(c.Sampled*100/c.Targeted, 100)
}

func (c *Counts) add(o Counts) {
	c.Targeted += o.Targeted
	c.Sampled += o.Sampled
	c.Resulted += o.Resulted
	c.Positive += o.Positive
	c.NotSampled = max(c.Targeted-c.Sampled, 0)
}

// RegionCoverage is one child region's coverage.
type RegionCoverage struct {
	RegionCode string `json:"region_code"`
	Name       string `json:"name"`
	// Direct marks the residents Registered at the region itself rather
	// than in one of its children (a township code with no village).
	Direct bool `json:"direct,omitempty"`
	Counts
}

// TurnaroundBucket counts resulted tubes by time from first sampling to
// result: up to Hours hours (after the previous bucket); Hours 0 is beyond
// the last bucket.
type TurnaroundBucket struct {
	Hours int   `json:"hours"`
	Tubes int64 `json:"tubes"`
}

// turnaroundHours are the turnaround buckets in display order; 0 is "more".
var turnaroundHours = []int{6, 12, 24, 48, 0}

// Coverage is a campaign's coverage in a region, with its child regions.
type Coverage struct {
	CampaignID int64  `json:"campaign_id"`
	RegionCode string `json:"region_code"`
	Name       string `json:"name"`
	Counts
	Children   []RegionCoverage   `json:"children"`
	Turnaround []TurnaroundBucket `json:"turnaround"`
	// Queued counts the registrations acknowledged but not yet filed (in
	// every campaign), which these figures may not include yet: 0 except
	// during a testing day's peak (see settle).
	Queued int `json:"queued"`
}

// Coverage returns a campaign's coverage in a region ("" for the narrower of
// the caller's region and the campaign's), from the coverage counters only:
// it never reads specimens. A region outside the caller's scope is not
// found, so a township user sees only its own township's figures.
func (s *Service) Coverage(ctx context.Context, campaignID int64, regionCode string) (cov Coverage, err error) {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return Coverage{}, err
	}
	queued, err := s.settle(ctx)
	if err != nil {
		return Coverage{}, err
	}
	defer func() { cov.Queued = queued }()
	c, err := s.campaign(ctx, s.db, p, campaignID)
	if err != nil {
		return Coverage{}, err
	}
	region, err := focusRegion(p, c, regionCode)
	if err != nil {
		return Coverage{}, err
	}
	return s.coverage(ctx, p, c, region)
}

func (s *Service) coverage(ctx context.Context, p *scope.Principal, c Campaign, region string) (Coverage, error) {
	rows, err := s.coverageRows(ctx, p, c.ID, region)
	if err != nil {
		return Coverage{}, err
	}
	cov := Coverage{CampaignID: c.ID, RegionCode: region, Name: s.placeName(region), Children: []RegionCoverage{}}
	groups := s.newChildGroups(region, c.RegionCodes)
	byKey := map[string]*RegionCoverage{}
	child := func(code string) *RegionCoverage {
		key, direct := groups.key(code)
		rc := byKey[key]
		if rc == nil {
			rc = &RegionCoverage{RegionCode: key, Name: s.divisionName(key), Direct: direct}
			byKey[key] = rc
		}
		return rc
	}
	for _, k := range groups.kids {
		child(k.Code)
	}
	for _, r := range rows {
		if !groups.leaf() {
			child(r.RegionCode).add(r.Counts)
		}
		cov.add(r.Counts)
	}
	for _, key := range groups.order(slices.Collect(maps.Keys(byKey))) {
		cov.Children = append(cov.Children, *byKey[key])
	}
	if cov.Turnaround, err = s.turnaround(ctx, p, c.ID, region); err != nil {
		return Coverage{}, err
	}
	return cov, nil
}

// focusRegion returns the region a campaign's figures are shown for: the
// one asked for, which must lie in p's scope and overlap the campaign, or
// by default the narrower of p's region and the campaign's (one holds the
// other, since the campaign is visible to p).
func focusRegion(p *scope.Principal, c Campaign, asked string) (string, error) {
	asked = strings.TrimSpace(asked)
	if asked == "" {
		if !p.IsSystem() && len(p.RegionCode) > len(c.RegionCode) {
			return p.RegionCode, nil
		}
		return c.RegionCode, nil
	}
	if !regions.ValidCode(asked) {
		return "", apperr.Field("region_code", "region_code.unknown", "unknown region code %v", asked)
	}
	if !p.IsSystem() && !p.CoversRegion(asked) {
		return "", apperr.NotFoundf("region not found")
	}
	if !strings.HasPrefix(asked, c.RegionCode) && !strings.HasPrefix(c.RegionCode, asked) {
		return "", apperr.NotFoundf("region not found")
	}
	return asked, nil
}

// coverageRow is one counter row: a residence region's figures.
type coverageRow struct {
	RegionCode string
	Counts
}

// coverageRows reads the counter rows of a campaign in region's subtree
// that lie in p's scope.
func (s *Service) coverageRows(ctx context.Context, p *scope.Principal, campaignID int64, region string) ([]coverageRow, error) {
	var a storage.Args
	query := "SELECT cv.region_code, cv.targeted, cv.sampled, cv.resulted, cv.positive FROM coverage cv WHERE cv.campaign_id = " +
		a.Add(campaignID) + " AND " + scope.RegionPrefix(&a, "cv.region_code", region) + " AND " + p.Where(&a, "cv.region_code", "")
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: read coverage: %w", err)
	}
	defer rows.Close()
	var out []coverageRow
	for rows.Next() {
		var r coverageRow
		if err := rows.Scan(&r.RegionCode, &r.Targeted, &r.Sampled, &r.Resulted, &r.Positive); err != nil {
			return nil, fmt.Errorf("screening: read coverage: %w", err)
		}
		r.NotSampled = max(r.Targeted-r.Sampled, 0)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("screening: read coverage: %w", err)
	}
	return out, nil
}

// turnaround sums the turnaround counters of a campaign's tubes in region's
// subtree that lie in p's scope, every bucket present.
func (s *Service) turnaround(ctx context.Context, p *scope.Principal, campaignID int64, region string) ([]TurnaroundBucket, error) {
	var a storage.Args
	query := "SELECT t.bucket, SUM(t.tubes) FROM turnaround t WHERE t.campaign_id = " + a.Add(campaignID) + " AND " +
		scope.RegionPrefix(&a, "t.region_code", region) + " AND " + p.Where(&a, "t.region_code", "") + " GROUP BY t.bucket"
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: read turnaround: %w", err)
	}
	defer rows.Close()
	out := make([]TurnaroundBucket, len(turnaroundHours))
	for i, h := range turnaroundHours {
		out[i].Hours = h
	}
	for rows.Next() {
		var hours int
		var tubes int64
		if err := rows.Scan(&hours, &tubes); err != nil {
			return nil, fmt.Errorf("screening: read turnaround: %w", err)
		}
		if i := slices.Index(turnaroundHours, hours); i >= 0 {
			out[i].Tubes += tubes
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("screening: read turnaround: %w", err)
	}
	return out, nil
}

// childGroups assigns region codes beneath a region to the region's
// children, for figures by child region.
type childGroups struct {
	region string
	kids   []regions.Division // the listed children shown, sorted by code
	lens   []int              // the lengths of the kids' codes
	listed map[string]bool
}

// newChildGroups groups by the children of region that overlap one of the
// campaign's targeted regions: a campaign of two townships shows those two
// under their district, not every township of it.
func (s *Service) newChildGroups(region string, targets []string) childGroups {
	g := childGroups{region: region, listed: map[string]bool{}}
	for _, k := range s.tree.Children(region) {
		if !slices.ContainsFunc(targets, func(t string) bool { return strings.HasPrefix(k.Code, t) || strings.HasPrefix(t, k.Code) }) {
			continue
		}
		g.kids = append(g.kids, k)
		g.listed[k.Code] = true
		if !slices.Contains(g.lens, len(k.Code)) {
			g.lens = append(g.lens, len(k.Code))
		}
	}
	return g
}

// key returns the child of the region that holds code: a listed child; a
// division the data does not list (an unlisted village), cut to the level
// below the region; or the region itself (direct) for code at the region.
func (g childGroups) key(code string) (key string, direct bool) {
	if code == g.region {
		// A village has no children: its figures are its own row.
		return code, !g.leaf()
	}
	for _, n := range g.lens {
		if len(code) >= n && g.listed[code[:n]] {
			return code[:n], false
		}
	}
	for _, n := range []int{2, 4, 6, 9, 12} {
		if n > len(g.region) && len(code) >= n {
			return code[:n], false
		}
	}
	return code, false
}

// leaf reports whether the region is a village: nothing lies below it.
func (g childGroups) leaf() bool { return len(g.region) >= 12 }

// order sorts the keys of figures by code, the region's own (direct) row
// last.
func (g childGroups) order(keys []string) []string {
	slices.SortFunc(keys, func(a, b string) int {
		if (a == g.region) != (b == g.region) {
			if a == g.region {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	return keys
}

// Dashboard is a campaign's overview (筛查看板) for a region.
type Dashboard struct {
	Campaign Campaign
	Coverage Coverage
	// Recalls counts the campaign's recalls in the caller's scope and the
	// region; OpenRecalls those not yet resampled.
	Recalls, OpenRecalls int64
	Points               int64
}

// Dashboard returns a campaign's figures in a region ("" as for Coverage).
func (s *Service) Dashboard(ctx context.Context, campaignID int64, regionCode string) (Dashboard, error) {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return Dashboard{}, err
	}
	c, err := s.campaign(ctx, s.db, p, campaignID)
	if err != nil {
		return Dashboard{}, err
	}
	region, err := focusRegion(p, c, regionCode)
	if err != nil {
		return Dashboard{}, err
	}
	queued, err := s.settle(ctx)
	if err != nil {
		return Dashboard{}, err
	}
	d := Dashboard{Campaign: c}
	if d.Coverage, err = s.coverage(ctx, p, c, region); err != nil {
		return Dashboard{}, err
	}
	d.Coverage.Queued = queued
	var a storage.Args
	query := "SELECT COUNT(*), COALESCE(SUM(CASE WHEN r.state IN ('to_notify', 'notified') THEN 1 ELSE 0 END), 0) FROM recalls r WHERE r.campaign_id = " +
		a.Add(c.ID) + " AND " + scope.RegionPrefix(&a, "r.region_code", region) + " AND " + p.Where(&a, "r.region_code", "r.institution_id")
	if err := s.db.QueryRowContext(ctx, query, a.Values()...).Scan(&d.Recalls, &d.OpenRecalls); err != nil {
		return Dashboard{}, fmt.Errorf("screening: count recalls: %w", err)
	}
	a = storage.Args{}
	query = "SELECT COUNT(*) FROM sampling_points sp WHERE sp.campaign_id = " + a.Add(c.ID) + " AND " +
		scope.RegionPrefix(&a, "sp.region_code", region) + " AND " + p.Where(&a, "sp.region_code", "sp.institution_id")
	if err := s.db.QueryRowContext(ctx, query, a.Values()...).Scan(&d.Points); err != nil {
		return Dashboard{}, fmt.Errorf("screening: count points: %w", err)
	}
	return d, nil
}

// NotSampledQuery selects a page of the not-sampled list.
type NotSampledQuery struct {
	RegionCode string // "" as for Coverage
	Cursor     NotSampledCursor
	Limit      int // 1..500; 50 when 0
}

// NotSampledCursor is the position after the last person of a page: the
// list runs village by village, the order a door-to-door team works in.
type NotSampledCursor struct {
	Region string `json:"r"`
	ID     int64  `json:"i"`
}

// IsZero reports whether the cursor is the start of the list.
func (c NotSampledCursor) IsZero() bool { return c.Region == "" && c.ID == 0 }

// NotSampled returns a page of the not-sampled list (应检未检): the residents
// of the campaign's regions, in the caller's scope and the region, who have
// not been sampled in it — for door-to-door and home sampling (上门采样). The
// people are in the clear for the caller to mask (people.Person.Masked);
// every page is audited as a read of personal data.
func (s *Service) NotSampled(ctx context.Context, campaignID int64, q NotSampledQuery) ([]people.Person, NotSampledCursor, error) {
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 500 {
		return nil, NotSampledCursor{}, apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 500)
	}
	var out []people.Person
	err := s.notSampled(ctx, campaignID, q, q.Limit+1, "screening.not_sampled.list", "", func(p people.Person) error {
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, NotSampledCursor{}, err
	}
	var next NotSampledCursor
	if len(out) > q.Limit {
		out = out[:q.Limit]
		last := out[q.Limit-1]
		next = NotSampledCursor{Region: last.RegionCode, ID: last.ID}
	}
	return out, next, nil
}

// ExportNotSampled calls fn for every person of the not-sampled list (the
// query's cursor and limit ignored). It is audited before any row is read.
func (s *Service) ExportNotSampled(ctx context.Context, campaignID int64, q NotSampledQuery, format string, fn func(people.Person) error) error {
	q.Cursor = NotSampledCursor{}
	return s.notSampled(ctx, campaignID, q, 0, "screening.not_sampled.export", "format="+format+" ", fn)
}

// notSampled streams the not-sampled persons to fn, at most limit (0 for
// all), after recording action in the audit log.
func (s *Service) notSampled(ctx context.Context, campaignID int64, q NotSampledQuery, limit int, action, detail string, fn func(people.Person) error) error {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return err
	}
	if err := s.settled(ctx); err != nil {
		return err
	}
	c, err := s.campaign(ctx, s.db, p, campaignID)
	if err != nil {
		return err
	}
	region, err := focusRegion(p, c, q.RegionCode)
	if err != nil {
		return err
	}
	if err := s.audit.RecordOutside(ctx, audit.Entry{Action: action, ObjectType: "campaign", ObjectID: strconv.FormatInt(c.ID, 10),
		Detail: detail + "region_code=" + region}); err != nil {
		return fmt.Errorf("screening: audit not-sampled list: %w", err)
	}
	var a storage.Args
	targeted := make([]string, len(c.RegionCodes))
	for i, code := range c.RegionCodes {
		targeted[i] = scope.RegionPrefix(&a, "p.region_code", code)
	}
	// Residents are placed by residence, as the coverage counters are: the
	// township team sees its residents whoever Registered them.
	where := []string{
		scope.RegionPrefix(&a, "p.region_code", region),
		p.Where(&a, "p.region_code", ""),
		"(" + strings.Join(targeted, " OR ") + ")",
		"NOT EXISTS (SELECT 1 FROM campaign_persons cp WHERE cp.campaign_id = " + a.Add(c.ID) + " AND cp.person_id = p.id)",
	}
	if !q.Cursor.IsZero() {
		r, id := a.Add(q.Cursor.Region), a.Add(q.Cursor.ID)
		where = append(where, "(p.region_code > "+r+" OR (p.region_code = "+r+" AND p.id > "+id+"))")
	}
	query := "SELECT p.id, p.id_type, p.id_number, p.name, p.sex, p.birth_date, p.phone, p.no_phone, p.address, p.region_code, " +
		"p.institution_id, p.tags, p.created_at, p.updated_at FROM persons p WHERE " + strings.Join(where, " AND ") +
		" ORDER BY p.region_code, p.id"
	if limit > 0 {
		query += " LIMIT " + a.Add(limit)
	}
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return fmt.Errorf("screening: not-sampled list: %w", err)
	}
	defer rows.Close()
	today := s.now().In(residentAgeZone)
	for rows.Next() {
		person, err := s.scanResident(rows, today)
		if err != nil {
			return err
		}
		if err := fn(person); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("screening: not-sampled list: %w", err)
	}
	return nil
}

// divisionName is a region's own name for a row under its parent, "" for
// a village the data does not list.
func (s *Service) divisionName(code string) string {
	d, _ := s.tree.Lookup(code)
	return d.Name
}

// residentAgeZone is the zone a person's age is counted in, as the registry does.
var residentAgeZone = time.FixedZone("CST", 8*60*60)

// scanResident reads one person of the not-sampled query.
func (s *Service) scanResident(rows *sql.Rows, today time.Time) (people.Person, error) {
	var pr people.Person
	var birth sql.NullString
	var inst sql.NullInt64
	var tags string
	var created, updated int64
	if err := rows.Scan(&pr.ID, &pr.IDType, &pr.IDNumber, &pr.Name, &pr.Sex, &birth, &pr.Phone, &pr.NoPhone, &pr.Address,
		&pr.RegionCode, &inst, &tags, &created, &updated); err != nil {
		return people.Person{}, fmt.Errorf("screening: read person: %w", err)
	}
	if birth.Valid {
		t, err := time.Parse(time.DateOnly, birth.String)
		if err != nil {
			// The value stays out of the error: errors reach the log.
			return people.Person{}, fmt.Errorf("screening: person %d has a malformed stored birth date", pr.ID)
		}
		pr.BirthDate = t
		pr.Age = people.AgeOn(t, today)
	}
	for _, t := range strings.Split(tags, ",") {
		if t != "" {
			pr.Tags = append(pr.Tags, people.Tag(t))
		}
	}
	pr.InstitutionID = inst.Int64
	pr.CreatedAt, pr.UpdatedAt = storage.FromMillis(created), storage.FromMillis(updated)
	pr.RegionName = s.placeName(pr.RegionCode)
	return pr, nil
}
