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

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// ReceiveRoles receive batches: the lab they were handed to.
var ReceiveRoles = []scope.Role{scope.Lab}

// BatchState is where a batch stands.
type BatchState string

// The batch states: on its way to the lab, and received there.
const (
	BatchInTransit BatchState = "in_transit"
	BatchReceived  BatchState = "received"
)

// Error codes of batches; translated as "error.<code>".
const (
	CodeBatchCodeTaken = "batch.code_taken"
	CodeLabUnknown     = "lab_id.unknown"
	CodeBatchTooLarge  = "batch.too_large"
)

// maxBatchTubes bounds one box: a transport box holds a few hundred tubes.
const maxBatchTubes = 1000

// NewBatch is a handover of sealed tubes to a lab in one box (封箱转运).
type NewBatch struct {
	Code      string   `json:"code"` // the box's barcode
	LabID     int64    `json:"lab_id"`
	TubeCodes []string `json:"tube_codes"`
}

// Batch is a box of tubes handed to a lab.
type Batch struct {
	ID              int64
	Code            string
	CampaignID      int64
	CampaignName    string
	SamplingPointID int64
	PointName       string
	InstitutionID   int64
	RegionCode      string
	LabID           int64
	LabName         string
	State           BatchState
	TubeCount       int
	CreatedAt       time.Time
	ReceivedAt      time.Time
	Tubes           []BatchTube
}

// BatchTube is one tube of a batch, without personal data.
type BatchTube struct {
	Code        string
	State       TubeState
	MemberCount int
	Result      Result
}

// Specimens counts the batch's specimens.
func (b Batch) Specimens() int {
	n := 0
	for _, t := range b.Tubes {
		n += t.MemberCount
	}
	return n
}

// batchScope is the scope condition on batches (alias b names the batches
// table): the point's region or institution, or the lab it was handed to.
func batchScope(p *scope.Principal, a *storage.Args, alias string) string {
	cond := p.Where(a, alias+".region_code", alias+".institution_id")
	if p.InstitutionID != 0 && !p.IsSystem() {
		cond = "(" + cond + " OR " + alias + ".lab_id = " + a.Add(p.InstitutionID) + ")"
	}
	return cond
}

// CreateBatch hands sealed tubes of one sampling point to a lab: the tubes
// go in transit to it. Every tube must be sealed, of the same point and in
// the caller's scope, or nothing is handed over. Sending the same batch
// again (same code, lab and tubes) returns it unchanged with created false;
// the code of another batch is a conflict.
func (s *Service) CreateBatch(ctx context.Context, in NewBatch) (b Batch, created bool, err error) {
	p, err := scope.Require(ctx, SampleRoles...)
	if err != nil {
		return Batch{}, false, err
	}
	code, codes, err := checkNewBatch(in)
	if err != nil {
		return Batch{}, false, err
	}
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		b, created, err = s.createBatch(ctx, tx, p, code, in.LabID, codes)
		return err
	})
	if err != nil {
		return Batch{}, false, err
	}
	b, err = s.getBatch(ctx, s.db, p, b.Code)
	return b, created, err
}

// checkNewBatch validates a handover's own fields and returns its code and
// tube codes normalised.
func checkNewBatch(in NewBatch) (string, []string, error) {
	var problems apperr.Problems
	code := normalTubeCode(in.Code)
	switch {
	case code == "":
		problems.Add("code", "required", "this field is required")
	case len(code) > maxTubeCode || !plainToken(code):
		problems.Add("code", "batch_code.format", "a box code is at most %d letters, digits and - _ . :", maxTubeCode)
	}
	if in.LabID <= 0 {
		problems.Add("lab_id", "required", "this field is required")
	}
	codes := make([]string, len(in.TubeCodes))
	seen := make(map[string]bool, len(in.TubeCodes))
	switch {
	case len(in.TubeCodes) == 0:
		problems.Add("tube_codes", "required", "hand over at least one tube")
	case len(in.TubeCodes) > maxBatchTubes:
		problems.Add("tube_codes", CodeBatchTooLarge, "a batch holds at most %v tubes", maxBatchTubes)
	default:
		for i, c := range in.TubeCodes {
			field := "tube_codes[" + strconv.Itoa(i) + "]"
			codes[i] = normalTubeCode(c)
			switch {
			case codes[i] == "":
				problems.Add(field, "required", "this field is required")
			case len(codes[i]) > maxTubeCode || !plainToken(codes[i]):
				problems.Add(field, "tube_code.format", "a tube code is at most %d letters, digits and - _ . :", maxTubeCode)
			case seen[codes[i]]:
				problems.Add(field, CodeTubeDuplicate, "this tube is listed twice")
			}
			seen[codes[i]] = true
		}
	}
	return code, codes, problems.Err()
}

