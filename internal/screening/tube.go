package screening

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

// TubeRoles may look tubes up: the point that filled them, the lab that
// tests them, and those who follow up their results.
var TubeRoles = []scope.Role{scope.Sampler, scope.Lab, scope.BureauAdmin, scope.Epidemiologist, scope.InstitutionStaff}

// Error codes of tubes, batches and results; translated as "error.<code>".
const (
	CodeTubeUnknown         = "tube.unknown"
	CodeTubeNotOpen         = "tube.not_open"
	CodeTubeNotSealed       = "tube.not_sealed"
	CodeTubeHandedOver      = "tube.handed_over"
	CodeTubeAlreadyResulted = "tube.already_resulted"
	CodeTubeNotPositive     = "tube.not_positive"
	CodeTubeOtherPoint      = "tube.other_point"
	CodeTubeDuplicate       = "tube.duplicate"
)

// Tube is a tube as shown: where it was filled, how full it is, where it
// stands and its result.
type Tube struct {
	ID              int64
	Code            string
	CampaignID      int64
	CampaignName    string
	SamplingPointID int64
	PointName       string
	InstitutionID   int64  // the sampling point's institution
	RegionCode      string // the sampling point's region
	State           TubeState
	Capacity        int
	MemberCount     int
	BatchID         int64
	BatchCode       string
	LabID           int64
	LabName         string
	Result          Result // "" until resulted
	CtORF1ab        *float64
	CtN             *float64
	TestedAt        time.Time
	ResultedAt      time.Time
	ReportedAt      time.Time
	SealedAt        time.Time
	ReceivedAt      time.Time
	OpenedAt        time.Time
	FirstSampledAt  time.Time
	// Report is the positive-report deadline of a positive or suspicious
	// tube (zero ID when there is none); filled by Tube.
	Report TubeDeadline
	// Members are the tube's specimens, their persons masked; filled by
	// Tube only.
	Members []Member
}

// TubeDeadline is the state of a tube's deadline.
type TubeDeadline struct {
	ID    int64
	DueAt time.Time
	State deadlines.State
	MetAt time.Time
}

// Pooled reports whether the tube holds (or may hold) more than one person.
func (t Tube) Pooled() bool { return t.Capacity > 1 }

// NeedsReport reports whether the tube's result must be reported to the CDC
// and has not been yet.
func (t Tube) NeedsReport() bool {
	return (t.Result == Positive || t.Result == Suspicious) && t.ReportedAt.IsZero()
}

// Member is one specimen in a tube.
type Member struct {
	SpecimenID int64
	Person     people.PersonView // masked
	RegionCode string            // residence given when sampled
	RegionName string            // its place names from the province down
	Place      string            // its place names below the reader's region
	SampledAt  time.Time
	// Recall is the member's recall after this tube's result; zero ID when
	// there is none.
	Recall MemberRecall
}

// MemberRecall is the recall of one member.
type MemberRecall struct {
	ID     int64
	Reason Result
	State  RecallState
	DueAt  time.Time
}

// tubeScope is THE scope condition on tubes (alias names the tubes table in
// the query): the sampling point's region or institution, or — for an
// institution-scoped user — the lab the tube was handed to. tubes has no
// index on institution_id, so an institution's tubes are reached through
// its sampling points (the tube's institution is its point's).
func tubeScope(p *scope.Principal, a *storage.Args, alias string) string {
	if p.InstitutionID == 0 || p.IsSystem() {
		return p.Where(a, alias+".region_code", alias+".institution_id")
	}
	inst := a.Add(p.InstitutionID)
	return "((" + alias + ".sampling_point_id IN (SELECT sp.id FROM sampling_points sp WHERE sp.institution_id = " + inst + ") AND " +
		alias + ".institution_id = " + inst + ") OR " + alias + ".lab_id = " + inst + ")"
}

// normalTubeCode is a tube code as stored: trimmed and upper case, as the
// registration path stores it.
func normalTubeCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// tubeColumns are the columns scanTube reads, from tubes t joined by
// tubeJoins.
const tubeColumns = `t.id, t.code, t.campaign_id, c.name, t.sampling_point_id, sp.name, t.institution_id, t.region_code,
	t.state, t.capacity, t.members, t.batch_id, COALESCE(b.code, ''), t.lab_id, COALESCE(l.name, ''), t.result, t.ct_orf1ab, t.ct_n,
	t.tested_at, t.resulted_at, t.reported_at, t.sealed_at, t.received_at, t.opened_at, t.first_sampled_at`

