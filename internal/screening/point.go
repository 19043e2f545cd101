package screening

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// Limits of a sampling point's input.
const (
	maxPointName    = 100
	maxPointAddress = 200
	maxCapacity     = 10000 // people an hour: far beyond any real point
	maxSamplers     = 1000
	// samplerPointsGrace is how long after its end a campaign's points stay
	// on the samplers' list: the last queue is sampled and the last tubes
	// sealed after the planned end.
	samplerPointsGrace = 12 * time.Hour
)

// SamplingPoint is a campaign's sampling point (采样点).
type SamplingPoint struct {
	ID            int64  `json:"id"`
	CampaignID    int64  `json:"campaign_id"`
	InstitutionID int64  `json:"institution_id"`
	Name          string `json:"name"`
	RegionCode    string `json:"region_code"`
	RegionName    string `json:"region_name"`
	Address       string `json:"address"`
	// Opens and Closes are the opening hours, HH:MM in the bureau's zone.
	Opens           string    `json:"opens"`
	Closes          string    `json:"closes"`
	CapacityPerHour int       `json:"capacity_per_hour"`
	Samplers        int       `json:"samplers"`
	CreatedAt       time.Time `json:"created_at"`
}

// OpenHours returns how many hours a day the point is open.
func (sp SamplingPoint) OpenHours() float64 {
	o, _ := minuteOfDay(sp.Opens)
	c, _ := minuteOfDay(sp.Closes)
	if c <= o {
		return 0
	}
	return float64(c-o) / 60
}

// CapacityPerDay is how many people the point can sample in a day of its
// opening hours; 0 when its capacity is not known.
func (sp SamplingPoint) CapacityPerDay() int {
	return int(float64(sp.CapacityPerHour) * sp.OpenHours())
}

// NewSamplingPoint is what a planner submits to add a point to a campaign.
type NewSamplingPoint struct {
	CampaignID int64
	// InstitutionID is the point's institution (type sampling_point); 0
	// finds the sampling point institution of that name in that region, or
	// registers it.
	InstitutionID   int64
	Name            string
	RegionCode      string
	Address         string
	Opens, Closes   string // HH:MM; "" for 07:00 and 21:00
	CapacityPerHour int
	Samplers        int
}

// SamplerPoint is a point a sampler may register specimens at, with what
// the sampler page needs of its campaign.
type SamplerPoint struct {
	ID           int64
	Name         string
	CampaignID   int64
	CampaignName string
	PoolSize     int
	RegionCode   string
}

// CreateSamplingPoint adds a point to a campaign. The point's region must lie
// in one of the campaign's regions and in the caller's capture scope.
func (s *Service) CreateSamplingPoint(ctx context.Context, np NewSamplingPoint) (SamplingPoint, error) {
	return s.createSamplingPoint(ctx, np, nil)
}

// createSamplingPoint is CreateSamplingPoint with the problems a caller
// already found in the input (a form's unreadable numbers).
func (s *Service) createSamplingPoint(ctx context.Context, np NewSamplingPoint, found apperr.Problems) (SamplingPoint, error) {
	p, err := scope.Require(ctx, PlanRoles...)
	if err != nil {
		return SamplingPoint{}, err
	}
	np, problems := s.normalizePoint(p, np, found)
	if err := problems.Err(); err != nil {
		return SamplingPoint{}, err
	}
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		c, err := s.campaign(ctx, tx, p, np.CampaignID)
		if apperr.Is(err, apperr.NotFound) {
			return apperr.Field("campaign_id", "campaign.unknown", "no such campaign")
		}
		if err != nil {
			return err
		}
		if c.Closed() {
			return apperr.Field("campaign_id", "campaign.closed", "the campaign is closed")
		}
		if !insideAny(s.tree, c.RegionCodes, np.RegionCode) {
			return apperr.Field("region_code", "point.outside_campaign", "the point must lie in one of the campaign's regions")
		}
		var audits []audit.Entry
		inst := np.InstitutionID
		if inst == 0 {
			var created bool
			if inst, created, err = s.pointInstitution(ctx, tx, np); err != nil {
				return err
			}
			if created {
				audits = append(audits, audit.Entry{Action: "institution.create", ObjectType: "institution",
					ObjectID: strconv.FormatInt(inst, 10), Detail: string(regions.SamplingPoint) + " " + np.RegionCode})
			}
		} else if err := s.checkPointInstitution(ctx, tx, p, inst); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO sampling_points (campaign_id, institution_id, name, region_code, address, opens, closes,
			capacity_per_hour, samplers, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			c.ID, inst, np.Name, np.RegionCode, np.Address, np.Opens, np.Closes, np.CapacityPerHour, np.Samplers,
			storage.Millis(s.now()), actorID(p)).Scan(&id)
		if storage.IsUniqueViolation(err) {
			return apperr.Field("institution_id", "point.duplicate", "this institution is already a point of the campaign")
		}
		if err != nil {
			return fmt.Errorf("insert sampling point: %w", err)
		}
		audits = append(audits, audit.Entry{Action: "sampling_point.create", ObjectType: "sampling_point", ObjectID: strconv.FormatInt(id, 10),
			Detail: fmt.Sprintf("campaign=%d institution=%d region=%s", c.ID, inst, np.RegionCode)})
		return s.audit.RecordBatch(ctx, tx, audits)
	})
	if err != nil {
		return SamplingPoint{}, err
	}
	return s.samplingPoint(ctx, s.db, p, id)
}