func (s *Service) createBatch(ctx context.Context, tx *sql.Tx, p *scope.Principal, code string, labID int64, codes []string) (Batch, bool, error) {
	// The same handover sent again (a retry after a lost answer) finds
	// its batch; the code of another handover is taken.
	var existingID, existingLab int64
	err := tx.QueryRowContext(ctx, "SELECT id, lab_id FROM batches WHERE code = $1", code).Scan(&existingID, &existingLab)
	switch {
	case err == nil:
		if same, err := s.sameBatch(ctx, tx, p, existingID, existingLab, labID, codes); err != nil || !same {
			if err == nil {
				err = conflict("code", CodeBatchCodeTaken, "this box code is already used for another batch")
			}
			return Batch{}, false, err
		}
		return Batch{ID: existingID, Code: code}, false, nil
	case !errors.Is(err, sql.ErrNoRows):
		return Batch{}, false, fmt.Errorf("screening: find batch: %w", err)
	}
	var labName string
	err = tx.QueryRowContext(ctx, "SELECT name FROM institutions WHERE id = $1 AND type = $2 AND active = $3", labID, string(regions.Lab), true).Scan(&labName)
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, false, apperr.Field("lab_id", CodeLabUnknown, "no such lab")
	}
	if err != nil {
		return Batch{}, false, fmt.Errorf("screening: read lab: %w", err)
	}
	tubes, err := s.handoverTubes(ctx, tx, p, codes)
	if err != nil {
		return Batch{}, false, err
	}
	first := tubes[codes[0]]
	now := storage.Millis(s.now())
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO batches (code, campaign_id, sampling_point_id, institution_id, region_code, lab_id, state,
		tubes, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, 'in_transit', $7, $8, $9) RETURNING id`,
		code, first.CampaignID, first.SamplingPointID, first.InstitutionID, first.RegionCode, labID, len(codes), now, actorID(p)).Scan(&id)
	if storage.IsUniqueViolation(err) {
		return Batch{}, false, conflict("code", CodeBatchCodeTaken, "this box code is already used for another batch")
	}
	if err != nil {
		return Batch{}, false, fmt.Errorf("screening: create batch: %w", err)
	}
	var a storage.Args
	ids := make([]string, 0, len(tubes))
	entries := []audit.Entry{{Action: "batch.create", ObjectType: "batch", ObjectID: code,
		Detail: fmt.Sprintf("%d tubes to lab %d", len(codes), labID)}}
	for _, c := range codes {
		ids = append(ids, a.Add(tubes[c].ID))
		entries = append(entries, audit.Entry{Action: "tube.handover", ObjectType: "tube", ObjectID: c, Detail: "batch " + code})
	}
	res, err := tx.ExecContext(ctx, "UPDATE tubes SET state = 'in_transit', lab_id = "+a.Add(labID)+", batch_id = "+a.Add(id)+
		" WHERE state = 'sealed' AND id IN ("+strings.Join(ids, ", ")+")", a.Values()...)
	if err != nil {
		return Batch{}, false, fmt.Errorf("screening: hand over tubes: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || int(n) != len(codes) {
		return Batch{}, false, fmt.Errorf("screening: handed over %d of %d tubes (%v)", n, len(codes), err)
	}
	if err := s.audit.RecordBatch(ctx, tx, entries); err != nil {
		return Batch{}, false, err
	}
	return Batch{ID: id, Code: code}, true, nil
}

// handoverTubes reads (and on PostgreSQL locks) the tubes of a handover
// and checks that each is in scope, sealed and of the first tube's point.
func (s *Service) handoverTubes(ctx context.Context, tx *sql.Tx, p *scope.Principal, codes []string) (map[string]Tube, error) {
	sorted := slices.Clone(codes)
	slices.Sort(sorted) // one lock order for everyone
	var a storage.Args
	marks := make([]string, len(sorted))
	for i, c := range sorted {
		marks[i] = a.Add(c)
	}
	query := tubeSelect + " WHERE t.code IN (" + strings.Join(marks, ", ") + ") AND " + tubeScope(p, &a, "t") + " ORDER BY t.code"
	if s.db.Dialect == storage.Postgres {
		query += " FOR NO KEY UPDATE OF t"
	}
	rows, err := tx.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: read tubes to hand over: %w", err)
	}
	defer rows.Close()
	tubes := make(map[string]Tube, len(codes))
	for rows.Next() {
		t, err := scanTube(rows)
		if err != nil {
			return nil, fmt.Errorf("screening: read tubes to hand over: %w", err)
		}
		tubes[t.Code] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("screening: read tubes to hand over: %w", err)
	}
	var problems apperr.Problems
	var point int64
	for i, c := range codes {
		field := "tube_codes[" + strconv.Itoa(i) + "]"
		t, ok := tubes[c]
		switch {
		case !ok:
			problems.Add(field, CodeTubeUnknown, "no such tube")
		case t.State == TubeOpen:
			problems.Add(field, CodeTubeNotSealed, "this tube is not sealed yet")
		case t.State != TubeSealed:
			problems.Add(field, CodeTubeHandedOver, "this tube was already handed over")
		case point != 0 && t.SamplingPointID != point:
			problems.Add(field, CodeTubeOtherPoint, "this tube is from another sampling point")
		default:
			point = t.SamplingPointID
		}
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return tubes, nil
}

// sameBatch reports whether the batch id, visible to p, is the handover of
// exactly these tubes to this lab.
func (s *Service) sameBatch(ctx context.Context, tx *sql.Tx, p *scope.Principal, id, existingLab, labID int64, codes []string) (bool, error) {
	if existingLab != labID {
		return false, nil
	}
	var a storage.Args
	var n int
	err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM batches b WHERE b.id = "+a.Add(id)+" AND "+batchScope(p, &a, "b"), a.Values()...).Scan(&n)
	if err != nil || n == 0 {
		return false, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT code FROM tubes WHERE batch_id = $1", id)
	if err != nil {
		return false, fmt.Errorf("screening: read batch tubes: %w", err)
	}
	defer rows.Close()
	var have []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return false, fmt.Errorf("screening: read batch tubes: %w", err)
		}
		have = append(have, c)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("screening: read batch tubes: %w", err)
	}
	want := slices.Clone(codes)
	slices.Sort(want)
	slices.Sort(have)
	return slices.Equal(want, have), nil
}

// ReceiveBatch records a batch's arrival at its lab: the batch and its
// tubes in transit become received. Only the lab it was handed to
// receives it; for anyone else it does not exist. Receiving it again
// changes nothing.
func (s *Service) ReceiveBatch(ctx context.Context, code string) (Batch, error) {
	p, err := scope.Require(ctx, ReceiveRoles...)
	if err != nil {
		return Batch{}, err
	}
	if p.InstitutionID == 0 && !p.IsSystem() {
		return Batch{}, apperr.NotFoundf("batch not found")
	}
	code = normalTubeCode(code)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		var a storage.Args
		query := "SELECT b.id, b.state FROM batches b WHERE b.code = " + a.Add(code)
		if !p.IsSystem() {
			query += " AND b.lab_id = " + a.Add(p.InstitutionID)
		}
		if s.db.Dialect == storage.Postgres {
			query += " FOR UPDATE"
		}
		var id int64
		var state string
		err := tx.QueryRowContext(ctx, query, a.Values()...).Scan(&id, &state)
		if errors.Is(err, sql.ErrNoRows) {
			return apperr.NotFoundf("batch not found")
		}
		if err != nil {
			return fmt.Errorf("screening: read batch: %w", err)
		}
		if BatchState(state) == BatchReceived {
			return nil
		}
		now := storage.Millis(s.now())
		if _, err := tx.ExecContext(ctx, "UPDATE batches SET state = 'received', received_at = $1, received_by = $2 WHERE id = $3",
			now, actorID(p), id); err != nil {
			return fmt.Errorf("screening: receive batch: %w", err)
		}
		res, err := tx.ExecContext(ctx, "UPDATE tubes SET state = 'received', received_at = $1 WHERE batch_id = $2 AND state = 'in_transit'", now, id)
		if err != nil {
			return fmt.Errorf("screening: receive tubes: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("screening: receive tubes: %w", err)
		}
		return s.audit.Record(ctx, tx, audit.Entry{Action: "batch.receive", ObjectType: "batch", ObjectID: code, Detail: fmt.Sprintf("%d tubes received", n)})
	})
	if err != nil {
		return Batch{}, err
	}
	return s.getBatch(ctx, s.db, p, code)
}

// Batch returns a batch in the caller's scope (its point's, or the lab's
// it was handed to) with its tubes.
func (s *Service) Batch(ctx context.Context, code string) (Batch, error) {
	p, err := scope.Require(ctx, TubeRoles...)
	if err != nil {
		return Batch{}, err
	}
	return s.getBatch(ctx, s.db, p, code)
}

func (s *Service) getBatch(ctx context.Context, q storage.Querier, p *scope.Principal, code string) (Batch, error) {
	var a storage.Args
	var b Batch
	var state string
	var created int64
	var received sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT b.id, b.code, b.campaign_id, c.name, b.sampling_point_id, sp.name, b.institution_id, b.region_code,
		b.lab_id, l.name, b.state, b.tubes, b.created_at, b.received_at
		FROM batches b JOIN campaigns c ON c.id = b.campaign_id JOIN sampling_points sp ON sp.id = b.sampling_point_id
		JOIN institutions l ON l.id = b.lab_id
		WHERE b.code = `+a.Add(normalTubeCode(code))+" AND "+batchScope(p, &a, "b"), a.Values()...).
		Scan(&b.ID, &b.Code, &b.CampaignID, &b.CampaignName, &b.SamplingPointID, &b.PointName, &b.InstitutionID, &b.RegionCode,
			&b.LabID, &b.LabName, &state, &b.TubeCount, &created, &received)
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, apperr.NotFoundf("batch not found")
	}
	if err != nil {
		return Batch{}, fmt.Errorf("screening: read batch: %w", err)
	}
	b.State, b.CreatedAt, b.ReceivedAt = BatchState(state), storage.FromMillis(created), storage.FromNullMillis(received)
	rows, err := q.QueryContext(ctx, "SELECT code, state, members, result FROM tubes WHERE batch_id = $1 ORDER BY code", b.ID)
	if err != nil {
		return Batch{}, fmt.Errorf("screening: read batch tubes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t BatchTube
		var result sql.NullString
		if err := rows.Scan(&t.Code, &t.State, &t.MemberCount, &result); err != nil {
			return Batch{}, fmt.Errorf("screening: read batch tubes: %w", err)
		}
		t.Result = Result(result.String)
		b.Tubes = append(b.Tubes, t)
	}
	if err := rows.Err(); err != nil {
		return Batch{}, fmt.Errorf("screening: read batch tubes: %w", err)
	}
	return b, nil
}

