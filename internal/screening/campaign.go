package screening

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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

// Pathogen is what a campaign tests for. The codes are an API contract.
type Pathogen string

// The pathogens.
const (
	SARSCoV2      Pathogen = "sars_cov_2"
	InfluenzaA    Pathogen = "influenza_a"
	InfluenzaB    Pathogen = "influenza_b"
	OtherPathogen Pathogen = "other"
)

// Pathogens lists the pathogens in display order.
var Pathogens = []Pathogen{SARSCoV2, InfluenzaA, InfluenzaB, OtherPathogen}

// ViewRoles may read campaigns and their points: everyone who takes part in
// screening. Samplers and labs need the campaign to register and result;
// figures and personal lists are for FollowRoles.
var ViewRoles = []scope.Role{scope.BureauAdmin, scope.Epidemiologist, scope.InstitutionStaff, scope.Sampler, scope.Lab}

// Limits of a campaign's input.
const (
	maxCampaignName    = 100
	maxCampaignRegions = 500
	// defaultResultsDue is how long after the end results are due when the
	// planner gives no deadline: the national rule of results within 12
	// hours of the last sample.
	defaultResultsDue = 12 * time.Hour
)

// Campaign is a screening round (筛查轮次) as shown and sent over the API.
type Campaign struct {
	ID       int64    `json:"id"`
	Name     string   `json:"name"`
	Pathogen Pathogen `json:"pathogen"`
	// RegionCodes are the targeted regions, sorted.
	RegionCodes []string `json:"region_codes"`
	// RegionCode is the narrowest region containing all targeted regions.
	RegionCode   string     `json:"region_code"`
	RegionName   string     `json:"region_name"`
	PoolSize     int        `json:"pool_size"`
	StartsAt     time.Time  `json:"starts_at"`
	EndsAt       time.Time  `json:"ends_at"`
	ResultsDueAt time.Time  `json:"results_due_at"`
	ClosedAt     *time.Time `json:"closed_at"` // nil while open
	CreatedAt    time.Time  `json:"created_at"`
}

// Closed reports whether the campaign has been closed.
func (c Campaign) Closed() bool { return c.ClosedAt != nil }

// NewCampaign is what a planner submits to start a campaign.
type NewCampaign struct {
	Name        string
	Pathogen    Pathogen
	RegionCodes []string
	PoolSize    int
	StartsAt    time.Time
	EndsAt      time.Time
	// ResultsDueAt is the results deadline; zero means EndsAt + 12 hours.
	ResultsDueAt time.Time
}

// CampaignQuery selects campaigns for Campaigns.
type CampaignQuery struct {
	// State is "active" (not closed), "closed" or "" for both.
	State  string
	Cursor string // from the previous page's next cursor
	Limit  int    // 1..200; 50 when 0
}

// CreateCampaign starts a campaign over regions in the caller's capture
// scope and counts the residents it targets into the coverage counters, in
// one transaction.
func (s *Service) CreateCampaign(ctx context.Context, nc NewCampaign) (Campaign, error) {
	return s.createCampaign(ctx, nc, nil)
}

// createCampaign is CreateCampaign with the problems a caller already found
// in the input (unparsable times), so every bad field is named at once.
func (s *Service) createCampaign(ctx context.Context, nc NewCampaign, found apperr.Problems) (Campaign, error) {
	p, err := scope.Require(ctx, PlanRoles...)
	if err != nil {
		return Campaign{}, err
	}
	nc, problems := s.normalizeCampaign(p, nc, found)
	if err := problems.Err(); err != nil {
		return Campaign{}, err
	}
	region := enclosingRegion(nc.RegionCodes)
	var id int64
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		now := storage.Millis(s.now())
		var inst sql.NullInt64
		if p.InstitutionID != 0 {
			inst = sql.NullInt64{Int64: p.InstitutionID, Valid: true}
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO campaigns (name, pathogen, pool_size, starts_at, ends_at, results_due_at,
			region_code, institution_id, created_at, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9) RETURNING id`,
			nc.Name, string(nc.Pathogen), nc.PoolSize, storage.Millis(nc.StartsAt), storage.Millis(nc.EndsAt),
			storage.Millis(nc.ResultsDueAt), region, inst, now, actorID(p)).Scan(&id)
		if err != nil {
			return fmt.Errorf("insert campaign: %w", err)
		}
		var a storage.Args
		values := make([]string, len(nc.RegionCodes))
		ranges := make([]string, len(nc.RegionCodes))
		for i, code := range nc.RegionCodes {
			values[i] = "(" + a.Add(id) + ", " + a.Add(code) + ")"
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO campaign_regions (campaign_id, region_code) VALUES "+strings.Join(values, ", "), a.Values()...); err != nil {
			return fmt.Errorf("insert campaign regions: %w", err)
		}
		// The targeted residents per residence region, counted once now so
		// a coverage page reads counters instead of the registry.
		a = storage.Args{}
		campaign := a.Add(id)
		for i, code := range nc.RegionCodes {
			ranges[i] = scope.RegionPrefix(&a, "p.region_code", code)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO coverage (campaign_id, region_code, targeted)
			SELECT `+campaign+`, p.region_code, COUNT(*) FROM persons p WHERE `+strings.Join(ranges, " OR ")+` GROUP BY p.region_code`,
			a.Values()...); err != nil {
			return fmt.Errorf("count targeted residents: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "campaign.create", ObjectType: "campaign", ObjectID: strconv.FormatInt(id, 10),
			Detail: fmt.Sprintf("%s pool=%d regions=%s", nc.Pathogen, nc.PoolSize, strings.Join(nc.RegionCodes, ","))})
	})
	if err != nil {
		return Campaign{}, fmt.Errorf("screening: create campaign: %w", err)
	}
	return s.campaign(ctx, s.db, p, id)
}

