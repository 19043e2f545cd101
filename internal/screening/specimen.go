package screening

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// NewSpecimen is a specimen registration as a sampling app sends it. The
// client id is the app's own id for this registration: sending it again
// (after a timeout, from an offline queue) returns the original.
type NewSpecimen struct {
	ClientID        string         `json:"client_id"`
	CampaignID      int64          `json:"campaign_id"`
	SamplingPointID int64          `json:"sampling_point_id"`
	TubeCode        string         `json:"tube_code"`
	SampledAt       string         `json:"sampled_at"` // RFC 3339
	Person          SpecimenPerson `json:"person"`
}

// SpecimenPerson is who was sampled, as the sampler entered or scanned it.
// Elderly people without a phone are Registered with NoPhone instead.
type SpecimenPerson struct {
	IDType     string `json:"id_type"`
	IDNumber   string `json:"id_number"`
	Name       string `json:"name"`
	Phone      string `json:"phone"`
	RegionCode string `json:"region_code"`
	NoPhone    bool   `json:"no_phone"`
}

// Registered is a stored specimen as its registration answers: the tube's
// fill counts the tube's members now.
type Registered struct {
	ID           int64  `json:"id"`
	ClientID     string `json:"client_id"`
	TubeCode     string `json:"tube_code"`
	TubeCount    int    `json:"tube_count"`
	TubeCapacity int    `json:"tube_capacity"`
	TubeState    string `json:"tube_state"`
	// Created is false when the client id was already Registered with the
	// same body: the answer is then the original (HTTP 200, not 201).
	Created bool `json:"-"`
}

// Field names and error codes of a registration; codes are translated as
// "error.<code>".
const (
	CodeClientIDReused = "specimen.client_id_reused"
	CodeTubeFull       = "tube.full"
	CodeTubeSealed     = "tube.sealed"
	CodeTubeElsewhere  = "tube.elsewhere"
	CodePointUnknown   = "sampling_point.unknown"
	CodePointCampaign  = "sampling_point.other_campaign"
	CodeCampaignClosed = "campaign.closed"
	CodeSampledFuture  = "sampled_at.future"
	CodeSampledOutside = "sampled_at.outside_campaign"
	codeRequired       = "required"
)

// Limits of a registration's own fields.
const (
	maxClientID = 64
	maxTubeCode = 40
	// clockSkew is how far ahead of the server's clock a phone's clock may be.
	clockSkew = 5 * time.Minute
)

// registration is one validated registration waiting for its batch.
type registration struct {
	origin     audit.Origin // the request's user and client, for the audit entries
	acceptedAt int64        // when acknowledged; set when filed
	clientID   string
	hash       string
	point      pointInfo
	tubeCode   string
	sampledAt  int64
	person     people.Person
	by         int64
}

// RegisterSpecimen registers one specimen into its tube. It is validated
// first (every bad field named, nothing written) and then written in the
// next group-commit batch; it returns when that batch is durable.
func (s *Service) RegisterSpecimen(ctx context.Context, in NewSpecimen) (Registered, error) {
	reg, err := s.prepare(ctx, in)
	if err != nil {
		return Registered{}, err
	}
	return s.register.Do(ctx, reg)
}