const tubeJoins = `JOIN campaigns c ON c.id = t.campaign_id JOIN sampling_points sp ON sp.id = t.sampling_point_id
	LEFT JOIN batches b ON b.id = t.batch_id LEFT JOIN institutions l ON l.id = t.lab_id`

// tubeSelect reads tubes for scanTube; add the WHERE clause.
const tubeSelect = "SELECT " + tubeColumns + " FROM tubes t " + tubeJoins

func scanTube(row interface{ Scan(...any) error }) (Tube, error) {
	var t Tube
	var state string
	var batchID, labID, tested, resulted, reported, sealed, received sql.NullInt64
	var result sql.NullString
	var ct1, ct2 sql.NullFloat64
	var opened, first int64
	if err := row.Scan(&t.ID, &t.Code, &t.CampaignID, &t.CampaignName, &t.SamplingPointID, &t.PointName, &t.InstitutionID,
		&t.RegionCode, &state, &t.Capacity, &t.MemberCount, &batchID, &t.BatchCode, &labID, &t.LabName, &result, &ct1, &ct2,
		&tested, &resulted, &reported, &sealed, &received, &opened, &first); err != nil {
		return Tube{}, err
	}
	t.State, t.Result = TubeState(state), Result(result.String)
	t.BatchID, t.LabID = batchID.Int64, labID.Int64
	t.CtORF1ab, t.CtN = floatPtr(ct1), floatPtr(ct2)
	t.TestedAt, t.ResultedAt, t.ReportedAt = storage.FromNullMillis(tested), storage.FromNullMillis(resulted), storage.FromNullMillis(reported)
	t.SealedAt, t.ReceivedAt = storage.FromNullMillis(sealed), storage.FromNullMillis(received)
	t.OpenedAt, t.FirstSampledAt = storage.FromMillis(opened), storage.FromMillis(first)
	return t, nil
}

func floatPtr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