// normalizeCampaign trims and checks a new campaign, adding every bad field
// to the problems already found.
func (s *Service) normalizeCampaign(p *scope.Principal, nc NewCampaign, problems apperr.Problems) (NewCampaign, apperr.Problems) {
	nc.Name = strings.TrimSpace(nc.Name)
	switch n := utf8.RuneCountInString(nc.Name); {
	case n == 0:
		problems.Add("name", "required", "required")
	case n > maxCampaignName:
		problems.Add("name", "campaign.name_length", "at most %v characters", maxCampaignName)
	}
	nc.Pathogen = Pathogen(strings.TrimSpace(string(nc.Pathogen)))
	if nc.Pathogen == "" {
		problems.Add("pathogen", "required", "required")
	} else if !slices.Contains(Pathogens, nc.Pathogen) {
		problems.Add("pathogen", "campaign.pathogen_unknown", "unknown pathogen %v", string(nc.Pathogen))
	}
	nc.RegionCodes = s.campaignRegions(p, nc.RegionCodes, &problems)
	if !slices.Contains(PoolSizes, nc.PoolSize) {
		problems.Add("pool_size", "campaign.pool_size", "the pool size must be 1, 5, 10 or 20")
	}
	if nc.StartsAt.IsZero() && !problems.Has("starts_at") {
		problems.Add("starts_at", "required", "required")
	}
	if nc.EndsAt.IsZero() && !problems.Has("ends_at") {
		problems.Add("ends_at", "required", "required")
	}
	if !nc.StartsAt.IsZero() && !nc.EndsAt.IsZero() && !nc.EndsAt.After(nc.StartsAt) {
		problems.Add("ends_at", "campaign.ends_before_start", "the end must be after the start")
	}
	if nc.ResultsDueAt.IsZero() {
		if !nc.EndsAt.IsZero() {
			nc.ResultsDueAt = nc.EndsAt.Add(defaultResultsDue)
		}
	} else if !nc.StartsAt.IsZero() && !nc.ResultsDueAt.After(nc.StartsAt) {
		problems.Add("results_due_at", "campaign.results_due_before_start", "results cannot be due before the campaign starts")
	}
	return nc, problems
}

// campaignRegions checks the targeted regions: at least one; each a listed
// division (or a village of a listed township) at district level or below,
// in the caller's capture scope; no region twice and none inside another,
// which would count its residents twice. It returns them trimmed and sorted.
func (s *Service) campaignRegions(p *scope.Principal, codes []string, problems *apperr.Problems) []string {
	const field = "region_codes"
	if len(codes) == 0 {
		problems.Add(field, "required", "required")
		return nil
	}
	if len(codes) > maxCampaignRegions {
		problems.Add(field, "campaign.regions_too_many", "at most %v regions", maxCampaignRegions)
		return nil
	}
	out := make([]string, 0, len(codes))
	for _, raw := range codes {
		code := strings.TrimSpace(raw)
		d, err := s.tree.Resolve(code)
		switch {
		case err != nil:
			problems.Add(field, "region_code.unknown", "unknown region code %v", code)
			continue
		case d.Level < regions.District:
			problems.Add(field, "campaign.region_level", "%v: a campaign targets districts, townships or villages", code)
			continue
		case slices.Contains(out, code):
			problems.Add(field, "campaign.region_duplicate", "%v is listed twice", code)
			continue
		}
		if err := p.CheckCapture(field, code, 0); err != nil {
			problems.AddErr("", err)
			continue
		}
		out = append(out, code)
	}
	slices.Sort(out)
	// Sorted, a region is directly followed by whatever lies inside it.
	for i := 1; i < len(out); i++ {
		if s.tree.Contains(out[i-1], out[i]) {
			problems.Add(field, "campaign.region_nested", "%v lies inside %v", out[i], out[i-1])
		}
	}
	return out
}