// prepare checks a registration against everything that needs no write
// lock: its fields, the person's ID and phone, the point, the campaign and
// the caller's scope.
func (s *Service) prepare(ctx context.Context, in NewSpecimen) (registration, error) {
	p, err := scope.Require(ctx, SampleRoles...)
	if err != nil {
		return registration{}, err
	}
	var problems apperr.Problems
	reg := registration{origin: audit.OriginOf(ctx), by: p.UserID}
	reg.clientID = strings.TrimSpace(in.ClientID)
	switch {
	case reg.clientID == "":
		problems.Add("client_id", codeRequired, "this field is required")
	case len(reg.clientID) > maxClientID || !plainToken(reg.clientID):
		problems.Add("client_id", "client_id.format", "use at most %d letters, digits and - _ . :", maxClientID)
	}
	reg.tubeCode = strings.ToUpper(strings.TrimSpace(in.TubeCode))
	switch {
	case reg.tubeCode == "":
		problems.Add("tube_code", codeRequired, "this field is required")
	case len(reg.tubeCode) > maxTubeCode || !plainToken(reg.tubeCode):
		problems.Add("tube_code", "tube_code.format", "a tube code is at most %d letters, digits and - _ . :", maxTubeCode)
	}
	now := s.now()
	var sampledAt time.Time
	if strings.TrimSpace(in.SampledAt) == "" {
		problems.Add("sampled_at", codeRequired, "this field is required")
	} else if sampledAt, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(in.SampledAt)); err != nil {
		problems.Add("sampled_at", "sampled_at.format", "use a date and time like 2025-06-15T10:30:00+08:00")
	} else if sampledAt.After(now.Add(clockSkew)) {
		problems.Add("sampled_at", CodeSampledFuture, "the sampling time is in the future")
	}
	reg.sampledAt = storage.Millis(sampledAt)
	person, err := s.people.Normalize(people.NewPerson{
		IDType: people.IDType(in.Person.IDType), IDNumber: in.Person.IDNumber, Name: in.Person.Name,
		Phone: in.Person.Phone, NoPhone: in.Person.NoPhone, RegionCode: in.Person.RegionCode,
	})
	problems.AddErr("person", err)
	reg.person = person

	switch {
	case in.SamplingPointID <= 0:
		problems.Add("sampling_point_id", codeRequired, "this field is required")
	case in.CampaignID <= 0:
		problems.Add("campaign_id", codeRequired, "this field is required")
	default:
		pt, err := s.points.get(ctx, s, s.db, in.SamplingPointID)
		switch {
		case apperr.Is(err, apperr.NotFound) || (err == nil && !pt.registrableBy(p)):
			problems.Add("sampling_point_id", CodePointUnknown, "no such sampling point")
		case err != nil:
			return registration{}, err
		case pt.campaignID != in.CampaignID:
			problems.Add("sampling_point_id", CodePointCampaign, "this sampling point does not take part in that campaign")
		default:
			reg.point = pt
			if !sampledAt.IsZero() && (reg.sampledAt < pt.startsAt || reg.sampledAt > pt.endsAt) {
				problems.Add("sampled_at", CodeSampledOutside, "the sampling time is outside the campaign")
			}
		}
	}
	if err := problems.Err(); err != nil {
		return registration{}, err
	}
	if reg.point.closed {
		return registration{}, conflict("campaign_id", CodeCampaignClosed, "the campaign is closed")
	}
	reg.hash = registrationHash(in.CampaignID, reg)
	return reg, nil
}

// conflict is a Conflict error (409) naming the field it is about.
func conflict(field, code, message string, args ...any) *apperr.Error {
	return &apperr.Error{Code: apperr.Conflict, Message: fmt.Sprintf(message, args...),
		Fields: []apperr.FieldError{{Field: field, Code: code, Message: fmt.Sprintf(message, args...), Args: args}}}
}