// Lab is a lab a point can hand tubes to.
type Lab struct {
	ID         int64
	Name       string
	RegionCode string
}

// Labs returns the active labs a caller may hand tubes to: those of their
// city and those above it (a provincial lab taking a city's overflow). The
// list shows institutions outside the caller's scope on purpose: a sampling
// point must be able to pick the lab it delivers to.
func (s *Service) Labs(ctx context.Context) ([]Lab, error) {
	p, err := scope.Require(ctx, SampleRoles...)
	if err != nil {
		return nil, err
	}
	var a storage.Args
	where := []string{"i.type = " + a.Add(string(regions.Lab)), "i.active = " + a.Add(true)}
	if !p.IsSystem() {
		city := p.RegionCode
		if len(city) > 4 {
			city = city[:4]
		}
		near := []string{scope.RegionPrefix(&a, "i.region_code", city)}
		if len(city) > 2 {
			near = append(near, "i.region_code = "+a.Add(city[:2]))
		}
		where = append(where, "("+strings.Join(near, " OR ")+")")
	}
	rows, err := s.db.QueryContext(ctx, "SELECT i.id, i.name, i.region_code FROM institutions i WHERE "+strings.Join(where, " AND ")+
		" ORDER BY i.region_code, i.name, i.id LIMIT 500", a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: list labs: %w", err)
	}
	defer rows.Close()
	var out []Lab
	for rows.Next() {
		var l Lab
		if err := rows.Scan(&l.ID, &l.Name, &l.RegionCode); err != nil {
			return nil, fmt.Errorf("screening: list labs: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