// getTube reads one tube in p's scope by code; on PostgreSQL forUpdate
// locks it until q's transaction ends (SQLite's single writer already
// serialises writers).
func (s *Service) getTube(ctx context.Context, q storage.Querier, p *scope.Principal, code string, forUpdate bool) (Tube, error) {
	var a storage.Args
	query := tubeSelect + " WHERE t.code = " + a.Add(normalTubeCode(code)) + " AND " + tubeScope(p, &a, "t")
	if forUpdate && s.db.Dialect == storage.Postgres {
		query += " FOR NO KEY UPDATE OF t"
	}
	t, err := scanTube(q.QueryRowContext(ctx, query, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Tube{}, apperr.NotFoundf("tube not found")
	}
	if err != nil {
		return Tube{}, fmt.Errorf("screening: read tube: %w", err)
	}
	return t, nil
}

// Tube returns a tube in the caller's scope with its members, their persons
// masked, and their recalls. A sampler of the tube's point and the lab it
// was handed to both see every member. The read is audited (it shows
// personal data, masked), a miss too.
func (s *Service) Tube(ctx context.Context, code string) (Tube, error) {
	p, err := scope.Require(ctx, TubeRoles...)
	if err != nil {
		return Tube{}, err
	}
	if err := s.settled(ctx); err != nil {
		return Tube{}, err
	}
	t, err := s.getTube(ctx, s.db, p, code, false)
	entry := audit.Entry{Action: "tube.read", ObjectType: "tube", ObjectID: normalTubeCode(code)}
	if apperr.Is(err, apperr.NotFound) {
		entry.Outcome = audit.NotFound
		if aerr := s.audit.RecordOutside(ctx, entry); aerr != nil {
			return Tube{}, fmt.Errorf("screening: audit tube read: %w", aerr)
		}
		return Tube{}, err
	}
	if err != nil {
		return Tube{}, err
	}
	if t.Members, err = s.tubeMembers(ctx, p, t.ID); err != nil {
		return Tube{}, err
	}
	if t.Report, err = s.tubeDeadline(ctx, s.db, deadlines.PositiveReport, t.ID); err != nil {
		return Tube{}, err
	}
	if err := s.audit.RecordOutside(ctx, entry); err != nil {
		return Tube{}, fmt.Errorf("screening: audit tube read: %w", err)
	}
	return t, nil
}

// memberPersonColumns are the person columns scanMemberPerson reads, from
// persons aliased p.
const memberPersonColumns = "p.id, p.id_type, p.id_number, p.name, p.sex, p.birth_date, p.phone, p.no_phone, p.address, p.region_code, p.tags, p.created_at, p.updated_at"

// chinaZone is the zone in which ages turn over (as in the people module).
var chinaZone = time.FixedZone("CST", 8*60*60)

// memberPerson is a person row being scanned.
type memberPerson struct {
	p                people.Person
	birth, tags      sql.NullString
	created, updated int64
}

func (m *memberPerson) dest() []any {
	return []any{&m.p.ID, &m.p.IDType, &m.p.IDNumber, &m.p.Name, &m.p.Sex, &m.birth, &m.p.Phone, &m.p.NoPhone, &m.p.Address,
		&m.p.RegionCode, &m.tags, &m.created, &m.updated}
}

// view returns the person masked, the one way screening shows persons.
func (m *memberPerson) view(s *Service, now time.Time) people.PersonView {
	p := m.p
	if m.birth.Valid {
		if b, err := time.Parse(time.DateOnly, m.birth.String); err == nil {
			p.BirthDate = b
			p.Age = people.AgeOn(b, now.In(chinaZone))
		}
	}
	if m.tags.String != "" {
		for _, t := range strings.Split(m.tags.String, ",") {
			p.Tags = append(p.Tags, people.Tag(t))
		}
	}
	p.CreatedAt, p.UpdatedAt = storage.FromMillis(m.created), storage.FromMillis(m.updated)
	p.RegionName = s.placeName(p.RegionCode)
	return p.Masked()
}

// tubeMembers reads a tube's specimens with their persons and recalls. The
// caller has checked the tube's scope: every member of a visible tube is
// shown, masked.
func (s *Service) tubeMembers(ctx context.Context, p *scope.Principal, tubeID int64) ([]Member, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT s.id, s.region_code, s.sampled_at, r.id, r.reason, r.state, r.due_at, `+memberPersonColumns+`
		FROM specimens s JOIN persons p ON p.id = s.person_id LEFT JOIN recalls r ON r.specimen_id = s.id
		WHERE s.tube_id = $1 ORDER BY s.sampled_at, s.id`, tubeID)
	if err != nil {
		return nil, fmt.Errorf("screening: read tube members: %w", err)
	}
	defer rows.Close()
	now := s.now()
	out := []Member{}
	for rows.Next() {
		var m Member
		var mp memberPerson
		var sampled int64
		var recallID, due sql.NullInt64
		var reason, state sql.NullString
		if err := rows.Scan(append([]any{&m.SpecimenID, &m.RegionCode, &sampled, &recallID, &reason, &state, &due}, mp.dest()...)...); err != nil {
			return nil, fmt.Errorf("screening: read tube members: %w", err)
		}
		m.SampledAt = storage.FromMillis(sampled)
		m.RegionName, m.Place = s.placeName(m.RegionCode), s.localPlace(p, m.RegionCode)
		m.Person = mp.view(s, now)
		if recallID.Valid {
			m.Recall = MemberRecall{ID: recallID.Int64, Reason: Result(reason.String), State: RecallState(state.String), DueAt: storage.FromNullMillis(due)}
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("screening: read tube members: %w", err)
	}
	return out, nil
}

// tubeDeadline reads the tube's deadline of a kind; a zero one when there
// is none.
func (s *Service) tubeDeadline(ctx context.Context, q storage.Querier, kind string, tubeID int64) (TubeDeadline, error) {
	var d TubeDeadline
	var due int64
	var state string
	var met sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT id, due_at, state, met_at FROM deadlines WHERE kind = $1 AND subject_type = 'tube' AND subject_id = $2
		ORDER BY id LIMIT 1`, kind, strconv.FormatInt(tubeID, 10)).Scan(&d.ID, &due, &state, &met)
	if errors.Is(err, sql.ErrNoRows) {
		return TubeDeadline{}, nil
	}
	if err != nil {
		return TubeDeadline{}, fmt.Errorf("screening: read tube deadline: %w", err)
	}
	d.DueAt, d.State, d.MetAt = storage.FromMillis(due), deadlines.State(state), storage.FromNullMillis(met)
	return d, nil
}