// enclosingRegion returns the narrowest division containing every code: their
// longest common prefix that ends on a level boundary ("" for none).
func enclosingRegion(codes []string) string {
	best := ""
	for _, n := range []int{2, 4, 6, 9, 12} {
		prefix := ""
		for _, c := range codes {
			if len(c) < n || (prefix != "" && c[:n] != prefix) {
				return best
			}
			prefix = c[:n]
		}
		best = prefix
	}
	return best
}

// Campaign returns one campaign visible to the caller.
func (s *Service) Campaign(ctx context.Context, id int64) (Campaign, error) {
	p, err := scope.Require(ctx, ViewRoles...)
	if err != nil {
		return Campaign{}, err
	}
	return s.campaign(ctx, s.db, p, id)
}

// campaignVisible returns the condition that campaign alias c is visible to
// p: one of its targeted regions overlaps p's scope (a township user sees the
// district's campaign), or, for an institution-scoped user, the campaign has
// a point of their institution.
func campaignVisible(p *scope.Principal, a *storage.Args) string {
	cond := "EXISTS (SELECT 1 FROM campaign_regions cr WHERE cr.campaign_id = c.id AND " + p.WhereOverlaps(a, "cr.region_code") + ")"
	if p.InstitutionID != 0 {
		cond = "(" + cond + " OR EXISTS (SELECT 1 FROM sampling_points vsp WHERE vsp.campaign_id = c.id AND vsp.institution_id = " +
			a.Add(p.InstitutionID) + "))"
	}
	return cond
}

const campaignColumns = "c.id, c.name, c.pathogen, c.pool_size, c.starts_at, c.ends_at, c.results_due_at, c.region_code, c.closed_at, c.created_at"

func (s *Service) scanCampaign(row interface{ Scan(...any) error }) (Campaign, error) {
	var c Campaign
	var starts, ends, due, created int64
	var closed sql.NullInt64
	if err := row.Scan(&c.ID, &c.Name, &c.Pathogen, &c.PoolSize, &starts, &ends, &due, &c.RegionCode, &closed, &created); err != nil {
		return Campaign{}, err
	}
	c.StartsAt, c.EndsAt, c.ResultsDueAt, c.CreatedAt = storage.FromMillis(starts), storage.FromMillis(ends), storage.FromMillis(due), storage.FromMillis(created)
	if closed.Valid {
		t := storage.FromMillis(closed.Int64)
		c.ClosedAt = &t
	}
	c.RegionName = s.placeName(c.RegionCode)
	c.RegionCodes = []string{}
	return c, nil
}

// campaign reads one campaign visible to p, with its regions.
func (s *Service) campaign(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) (Campaign, error) {
	return s.readCampaign(ctx, q, p, id, false)
}

// managedCampaign reads a campaign p may change: visible to p, with its
// whole region in p's scope. A township admin sees the district's campaign
// but cannot close it; to them it is not there to change.
func (s *Service) managedCampaign(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) (Campaign, error) {
	return s.readCampaign(ctx, q, p, id, true)
}

func (s *Service) readCampaign(ctx context.Context, q storage.Querier, p *scope.Principal, id int64, manage bool) (Campaign, error) {
	var a storage.Args
	query := "SELECT " + campaignColumns + " FROM campaigns c WHERE c.id = " + a.Add(id) + " AND " + campaignVisible(p, &a)
	if manage {
		query += " AND " + p.Where(&a, "c.region_code", "")
	}
	c, err := s.scanCampaign(q.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Campaign{}, apperr.NotFoundf("campaign not found")
	}
	if err != nil {
		return Campaign{}, fmt.Errorf("screening: get campaign %d: %w", id, err)
	}
	list := []Campaign{c}
	if err := s.fillCampaignRegions(ctx, q, list); err != nil {
		return Campaign{}, err
	}
	return list[0], nil
}