// normalizePoint trims and checks a new point, adding every bad field to
// the problems already found.
func (s *Service) normalizePoint(p *scope.Principal, np NewSamplingPoint, problems apperr.Problems) (NewSamplingPoint, apperr.Problems) {
	if np.CampaignID <= 0 {
		problems.Add("campaign_id", "required", "required")
	}
	np.Name = strings.TrimSpace(np.Name)
	switch n := utf8.RuneCountInString(np.Name); {
	case n == 0:
		problems.Add("name", "required", "required")
	case n > maxPointName:
		problems.Add("name", "point.name_length", "at most %v characters", maxPointName)
	}
	np.RegionCode = strings.TrimSpace(np.RegionCode)
	if np.RegionCode == "" {
		problems.Add("region_code", "required", "required")
	} else if d, err := s.tree.Resolve(np.RegionCode); err != nil {
		problems.AddErr("", err)
	} else if d.Level < regions.District {
		problems.Add("region_code", "point.region_level", "a point lies in a district, township or village")
	} else if err := p.CheckCapture("region_code", np.RegionCode, np.InstitutionID); err != nil {
		problems.AddErr("", err)
	}
	if np.InstitutionID < 0 {
		problems.Add("institution_id", "point.institution_unknown", "no such institution")
	}
	np.Address = strings.TrimSpace(np.Address)
	if utf8.RuneCountInString(np.Address) > maxPointAddress {
		problems.Add("address", "point.address_length", "at most %v characters", maxPointAddress)
	}
	np.Opens, np.Closes = strings.TrimSpace(np.Opens), strings.TrimSpace(np.Closes)
	if np.Opens == "" {
		np.Opens = "07:00"
	}
	if np.Closes == "" {
		np.Closes = "21:00"
	}
	opens, okOpens := minuteOfDay(np.Opens)
	closes, okCloses := minuteOfDay(np.Closes)
	if !okOpens {
		problems.Add("opens", "point.time_invalid", "a time of day as HH:MM")
	}
	if !okCloses {
		problems.Add("closes", "point.time_invalid", "a time of day as HH:MM")
	}
	if okOpens && okCloses && closes <= opens {
		problems.Add("closes", "point.closes_before_opens", "the point must close after it opens")
	}
	if (np.CapacityPerHour < 0 || np.CapacityPerHour > maxCapacity) && !problems.Has("capacity_per_hour") {
		problems.Add("capacity_per_hour", "point.capacity_range", "a whole number from 0 to %v", maxCapacity)
	}
	if (np.Samplers < 0 || np.Samplers > maxSamplers) && !problems.Has("samplers") {
		problems.Add("samplers", "point.samplers_range", "a whole number from 0 to %v", maxSamplers)
	}
	return np, problems
}

// minuteOfDay parses HH:MM (00:00 to 24:00) into minutes after midnight.
func minuteOfDay(s string) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// insideAny reports whether code lies in (or is) one of the regions.
func insideAny(tree *regions.Tree, regionCodes []string, code string) bool {
	for _, r := range regionCodes {
		if tree.Contains(r, code) {
			return true
		}
	}
	return false
}