// SealTube closes an open tube by hand (a full tube is sealed when its last
// specimen is Registered): nothing more goes in, and it can be handed over.
// Sealing a sealed tube again changes nothing; a tube already handed over
// or resulted is a conflict.
func (s *Service) SealTube(ctx context.Context, code string) (Tube, error) {
	return s.changeTube(ctx, SampleRoles, code, func(tx *sql.Tx, p *scope.Principal, t *Tube) error {
		switch t.State {
		case TubeSealed:
			return nil
		case TubeOpen:
		default:
			return conflict("code", CodeTubeNotOpen, "this tube was already handed over or tested")
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, "UPDATE tubes SET state = 'sealed', sealed_at = $1, sealed_by = $2 WHERE id = $3 AND state = 'open'",
			storage.Millis(now), actorID(p), t.ID); err != nil {
			return fmt.Errorf("screening: seal tube: %w", err)
		}
		t.State, t.SealedAt = TubeSealed, now
		return s.audit.Record(ctx, tx, audit.Entry{Action: "tube.seal", ObjectType: "tube", ObjectID: t.Code,
			Detail: fmt.Sprintf("%d of %d", t.MemberCount, t.Capacity)})
	})
}

// ReportTube records that a positive or suspicious tube has been reported
// (逢阳必报) and meets its positive-report deadline. Reporting it again
// changes nothing; a tube without such a result is a conflict.
func (s *Service) ReportTube(ctx context.Context, code string) (Tube, error) {
	t, err := s.changeTube(ctx, ReportRoles, code, func(tx *sql.Tx, p *scope.Principal, t *Tube) error {
		if t.State != TubeResulted || (t.Result != Positive && t.Result != Suspicious) {
			return conflict("code", CodeTubeNotPositive, "only a positive or suspicious tube is reported")
		}
		if !t.ReportedAt.IsZero() {
			return nil
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, "UPDATE tubes SET reported_at = $1, reported_by = $2 WHERE id = $3 AND reported_at IS NULL",
			storage.Millis(now), actorID(p), t.ID); err != nil {
			return fmt.Errorf("screening: report tube: %w", err)
		}
		if err := s.deadlines.Meet(ctx, tx, deadlines.PositiveReport, "tube", strconv.FormatInt(t.ID, 10)); err != nil {
			return err
		}
		t.ReportedAt = now
		return s.audit.Record(ctx, tx, audit.Entry{Action: "tube.report", ObjectType: "tube", ObjectID: t.Code, Detail: "result " + string(t.Result)})
	})
	if err != nil {
		return Tube{}, err
	}
	t.Report, err = s.tubeDeadline(ctx, s.db, deadlines.PositiveReport, t.ID)
	return t, err
}

// changeTube runs change on the tube of the code, read in the caller's
// scope and locked, in one transaction, for a caller holding one of roles.
func (s *Service) changeTube(ctx context.Context, roles []scope.Role, code string, change func(tx *sql.Tx, p *scope.Principal, t *Tube) error) (Tube, error) {
	p, err := scope.Require(ctx, roles...)
	if err != nil {
		return Tube{}, err
	}
	var t Tube
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		if t, err = s.getTube(ctx, tx, p, code, true); err != nil {
			return err
		}
		return change(tx, p, &t)
	})
	if err != nil {
		return Tube{}, err
	}
	return t, nil
}

// TubeQuery selects tubes for the lab and handover lists.
type TubeQuery struct {
	States          []TubeState // any of these; all states when empty
	SamplingPointID int64       // 0 for every point in scope
	// LabID, when set, keeps the tubes handed to that lab. A lab's own
	// list sets it: its scope (its points' tubes or those handed to it)
	// is an OR that the databases answer by reading every tube the lab
	// ever had and sorting them, while lab_id alone walks tubes_lab
	// (lab_id, id) newest first and stops at the page's end.
	LabID  int64
	Cursor string
	Limit  int // 1..500; 100 when 0
}

// tubeCursor is the position of the last tube of a page.
type tubeCursor struct {
	ID int64 `json:"i"`
}