// fillCampaignRegions reads the targeted regions of the campaigns.
func (s *Service) fillCampaignRegions(ctx context.Context, q storage.Querier, list []Campaign) error {
	if len(list) == 0 {
		return nil
	}
	var a storage.Args
	ids := make([]string, len(list))
	at := make(map[int64]int, len(list))
	for i, c := range list {
		ids[i] = a.Add(c.ID)
		at[c.ID] = i
	}
	rows, err := q.QueryContext(ctx, "SELECT campaign_id, region_code FROM campaign_regions WHERE campaign_id IN ("+
		strings.Join(ids, ", ")+") ORDER BY campaign_id, region_code", a.Values()...)
	if err != nil {
		return fmt.Errorf("screening: read campaign regions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var code string
		if err := rows.Scan(&id, &code); err != nil {
			return fmt.Errorf("screening: read campaign regions: %w", err)
		}
		c := &list[at[id]]
		c.RegionCodes = append(c.RegionCodes, code)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("screening: read campaign regions: %w", err)
	}
	return nil
}

// Campaigns returns a page of the campaigns visible to the caller, newest
// first, and the cursor of the next page ("" on the last).
func (s *Service) Campaigns(ctx context.Context, q CampaignQuery) ([]Campaign, string, error) {
	p, err := scope.Require(ctx, ViewRoles...)
	if err != nil {
		return nil, "", err
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	if q.Limit < 1 || q.Limit > 200 {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 200)
	}
	var a storage.Args
	where := []string{campaignVisible(p, &a)}
	switch q.State {
	case "":
	case "active":
		where = append(where, "c.closed_at IS NULL")
	case "closed":
		where = append(where, "c.closed_at IS NOT NULL")
	default:
		return nil, "", apperr.Field("state", "campaign.state_unknown", "state must be active or closed")
	}
	var after int64
	if err := web.DecodeCursor(q.Cursor, &after); err != nil {
		return nil, "", err
	}
	if after > 0 {
		where = append(where, "c.id < "+a.Add(after))
	}
	query := "SELECT " + campaignColumns + " FROM campaigns c WHERE " + strings.Join(where, " AND ") +
		" ORDER BY c.id DESC LIMIT " + a.Add(q.Limit+1)
	out, err := storage.Query(ctx, s.db, s.scanCampaign, query, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("screening: list campaigns: %w", err)
	}
	out, next := web.NextPage(out, q.Limit, func(c Campaign) any { return c.ID })
	if err := s.fillCampaignRegions(ctx, s.db, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// CloseCampaign closes a campaign: its points leave the samplers' list.
// Only a planner whose scope holds the campaign's whole region may close it;
// closing a closed campaign changes nothing.
func (s *Service) CloseCampaign(ctx context.Context, id int64) (Campaign, error) {
	p, err := scope.Require(ctx, PlanRoles...)
	if err != nil {
		return Campaign{}, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.managedCampaign(ctx, tx, p, id); err != nil {
			return err
		}
		var a storage.Args
		now := a.Add(storage.Millis(s.now()))
		res, err := tx.ExecContext(ctx, "UPDATE campaigns SET closed_at = "+now+", updated_at = "+now+
			" WHERE id = "+a.Add(id)+" AND closed_at IS NULL AND "+p.Where(&a, "region_code", ""), a.Values()...)
		if err != nil {
			return fmt.Errorf("close campaign %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "campaign.close", ObjectType: "campaign", ObjectID: strconv.FormatInt(id, 10)})
	})
	if err != nil {
		return Campaign{}, err
	}
	// Registrations check the campaign through the point cache: this
	// instance refuses them from now on (others within pointTTL).
	s.points.forget()
	return s.campaign(ctx, s.db, p, id)
}

// Manages reports whether p may close campaign c (see managedCampaign).
func Manages(p *scope.Principal, c Campaign) bool {
	return p.HasAny(PlanRoles...) && (p.IsSystem() || p.CoversRegion(c.RegionCode))
}

// placeName names a region for display: its place names, or for a village
// the data does not list, its township's.
func (s *Service) placeName(code string) string {
	if code == "" {
		return ""
	}
	if name := s.tree.Path(code); name != "" {
		return name
	}
	if d, err := s.tree.Resolve(code); err == nil && d.ParentCode != "" {
		return s.tree.Path(d.ParentCode)
	}
	return ""
}

// actorID is the principal's user id for created_by columns; NULL for the
// system.
func actorID(p *scope.Principal) sql.NullInt64 {
	return sql.NullInt64{Int64: p.UserID, Valid: p.UserID != 0}
}