// plainToken reports whether s holds only letters, digits and - _ . : —
// what barcodes and client-generated ids are made of.
func plainToken(s string) bool {
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// registrationHash identifies a registration's content after normalisation,
// so a retry that differs only in spelling (spaces, a lower-case x) is
// still the same registration.
func registrationHash(campaignID int64, r registration) string {
	h := sha256.New()
	for _, f := range []string{
		strconv.FormatInt(campaignID, 10), strconv.FormatInt(r.point.id, 10), r.tubeCode,
		strconv.FormatInt(r.sampledAt, 10), string(r.person.IDType), r.person.IDNumber, r.person.Name,
		r.person.Phone, strconv.FormatBool(r.person.NoPhone), r.person.RegionCode,
	} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pointInfo is what a registration needs to know of its sampling point and
// campaign.
type pointInfo struct {
	id, campaignID, institutionID int64
	regionCode                    string
	poolSize                      int
	startsAt, endsAt              int64
	closed                        bool
	// targets are the campaign's targeted regions: a person registered
	// for the first time who lives in one was a resident the registry
	// missed, and joins the targeted count.
	targets    []string
	loaded     time.Time
	refreshing bool // a request is reading the point again
}

// registrableBy reports whether p may register specimens at the point: its
// own point for an institution-scoped sampler, a point in their region for
// anyone else allowed to sample.
func (pt pointInfo) registrableBy(p *scope.Principal) bool {
	if p.IsSystem() {
		return true
	}
	if p.InstitutionID != 0 {
		return p.InstitutionID == pt.institutionID
	}
	return p.CoversRegion(pt.regionCode)
}

// targets reports whether region lies in one of the campaign's regions.
func (pt pointInfo) targetsRegion(region string) bool {
	for _, t := range pt.targets {
		if strings.HasPrefix(region, t) {
			return true
		}
	}
	return false
}

// pointCache keeps sampling points for a few seconds: a whole-city testing
// day registers thousands of specimens a second at a few thousand points,
// and each would otherwise read its point and campaign. Closing a campaign
// forgets it at once here; other instances see it within pointTTL.
type pointCache struct {
	mu     sync.Mutex
	points map[int64]pointInfo
}

// pointTTL bounds how stale a cached point may be.
const pointTTL = 5 * time.Second

// maxCachedPoints bounds the cache; a city has a few thousand points.
const maxCachedPoints = 50000

// get returns point id, reading it through q (the caller's transaction,
// if it is in one) when it is not cached or is stale.
func (c *pointCache) get(ctx context.Context, s *Service, q storage.Querier, id int64) (pointInfo, error) {
	now := time.Now()
	c.mu.Lock()
	pt, ok := c.points[id]
	stale := ok && now.Sub(pt.loaded) >= pointTTL
	if stale && !pt.refreshing {
		// One request refreshes an expired point; the others keep using
		// the old entry meanwhile instead of all reading it at once.
		pt.refreshing = true
		c.points[id] = pt
	} else if ok {
		c.mu.Unlock()
		return pt, nil
	}
	c.mu.Unlock()
	fresh, err := s.loadPoint(ctx, q, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if stale {
			pt.refreshing = false
			c.points[id] = pt
		}
		return pointInfo{}, err
	}
	fresh.loaded = now
	if c.points == nil || len(c.points) >= maxCachedPoints {
		c.points = make(map[int64]pointInfo)
	}
	c.points[id] = fresh
	return fresh, nil
}

// forget drops every cached point, e.g. after a campaign is closed.
func (c *pointCache) forget() {
	c.mu.Lock()
	c.points = nil
	c.mu.Unlock()
}

// loadPoint reads a point and its campaign through q. Scope is checked by
// the caller (registrableBy), so that an out-of-scope point reads as
// unknown.
func (s *Service) loadPoint(ctx context.Context, q storage.Querier, id int64) (pointInfo, error) {
	var pt pointInfo
	var closed sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT sp.id, sp.campaign_id, sp.institution_id, sp.region_code, c.pool_size,
		c.starts_at, c.ends_at, c.closed_at FROM sampling_points sp JOIN campaigns c ON c.id = sp.campaign_id WHERE sp.id = $1`, id).
		Scan(&pt.id, &pt.campaignID, &pt.institutionID, &pt.regionCode, &pt.poolSize, &pt.startsAt, &pt.endsAt, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return pointInfo{}, apperr.New(apperr.NotFound, "no such sampling point")
	}
	if err != nil {
		return pointInfo{}, fmt.Errorf("screening: read sampling point %d: %w", id, err)
	}
	pt.closed = closed.Valid
	rows, err := q.QueryContext(ctx, "SELECT region_code FROM campaign_regions WHERE campaign_id = $1 ORDER BY region_code", pt.campaignID)
	if err != nil {
		return pointInfo{}, fmt.Errorf("screening: read campaign regions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var code string
		if err := rows.Scan(&code); err != nil {
			return pointInfo{}, fmt.Errorf("screening: read campaign regions: %w", err)
		}
		pt.targets = append(pt.targets, code)
	}
	if err := rows.Err(); err != nil {
		return pointInfo{}, fmt.Errorf("screening: read campaign regions: %w", err)
	}
	return pt, nil
}