// Tubes returns a page of the tubes in the caller's scope, newest first:
// a lab's tubes in transit to it or received, a point's sealed tubes
// waiting for handover. The list shows no personal data.
func (s *Service) Tubes(ctx context.Context, q TubeQuery) ([]Tube, string, error) {
	p, err := scope.Require(ctx, TubeRoles...)
	if err != nil {
		return nil, "", err
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > 500 {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 500)
	}
	var a storage.Args
	where := []string{tubeScope(p, &a, "t")}
	if len(q.States) > 0 {
		marks := make([]string, len(q.States))
		for i, st := range q.States {
			if !validTubeState(st) {
				return nil, "", apperr.Field("state", "tube.state_unknown", "unknown tube state %v", string(st))
			}
			marks[i] = a.Add(string(st))
		}
		where = append(where, "t.state IN ("+strings.Join(marks, ", ")+")")
	}
	if q.SamplingPointID != 0 {
		where = append(where, "t.sampling_point_id = "+a.Add(q.SamplingPointID))
	}
	if q.LabID != 0 {
		where = append(where, "t.lab_id = "+a.Add(q.LabID))
	}
	var after tubeCursor
	if err := web.DecodeCursor(q.Cursor, &after); err != nil {
		return nil, "", err
	}
	if after.ID != 0 {
		where = append(where, "t.id < "+a.Add(after.ID))
	}
	query := tubeSelect + " WHERE " + strings.Join(where, " AND ") + " ORDER BY t.id DESC LIMIT " + a.Add(q.Limit+1)
	out, err := storage.Query(ctx, s.db, scanTube, query, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("screening: list tubes: %w", err)
	}
	out, next := web.NextPage(out, q.Limit, func(t Tube) any { return tubeCursor{ID: t.ID} })
	return out, next, nil
}

func validTubeState(st TubeState) bool {
	switch st {
	case TubeOpen, TubeSealed, TubeInTransit, TubeReceived, TubeResulted:
		return true
	}
	return false
}

// PositiveTube is a positive or suspicious tube with its report deadline,
// for the CDC's list.
type PositiveTube struct {
	Tube
	Deadline TubeDeadline
}

// PositiveQuery selects positive and suspicious tubes.
type PositiveQuery struct {
	CampaignID int64
	// Reported is "yes", "no" or "" for both.
	Reported string
	Cursor   string
	Limit    int // 1..500; 100 when 0
}

// PositiveTubes returns a page of the positive and suspicious tubes in the
// caller's scope with their report deadlines, newest first. It reads the
// positive-report deadlines, which exist exactly for those tubes, so it
// never scans the campaign's negative tubes.
func (s *Service) PositiveTubes(ctx context.Context, q PositiveQuery) ([]PositiveTube, string, error) {
	p, err := scope.Require(ctx, ReportRoles...)
	if err != nil {
		return nil, "", err
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > 500 {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", 500)
	}
	var a storage.Args
	where := []string{"d.kind = " + a.Add(deadlines.PositiveReport), "d.subject_type = 'tube'", tubeScope(p, &a, "t")}
	if q.CampaignID != 0 {
		where = append(where, "t.campaign_id = "+a.Add(q.CampaignID))
	}
	switch q.Reported {
	case "":
	case "yes":
		where = append(where, "t.reported_at IS NOT NULL")
	case "no":
		where = append(where, "t.reported_at IS NULL")
	default:
		return nil, "", apperr.Field("reported", "reported.invalid", "reported must be yes or no")
	}
	var after tubeCursor
	if err := web.DecodeCursor(q.Cursor, &after); err != nil {
		return nil, "", err
	}
	if after.ID != 0 {
		where = append(where, "d.id < "+a.Add(after.ID))
	}
	query := "SELECT d.id, d.due_at, d.state, d.met_at, " + tubeColumns +
		" FROM deadlines d JOIN tubes t ON t.id = CAST(d.subject_id AS BIGINT) " + tubeJoins +
		" WHERE " + strings.Join(where, " AND ") + " ORDER BY d.id DESC LIMIT " + a.Add(q.Limit+1)
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("screening: list positive tubes: %w", err)
	}
	defer rows.Close()
	var out []PositiveTube
	for rows.Next() {
		var pt PositiveTube
		var due int64
		var state string
		var met sql.NullInt64
		var inner scanFunc = func(dest ...any) error {
			return rows.Scan(append([]any{&pt.Deadline.ID, &due, &state, &met}, dest...)...)
		}
		if pt.Tube, err = scanTube(inner); err != nil {
			return nil, "", fmt.Errorf("screening: list positive tubes: %w", err)
		}
		pt.Deadline.DueAt, pt.Deadline.State, pt.Deadline.MetAt = storage.FromMillis(due), deadlines.State(state), storage.FromNullMillis(met)
		pt.Report = pt.Deadline
		out = append(out, pt)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("screening: list positive tubes: %w", err)
	}
	out, next := web.NextPage(out, q.Limit, func(pt PositiveTube) any { return tubeCursor{ID: pt.Deadline.ID} })
	return out, next, nil
}

// scanFunc adapts a function to the Scan method scanTube needs, to read
// extra leading columns.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }
