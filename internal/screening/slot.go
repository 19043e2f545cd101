package screening

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

// The planning rule of DESIGN.md §5.1: about one sampling point per 2,000 to
// 3,000 residents, and one sampler per 360 residents a day.
const (
	ResidentsPerPointLow   = 2000
	ResidentsPerPointHigh  = 3000
	ResidentsPerSamplerDay = 360
)

// maxSlotLabel bounds a slot's label (buildings, groups) in characters.
const maxSlotLabel = 100

// Slot is a time slot (错峰): the residents of a village or community — or
// part of it, named by Label (buildings 1–6, group 3) — are called to a point
// for a time window, so they do not all queue at once.
type Slot struct {
	ID              int64     `json:"id"`
	CampaignID      int64     `json:"campaign_id"`
	SamplingPointID int64     `json:"sampling_point_id"`
	PointName       string    `json:"point_name"`
	RegionCode      string    `json:"region_code"`
	RegionName      string    `json:"region_name"`
	Label           string    `json:"label"`
	StartsAt        time.Time `json:"starts_at"`
	EndsAt          time.Time `json:"ends_at"`
	CreatedAt       time.Time `json:"created_at"`
}

// NewSlot is what a planner submits to call a village (or part) to a point.
type NewSlot struct {
	SamplingPointID int64
	RegionCode      string
	Label           string
	StartsAt        time.Time
	EndsAt          time.Time
}

// SlotQuery selects a campaign's slots.
type SlotQuery struct {
	SamplingPointID int64  // 0 for every point
	RegionCode      string // the slots of villages in this subtree; "" for all
	Cursor          string
	Limit           int // 1..1000; 500 when 0
}

// slotCursor is the sort key of the last slot of a page.
type slotCursor struct {
	Starts int64 `json:"s"`
	ID     int64 `json:"i"`
}

// CreateSlot calls a village (or part of it) to one of the campaign's points
// for a window inside the campaign. The same village and label cannot be
// called to the same point for overlapping windows.
func (s *Service) CreateSlot(ctx context.Context, campaignID int64, ns NewSlot) (Slot, error) {
	return s.createSlot(ctx, campaignID, ns, nil)
}