// pointInstitution finds the sampling point institution named np.Name in
// np.RegionCode, or registers it; created says which.
func (s *Service) pointInstitution(ctx context.Context, tx *sql.Tx, np NewSamplingPoint) (id int64, created bool, err error) {
	var typ string
	var active bool
	err = tx.QueryRowContext(ctx, "SELECT id, type, active FROM institutions WHERE region_code = $1 AND name = $2",
		np.RegionCode, np.Name).Scan(&id, &typ, &active)
	switch {
	case err == nil && typ != string(regions.SamplingPoint):
		// The register keeps names unique per region.
		return 0, false, apperr.Field("name", "point.name_taken", "another kind of institution in this region has this name")
	case err == nil && !active:
		return 0, false, apperr.Field("name", "point.institution_inactive", "this sampling point institution is deactivated")
	case err == nil:
		return id, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, false, fmt.Errorf("find sampling point institution: %w", err)
	}
	now := storage.Millis(s.now())
	err = tx.QueryRowContext(ctx, `INSERT INTO institutions (name, type, region_code, address, phone, active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, '', TRUE, $5, $5) RETURNING id`,
		np.Name, string(regions.SamplingPoint), np.RegionCode, np.Address, now).Scan(&id)
	if storage.IsUniqueViolation(err) {
		// Another planner Registered it a moment ago; their transaction has
		// it, and a retry finds it.
		return 0, false, apperr.New(apperr.Conflict, "the point's institution was Registered at the same time; try again")
	}
	if err != nil {
		return 0, false, fmt.Errorf("register sampling point institution: %w", err)
	}
	return id, true, nil
}

// checkPointInstitution checks that a given institution is an active
// sampling point in p's scope.
func (s *Service) checkPointInstitution(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) error {
	var a storage.Args
	var typ string
	var active bool
	query := "SELECT i.type, i.active FROM institutions i WHERE i.id = " + a.Add(id) + " AND " + p.Where(&a, "i.region_code", "i.id")
	err := q.QueryRowContext(ctx, query, a.Values()...).Scan(&typ, &active)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return apperr.Field("institution_id", "point.institution_unknown", "no such institution")
	case err != nil:
		return fmt.Errorf("check sampling point institution %d: %w", id, err)
	case typ != string(regions.SamplingPoint):
		return apperr.Field("institution_id", "point.institution_type", "the institution is not a sampling point")
	case !active:
		return apperr.Field("institution_id", "point.institution_inactive", "this sampling point institution is deactivated")
	}
	return nil
}

const pointColumns = "sp.id, sp.campaign_id, sp.institution_id, sp.name, sp.region_code, sp.address, sp.opens, sp.closes, sp.capacity_per_hour, sp.samplers, sp.created_at"

func (s *Service) scanPoint(row interface{ Scan(...any) error }) (SamplingPoint, error) {
	var sp SamplingPoint
	var created int64
	if err := row.Scan(&sp.ID, &sp.CampaignID, &sp.InstitutionID, &sp.Name, &sp.RegionCode, &sp.Address, &sp.Opens, &sp.Closes,
		&sp.CapacityPerHour, &sp.Samplers, &created); err != nil {
		return SamplingPoint{}, err
	}
	sp.CreatedAt = storage.FromMillis(created)
	sp.RegionName = s.placeName(sp.RegionCode)
	return sp, nil
}

// SamplingPoint returns one point in the caller's scope.
func (s *Service) SamplingPoint(ctx context.Context, id int64) (SamplingPoint, error) {
	p, err := scope.Require(ctx, ViewRoles...)
	if err != nil {
		return SamplingPoint{}, err
	}
	return s.samplingPoint(ctx, s.db, p, id)
}

func (s *Service) samplingPoint(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) (SamplingPoint, error) {
	var a storage.Args
	query := "SELECT " + pointColumns + " FROM sampling_points sp WHERE sp.id = " + a.Add(id) + " AND " + p.Where(&a, "sp.region_code", "sp.institution_id")
	sp, err := s.scanPoint(q.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return SamplingPoint{}, apperr.NotFoundf("sampling point not found")
	}
	if err != nil {
		return SamplingPoint{}, fmt.Errorf("screening: get sampling point %d: %w", id, err)
	}
	return sp, nil
}

// PointQuery selects sampling points for SamplingPoints.
type PointQuery struct {
	CampaignID int64  // 0 for every campaign
	RegionCode string // the points in this region's subtree; "" for all
	Cursor     string
	Limit      int // 1..1000; 200 when 0
}

// pointCursor is the sort key of the last point of a page.
type pointCursor struct {
	Region string `json:"r"`
	ID     int64  `json:"i"`
}

// SamplingPoints returns a page of the points in the caller's scope, by
// region, and the cursor of the next page ("" on the last).
func (s *Service) SamplingPoints(ctx context.Context, q PointQuery) ([]SamplingPoint, string, error) {
	p, err := scope.Require(ctx, ViewRoles...)
	if err != nil {
		return nil, "", err
	}
	if q.Limit == 0 {
		q.Limit = 200
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 1000)
	}
	var a storage.Args
	where := []string{p.Where(&a, "sp.region_code", "sp.institution_id")}
	if q.CampaignID != 0 {
		where = append(where, "sp.campaign_id = "+a.Add(q.CampaignID))
	}
	if q.RegionCode = strings.TrimSpace(q.RegionCode); q.RegionCode != "" {
		if !regions.ValidCode(q.RegionCode) {
			return nil, "", apperr.Field("region_code", "region_code.unknown", "unknown region code %v", q.RegionCode)
		}
		where = append(where, scope.RegionPrefix(&a, "sp.region_code", q.RegionCode))
	}
	var after pointCursor
	if err := web.DecodeCursor(q.Cursor, &after); err != nil {
		return nil, "", err
	}
	if q.Cursor != "" {
		r, id := a.Add(after.Region), a.Add(after.ID)
		where = append(where, "(sp.region_code > "+r+" OR (sp.region_code = "+r+" AND sp.id > "+id+"))")
	}
	query := "SELECT " + pointColumns + " FROM sampling_points sp WHERE " + strings.Join(where, " AND ") +
		" ORDER BY sp.region_code, sp.id LIMIT " + a.Add(q.Limit+1)
	out, err := s.queryPoints(ctx, query, a.Values())
	if err != nil {
		return nil, "", err
	}
	out, next := web.NextPage(out, q.Limit, func(sp SamplingPoint) any { return pointCursor{Region: sp.RegionCode, ID: sp.ID} })
	return out, next, nil
}

func (s *Service) queryPoints(ctx context.Context, query string, args []any) ([]SamplingPoint, error) {
	out, err := storage.Query(ctx, s.db, s.scanPoint, query, args...)
	if err != nil {
		return nil, fmt.Errorf("screening: list sampling points: %w", err)
	}
	return out, nil
}

// maxSamplerPoints bounds the sampler page's choice of points.
const maxSamplerPoints = 1000

// SamplerPoints returns the points where the caller may register specimens
// now: those of campaigns not closed and not ended more than 12 hours ago,
// in the caller's scope — an institution-scoped sampler's own point, a
// bureau admin's points in their region. Newest campaign first.
func (s *Service) SamplerPoints(ctx context.Context) ([]SamplerPoint, error) {
	p, err := scope.Require(ctx, SampleRoles...)
	if err != nil {
		return nil, err
	}
	var a storage.Args
	query := `SELECT sp.id, sp.name, c.id, c.name, c.pool_size, sp.region_code
		FROM sampling_points sp JOIN campaigns c ON c.id = sp.campaign_id
		WHERE c.closed_at IS NULL AND c.ends_at > ` + a.Add(storage.Millis(s.now().Add(-samplerPointsGrace))) +
		` AND ` + p.Where(&a, "sp.region_code", "sp.institution_id") +
		` ORDER BY c.starts_at DESC, c.id DESC, sp.name, sp.id LIMIT ` + a.Add(maxSamplerPoints)
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: sampler points: %w", err)
	}
	defer rows.Close()
	var out []SamplerPoint
	for rows.Next() {
		var sp SamplerPoint
		if err := rows.Scan(&sp.ID, &sp.Name, &sp.CampaignID, &sp.CampaignName, &sp.PoolSize, &sp.RegionCode); err != nil {
			return nil, fmt.Errorf("screening: sampler points: %w", err)
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("screening: sampler points: %w", err)
	}
	return out, nil
}