// createSlot is CreateSlot with the problems a caller already found in the
// input (unparsable times), so every bad field is named at once.
func (s *Service) createSlot(ctx context.Context, campaignID int64, ns NewSlot, found apperr.Problems) (Slot, error) {
	p, err := scope.Require(ctx, PlanRoles...)
	if err != nil {
		return Slot{}, err
	}
	ns, problems := s.normalizeSlot(p, ns, found)
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		c, err := s.campaign(ctx, tx, p, campaignID)
		if err != nil {
			return err
		}
		if c.Closed() {
			return apperr.New(apperr.Conflict, "the campaign is closed")
		}
		if ns.RegionCode != "" && !problems.Has("region_code") && !insideAny(s.tree, c.RegionCodes, ns.RegionCode) {
			problems.Add("region_code", "slot.region_outside", "the village is not one the campaign targets")
		}
		if !ns.StartsAt.IsZero() && !problems.Has("starts_at") && ns.StartsAt.Before(c.StartsAt) {
			problems.Add("starts_at", "slot.outside_campaign", "the slot must lie within the campaign")
		}
		if !ns.EndsAt.IsZero() && !problems.Has("ends_at") && ns.EndsAt.After(c.EndsAt) {
			problems.Add("ends_at", "slot.outside_campaign", "the slot must lie within the campaign")
		}
		if ns.SamplingPointID > 0 {
			// Touching the point's row serialises the slot writes of one
			// point on PostgreSQL (SQLite has one writer anyway), so two
			// overlapping slots cannot both pass the check below.
			var a storage.Args
			res, err := tx.ExecContext(ctx, "UPDATE sampling_points SET samplers = samplers WHERE id = "+a.Add(ns.SamplingPointID)+
				" AND campaign_id = "+a.Add(c.ID)+" AND "+p.Where(&a, "region_code", "institution_id"), a.Values()...)
			if err != nil {
				return fmt.Errorf("lock sampling point: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				problems.Add("sampling_point_id", "sampling_point.unknown", "no such sampling point in this campaign")
			}
		}
		if err := problems.Err(); err != nil {
			return err
		}
		var overlapping int
		err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sampling_slots WHERE sampling_point_id = $1 AND region_code = $2 AND label = $3
			AND starts_at < $4 AND ends_at > $5`, ns.SamplingPointID, ns.RegionCode, ns.Label,
			storage.Millis(ns.EndsAt), storage.Millis(ns.StartsAt)).Scan(&overlapping)
		if err != nil {
			return fmt.Errorf("check overlapping slots: %w", err)
		}
		if overlapping > 0 {
			return apperr.Field("starts_at", "slot.overlap", "this village is already called to the point at an overlapping time")
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO sampling_slots (campaign_id, sampling_point_id, region_code, label, starts_at, ends_at,
			created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
			c.ID, ns.SamplingPointID, ns.RegionCode, ns.Label, storage.Millis(ns.StartsAt), storage.Millis(ns.EndsAt),
			storage.Millis(s.now()), actorID(p)).Scan(&id)
		if err != nil {
			return fmt.Errorf("insert slot: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "sampling_slot.create", ObjectType: "sampling_slot", ObjectID: strconv.FormatInt(id, 10),
			Detail: fmt.Sprintf("campaign=%d point=%d region=%s", c.ID, ns.SamplingPointID, ns.RegionCode)})
	})
	if err != nil {
		return Slot{}, err
	}
	return s.slot(ctx, s.db, p, id)
}

// normalizeSlot trims and checks the parts of a slot that need no database,
// adding the bad fields to the problems already found.
func (s *Service) normalizeSlot(p *scope.Principal, ns NewSlot, problems apperr.Problems) (NewSlot, apperr.Problems) {
	if ns.SamplingPointID <= 0 {
		problems.Add("sampling_point_id", "required", "required")
	}
	ns.RegionCode = strings.TrimSpace(ns.RegionCode)
	if ns.RegionCode == "" {
		problems.Add("region_code", "required", "required")
	} else if d, err := s.tree.Resolve(ns.RegionCode); err != nil {
		problems.AddErr("", err)
	} else if d.Level < regions.Township {
		problems.Add("region_code", "slot.region_level", "a slot calls a township, village or community")
	} else if err := p.CheckCapture("region_code", ns.RegionCode, 0); err != nil {
		problems.AddErr("", err)
	}
	ns.Label = strings.TrimSpace(ns.Label)
	if utf8.RuneCountInString(ns.Label) > maxSlotLabel {
		problems.Add("label", "slot.label_length", "at most %v characters", maxSlotLabel)
	}
	if ns.StartsAt.IsZero() && !problems.Has("starts_at") {
		problems.Add("starts_at", "required", "required")
	}
	if ns.EndsAt.IsZero() && !problems.Has("ends_at") {
		problems.Add("ends_at", "required", "required")
	}
	if !ns.StartsAt.IsZero() && !ns.EndsAt.IsZero() && !ns.EndsAt.After(ns.StartsAt) {
		problems.Add("ends_at", "slot.ends_before_start", "the end must be after the start")
	}
	return ns, problems
}

const slotColumns = "ss.id, ss.campaign_id, ss.sampling_point_id, sp.name, ss.region_code, ss.label, ss.starts_at, ss.ends_at, ss.created_at"

// slotVisible is the condition that slot ss (joined to its point sp) is
// visible to p: the point is in p's scope, or the village called is.
func slotVisible(p *scope.Principal, a *storage.Args) string {
	return "(" + p.Where(a, "sp.region_code", "sp.institution_id") + " OR " + p.Where(a, "ss.region_code", "") + ")"
}

func (s *Service) scanSlot(row interface{ Scan(...any) error }) (Slot, error) {
	var sl Slot
	var starts, ends, created int64
	if err := row.Scan(&sl.ID, &sl.CampaignID, &sl.SamplingPointID, &sl.PointName, &sl.RegionCode, &sl.Label, &starts, &ends, &created); err != nil {
		return Slot{}, err
	}
	sl.StartsAt, sl.EndsAt, sl.CreatedAt = storage.FromMillis(starts), storage.FromMillis(ends), storage.FromMillis(created)
	sl.RegionName = s.divisionName(sl.RegionCode)
	return sl, nil
}

func (s *Service) slot(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) (Slot, error) {
	var a storage.Args
	query := "SELECT " + slotColumns + " FROM sampling_slots ss JOIN sampling_points sp ON sp.id = ss.sampling_point_id WHERE ss.id = " +
		a.Add(id) + " AND " + slotVisible(p, &a)
	sl, err := s.scanSlot(q.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Slot{}, apperr.NotFoundf("slot not found")
	}
	if err != nil {
		return Slot{}, fmt.Errorf("screening: get slot %d: %w", id, err)
	}
	return sl, nil
}

// Slots returns a page of a campaign's slots visible to the caller, in time
// order, and the cursor of the next page ("" on the last).
func (s *Service) Slots(ctx context.Context, campaignID int64, q SlotQuery) ([]Slot, string, error) {
	p, err := scope.Require(ctx, ViewRoles...)
	if err != nil {
		return nil, "", err
	}
	if _, err := s.campaign(ctx, s.db, p, campaignID); err != nil {
		return nil, "", err
	}
	if q.Limit == 0 {
		q.Limit = 500
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 1000)
	}
	var a storage.Args
	where := []string{"ss.campaign_id = " + a.Add(campaignID), slotVisible(p, &a)}
	if q.SamplingPointID != 0 {
		where = append(where, "ss.sampling_point_id = "+a.Add(q.SamplingPointID))
	}
	if q.RegionCode = strings.TrimSpace(q.RegionCode); q.RegionCode != "" {
		if !regions.ValidCode(q.RegionCode) {
			return nil, "", apperr.Field("region_code", "region_code.unknown", "unknown region code %v", q.RegionCode)
		}
		where = append(where, scope.RegionPrefix(&a, "ss.region_code", q.RegionCode))
	}
	var after slotCursor
	if err := web.DecodeCursor(q.Cursor, &after); err != nil {
		return nil, "", err
	}
	if q.Cursor != "" {
		st, id := a.Add(after.Starts), a.Add(after.ID)
		where = append(where, "(ss.starts_at > "+st+" OR (ss.starts_at = "+st+" AND ss.id > "+id+"))")
	}
	query := "SELECT " + slotColumns + " FROM sampling_slots ss JOIN sampling_points sp ON sp.id = ss.sampling_point_id WHERE " +
		strings.Join(where, " AND ") + " ORDER BY ss.starts_at, ss.id LIMIT " + a.Add(q.Limit+1)
	out, err := storage.Query(ctx, s.db, s.scanSlot, query, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("screening: list slots: %w", err)
	}
	out, next := web.NextPage(out, q.Limit, func(sl Slot) any { return slotCursor{Starts: storage.Millis(sl.StartsAt), ID: sl.ID} })
	return out, next, nil
}

// DeleteSlot removes a slot of a point in the caller's scope and returns it.
func (s *Service) DeleteSlot(ctx context.Context, id int64) (Slot, error) {
	p, err := scope.Require(ctx, PlanRoles...)
	if err != nil {
		return Slot{}, err
	}
	var sl Slot
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if sl, err = s.slot(ctx, tx, p, id); err != nil {
			return err
		}
		var a storage.Args
		res, err := tx.ExecContext(ctx, "DELETE FROM sampling_slots WHERE id = "+a.Add(id)+
			" AND sampling_point_id IN (SELECT sp.id FROM sampling_points sp WHERE "+p.Where(&a, "sp.region_code", "sp.institution_id")+")", a.Values()...)
		if err != nil {
			return fmt.Errorf("delete slot %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			// Visible through the village called, but the point is not the
			// caller's to plan.
			return apperr.NotFoundf("slot not found")
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "sampling_slot.delete", ObjectType: "sampling_slot", ObjectID: strconv.FormatInt(id, 10),
			Detail: fmt.Sprintf("campaign=%d point=%d region=%s", sl.CampaignID, sl.SamplingPointID, sl.RegionCode)})
	})
	if err != nil {
		return Slot{}, err
	}
	return sl, nil
}

// Notice is a point's printable notice (错峰采样通知): the point, its hours
// and the slots of the villages called to it.
type Notice struct {
	Campaign Campaign
	Point    SamplingPoint
	Slots    []Slot
}

// maxNoticeSlots bounds the slots one notice lists.
const maxNoticeSlots = 1000

// PointNotice returns the notice of a point in the caller's scope, for the
// villages in regionCode's subtree ("" for all).
func (s *Service) PointNotice(ctx context.Context, pointID int64, regionCode string) (Notice, error) {
	p, err := scope.Require(ctx, ViewRoles...)
	if err != nil {
		return Notice{}, err
	}
	sp, err := s.samplingPoint(ctx, s.db, p, pointID)
	if err != nil {
		return Notice{}, err
	}
	c, err := s.campaign(ctx, s.db, p, sp.CampaignID)
	if err != nil {
		return Notice{}, err
	}
	slots, _, err := s.Slots(ctx, c.ID, SlotQuery{SamplingPointID: sp.ID, RegionCode: regionCode, Limit: maxNoticeSlots})
	if err != nil {
		return Notice{}, err
	}
	return Notice{Campaign: c, Point: sp, Slots: slots}, nil
}

// Plan compares, per child region of a region, the residents a campaign
// targets with the points and samplers placed there (DESIGN.md §5.1).
type Plan struct {
	Campaign   Campaign   `json:"-"`
	RegionCode string     `json:"region_code"`
	RegionName string     `json:"name"`
	Days       int        `json:"days"` // the campaign's length in days, at least 1
	Rows       []PlanRow  `json:"children"`
	Total      PlanFigure `json:"total"`
}

// PlanRow is one child region of a Plan.
type PlanRow struct {
	RegionCode string `json:"region_code"`
	Name       string `json:"name"`
	// Direct marks the row of residents and points placed at the plan's
	// region itself rather than in one of its children.
	Direct bool            `json:"direct,omitempty"`
	Points []SamplingPoint `json:"points"`
	PlanFigure
}

// PlanFigure is what a region needs and has.
type PlanFigure struct {
	Residents int64 `json:"residents"`
	// PointCount is the points placed; PointsNeeded the fewest the rule asks
	// for (a point per 3,000 residents), PointsIdeal the most (per 2,000).
	PointCount   int   `json:"point_count"`
	PointsNeeded int64 `json:"points_needed"`
	PointsIdeal  int64 `json:"points_ideal"`
	// Samplers are the samplers placed; SamplersNeeded those the rule asks
	// for over the campaign's days (a sampler per 360 residents a day).
	Samplers       int   `json:"samplers"`
	SamplersNeeded int64 `json:"samplers_needed"`
	// CapacityPerDay sums the points' capacity over their opening hours;
	// 0 when no point gave its capacity.
	CapacityPerDay int64 `json:"capacity_per_day"`
	// The shortfalls: points and samplers missing, and whether the stated
	// capacity cannot sample every resident within the campaign.
	PointShortfall    int64 `json:"point_shortfall"`
	SamplerShortfall  int64 `json:"sampler_shortfall"`
	CapacityShortfall bool  `json:"capacity_shortfall"`
}

// Short reports whether anything is short.
func (f PlanFigure) Short() bool {
	return f.PointShortfall > 0 || f.SamplerShortfall > 0 || f.CapacityShortfall
}

// needs fills in what the figures' residents need over days.
func (f *PlanFigure) needs(days int) {
	f.PointsNeeded = ceilDiv(f.Residents, ResidentsPerPointHigh)
	f.PointsIdeal = ceilDiv(f.Residents, ResidentsPerPointLow)
	f.SamplersNeeded = ceilDiv(f.Residents, int64(ResidentsPerSamplerDay*days))
	f.PointShortfall = max(f.PointsNeeded-int64(f.PointCount), 0)
	f.SamplerShortfall = max(f.SamplersNeeded-int64(f.Samplers), 0)
	f.CapacityShortfall = f.CapacityPerDay > 0 && f.CapacityPerDay*int64(days) < f.Residents
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// campaignDays is how many days a campaign runs, counting a started day.
func campaignDays(c Campaign) int {
	return max(int(math.Ceil(c.EndsAt.Sub(c.StartsAt).Hours()/24)), 1)
}

// maxPlanPoints bounds the points one plan page reads.
const maxPlanPoints = 5000

// Plan returns the campaign's planning figures for a region in the caller's
// scope ("" for the narrower of the caller's region and the campaign's):
// residents from the coverage counters, points from the campaign's points.
func (s *Service) Plan(ctx context.Context, campaignID int64, regionCode string) (Plan, error) {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return Plan{}, err
	}
	c, err := s.campaign(ctx, s.db, p, campaignID)
	if err != nil {
		return Plan{}, err
	}
	region, err := focusRegion(p, c, regionCode)
	if err != nil {
		return Plan{}, err
	}
	counters, err := s.coverageRows(ctx, p, c.ID, region)
	if err != nil {
		return Plan{}, err
	}
	var a storage.Args
	points, err := s.queryPoints(ctx, "SELECT "+pointColumns+" FROM sampling_points sp WHERE sp.campaign_id = "+a.Add(c.ID)+
		" AND "+scope.RegionPrefix(&a, "sp.region_code", region)+" AND "+p.Where(&a, "sp.region_code", "sp.institution_id")+
		" ORDER BY sp.region_code, sp.name, sp.id LIMIT "+a.Add(maxPlanPoints), a.Values())
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Campaign: c, RegionCode: region, RegionName: s.placeName(region), Days: campaignDays(c)}
	groups := s.newChildGroups(region, c.RegionCodes)
	rows := map[string]*PlanRow{}
	row := func(code string) *PlanRow {
		key, direct := groups.key(code)
		r := rows[key]
		if r == nil {
			r = &PlanRow{RegionCode: key, Name: s.divisionName(key), Direct: direct, Points: []SamplingPoint{}}
			rows[key] = r
		}
		return r
	}
	for _, k := range groups.kids {
		row(k.Code)
	}
	for _, cv := range counters {
		row(cv.RegionCode).Residents += cv.Targeted
	}
	for _, sp := range points {
		r := row(sp.RegionCode)
		r.Points = append(r.Points, sp)
		r.PointCount++
		r.Samplers += sp.Samplers
		r.CapacityPerDay += int64(sp.CapacityPerDay())
	}
	for _, key := range groups.order(slices.Collect(maps.Keys(rows))) {
		r := rows[key]
		r.needs(plan.Days)
		plan.Rows = append(plan.Rows, *r)
		plan.Total.Residents += r.Residents
		plan.Total.PointCount += r.PointCount
		plan.Total.Samplers += r.Samplers
		plan.Total.CapacityPerDay += r.CapacityPerDay
	}
	// The total's needs are the sums of the rows' (each region needs its own
	// points; a surplus in one does not serve another), not the needs of
	// the summed residents.
	for _, r := range plan.Rows {
		plan.Total.PointsNeeded += r.PointsNeeded
		plan.Total.PointsIdeal += r.PointsIdeal
		plan.Total.SamplersNeeded += r.SamplersNeeded
		plan.Total.PointShortfall += r.PointShortfall
		plan.Total.SamplerShortfall += r.SamplerShortfall
		plan.Total.CapacityShortfall = plan.Total.CapacityShortfall || r.CapacityShortfall
	}
	return plan, nil
}
