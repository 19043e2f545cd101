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
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

// CodeRecallDone: the person was already sampled again; there is nobody to
// notify any more.
const CodeRecallDone = "recall.done"

// Recall list limits.
const (
	defaultRecallLimit = 100
	maxRecallLimit     = 1000
)

// Recall is a member of a positive, suspicious or invalid tube to be found
// and sampled again on their own (召回, 单采单检), as the township team
// calling them sees it: the person masked, the phone given when sampled
// (masked), where they live and how far the recall has got.
type Recall struct {
	ID         int64
	CampaignID int64
	TubeID     int64
	TubeCode   string
	SpecimenID int64
	Person     people.PersonView // masked
	// Phone is the phone given when sampled, masked; NoPhone when none was.
	Phone      string
	NoPhone    bool
	RegionCode string // residence given when sampled
	RegionName string // its place names from the province down
	Place      string // its place names below the reader's region, for lists
	PointName  string
	Reason     Result
	State      RecallState
	DueAt      time.Time
	CreatedAt  time.Time
	NotifiedAt time.Time
	// ResampledAt is when the person was sampled again; ResultedAt when
	// that specimen's tube got its result.
	ResampledAt time.Time
	ResultedAt  time.Time
}

// Overdue reports whether the person was not sampled again by the due time.
func (r Recall) Overdue(now time.Time) bool {
	return (r.State == RecallToNotify || r.State == RecallNotified) && now.After(r.DueAt)
}

// RecallQuery selects recalls in the caller's scope.
type RecallQuery struct {
	CampaignID int64
	RegionCode string // residence subtree; "" for the whole scope
	State      RecallState
	Reason     Result
	Cursor     string
	Limit      int // 1..1000; 100 when 0
}

// recallCursor is the sort key of the last recall of a page.
type recallCursor struct {
	Region string `json:"r"`
	ID     int64  `json:"i"`
}

// recallFrom reads recalls with everything a list shows; scanRecall reads
// its columns.
const recallFrom = `SELECT r.id, r.campaign_id, r.tube_id, t.code, r.specimen_id, r.region_code, r.reason, r.state, r.due_at, r.created_at,
	r.notified_at, r.resampled_at, r.resulted_at, s.phone, s.no_phone, sp.name, ` + memberPersonColumns + `
	FROM recalls r JOIN tubes t ON t.id = r.tube_id JOIN specimens s ON s.id = r.specimen_id
	JOIN sampling_points sp ON sp.id = s.sampling_point_id JOIN persons p ON p.id = r.person_id`

func (s *Service) scanRecall(row interface{ Scan(...any) error }, p *scope.Principal, now time.Time) (Recall, error) {
	var r Recall
	var mp memberPerson
	var reason, state string
	var due, created int64
	var notified, resampled, resulted sql.NullInt64
	if err := row.Scan(append([]any{&r.ID, &r.CampaignID, &r.TubeID, &r.TubeCode, &r.SpecimenID, &r.RegionCode, &reason, &state,
		&due, &created, &notified, &resampled, &resulted, &r.Phone, &r.NoPhone, &r.PointName}, mp.dest()...)...); err != nil {
		return Recall{}, err
	}
	r.Reason, r.State = Result(reason), RecallState(state)
	r.DueAt, r.CreatedAt = storage.FromMillis(due), storage.FromMillis(created)
	r.NotifiedAt, r.ResampledAt, r.ResultedAt = storage.FromNullMillis(notified), storage.FromNullMillis(resampled), storage.FromNullMillis(resulted)
	r.Phone = people.MaskPhone(r.Phone)
	r.RegionName, r.Place = s.placeName(r.RegionCode), s.localPlace(p, r.RegionCode)
	r.Person = mp.view(s, now)
	return r, nil
}

// where builds the recall filters in the caller's scope and their summary
// for the audit log.
func (q RecallQuery) where(p *scope.Principal, a *storage.Args) ([]string, string, error) {
	var problems apperr.Problems
	where := []string{p.Where(a, "r.region_code", "r.institution_id")}
	var parts []string
	if q.CampaignID != 0 {
		where = append(where, "r.campaign_id = "+a.Add(q.CampaignID))
		parts = append(parts, "campaign_id="+strconv.FormatInt(q.CampaignID, 10))
	}
	if q.RegionCode != "" {
		if !regions.ValidCode(q.RegionCode) {
			problems.Add("region_code", "region_code.unknown", "unknown region code %v", q.RegionCode)
		} else {
			where = append(where, scope.RegionPrefix(a, "r.region_code", q.RegionCode))
			parts = append(parts, "region_code="+q.RegionCode)
		}
	}
	if q.State != "" {
		if !validRecallState(q.State) {
			problems.Add("state", "recall.state_unknown", "unknown recall state %v", string(q.State))
		} else {
			where = append(where, "r.state = "+a.Add(string(q.State)))
			parts = append(parts, "state="+string(q.State))
		}
	}
	if q.Reason != "" {
		if q.Reason == Negative || !validResult(q.Reason) {
			problems.Add("reason", "recall.reason_unknown", "unknown recall reason %v", string(q.Reason))
		} else {
			where = append(where, "r.reason = "+a.Add(string(q.Reason)))
			parts = append(parts, "reason="+string(q.Reason))
		}
	}
	return where, strings.Join(parts, " "), problems.Err()
}

func validRecallState(st RecallState) bool {
	for _, v := range RecallStates {
		if v == st {
			return true
		}
	}
	return false
}

// Recalls returns a page of the recalls in the caller's scope — a township
// team sees its residents' — ordered by residence, the order a calling list
// is worked in, and the cursor of the next page ("" on the last). The
// search is audited, as a read of personal data.
func (s *Service) Recalls(ctx context.Context, q RecallQuery) ([]Recall, string, error) {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return nil, "", err
	}
	if err := s.settled(ctx); err != nil {
		return nil, "", err
	}
	if q.Limit == 0 {
		q.Limit = defaultRecallLimit
	}
	if q.Limit < 1 || q.Limit > maxRecallLimit {
		return nil, "", apperr.Field("limit", "limit.range", "limit must be a whole number from 1 to %v", maxRecallLimit)
	}
	var a storage.Args
	where, summary, err := q.where(p, &a)
	if err != nil {
		return nil, "", err
	}
	var after recallCursor
	if err := web.DecodeCursor(q.Cursor, &after); err != nil {
		return nil, "", err
	}
	if after.ID != 0 {
		reg, id := a.Add(after.Region), a.Add(after.ID)
		where = append(where, "(r.region_code > "+reg+" OR (r.region_code = "+reg+" AND r.id > "+id+"))")
	}
	var out []Recall
	err = s.eachRecall(ctx, p, where, &a, q.Limit+1, func(r Recall) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if err := s.audit.RecordOutside(ctx, audit.Entry{Action: "recall.search", ObjectType: "recall", Detail: summary}); err != nil {
		return nil, "", fmt.Errorf("screening: audit recall search: %w", err)
	}
	out, next := web.NextPage(out, q.Limit, func(r Recall) any { return recallCursor{Region: r.RegionCode, ID: r.ID} })
	return out, next, nil
}

// ExportRecalls calls fn for every recall matching q (Cursor and Limit
// ignored), in calling-list order. It is audited before any row is read,
// so nothing leaves unrecorded.
func (s *Service) ExportRecalls(ctx context.Context, q RecallQuery, format string, fn func(Recall) error) error {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return err
	}
	if err := s.settled(ctx); err != nil {
		return err
	}
	var a storage.Args
	where, summary, err := q.where(p, &a)
	if err != nil {
		return err
	}
	if err := s.audit.RecordOutside(ctx, audit.Entry{Action: "recall.export", ObjectType: "recall",
		Detail: strings.TrimSpace("format=" + format + " " + summary)}); err != nil {
		return fmt.Errorf("screening: audit recall export: %w", err)
	}
	return s.eachRecall(ctx, p, where, &a, 0, fn)
}

// eachRecall streams the recalls matching where to fn; limit 0 means all.
func (s *Service) eachRecall(ctx context.Context, p *scope.Principal, where []string, a *storage.Args, limit int, fn func(Recall) error) error {
	query := recallFrom + " WHERE " + strings.Join(where, " AND ") + " ORDER BY r.region_code, r.id"
	if limit > 0 {
		query += " LIMIT " + a.Add(limit)
	}
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return fmt.Errorf("screening: list recalls: %w", err)
	}
	defer rows.Close()
	now := s.now()
	for rows.Next() {
		r, err := s.scanRecall(rows, p, now)
		if err != nil {
			return fmt.Errorf("screening: list recalls: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("screening: list recalls: %w", err)
	}
	return nil
}

// NotifyRecall records that the recalled person has been told to come for
// sampling. Notifying them again changes nothing; once they have been
// sampled again it is a conflict.
func (s *Service) NotifyRecall(ctx context.Context, id int64) (Recall, error) {
	p, err := scope.Require(ctx, FollowRoles...)
	if err != nil {
		return Recall{}, err
	}
	if err := s.settled(ctx); err != nil {
		return Recall{}, err
	}
	var r Recall
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		if r, err = s.recall(ctx, tx, p, id); err != nil {
			return err
		}
		switch r.State {
		case RecallNotified:
			return nil
		case RecallResampled, RecallResulted:
			return conflict("id", CodeRecallDone, "this person has already been sampled again")
		}
		now := s.now()
		if _, err := tx.ExecContext(ctx, "UPDATE recalls SET state = 'notified', notified_at = $1, notified_by = $2 WHERE id = $3 AND state = 'to_notify'",
			storage.Millis(now), actorID(p), id); err != nil {
			return fmt.Errorf("screening: notify recall: %w", err)
		}
		r.State, r.NotifiedAt = RecallNotified, now
		return s.audit.Record(ctx, tx, audit.Entry{Action: "recall.notify", ObjectType: "recall", ObjectID: strconv.FormatInt(id, 10)})
	})
	if err != nil {
		return Recall{}, err
	}
	return r, nil
}

// recall reads one recall in p's scope, locking it on PostgreSQL.
func (s *Service) recall(ctx context.Context, q storage.Querier, p *scope.Principal, id int64) (Recall, error) {
	var a storage.Args
	query := recallFrom + " WHERE r.id = " + a.Add(id) + " AND " + p.Where(&a, "r.region_code", "r.institution_id")
	if s.db.Dialect == storage.Postgres {
		query += " FOR UPDATE OF r"
	}
	r, err := s.scanRecall(q.QueryRowContext(ctx, query, a.Values()...), p, s.now())
	if errors.Is(err, sql.ErrNoRows) {
		return Recall{}, apperr.NotFoundf("recall not found")
	}
	if err != nil {
		return Recall{}, fmt.Errorf("screening: read recall %d: %w", id, err)
	}
	return r, nil
}

// localPlace names a region by its places below the reader's own region
// (a township team reads 城中社区, not the province down), or by its own
// name when it is the reader's region.
func (s *Service) localPlace(p *scope.Principal, code string) string {
	d, ok := s.tree.Lookup(code)
	if !ok {
		return s.placeName(code)
	}
	var names []string
	for _, a := range append(s.tree.Ancestors(code), d) {
		if len(a.Code) > len(p.RegionCode) {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return d.Name
	}
	return strings.Join(names, " ")
}

// RecallTable is the one layout of a recall export (the calling list for
// township teams), headed in the language of t: the columns and the row of
// a recall, masked.
func RecallTable(t func(key string) string) ([]tabular.Column, func(Recall) []any) {
	cols := []tabular.Column{
		{Header: t("screening.recall.region")},
		{Header: t("screening.recall.region_code")},
		{Header: t("screening.recall.name")},
		{Header: t("screening.recall.id_number")},
		{Header: t("screening.recall.phone")},
		{Header: t("screening.recall.tube")},
		{Header: t("screening.recall.point")},
		{Header: t("screening.recall.reason")},
		{Header: t("screening.recall.state")},
		{Header: t("screening.recall.due_at"), Kind: tabular.Time},
		{Header: t("screening.recall.notified_at"), Kind: tabular.Time},
	}
	row := func(r Recall) []any {
		phone := r.Phone
		if r.NoPhone {
			phone = t("screening.recall.no_phone")
		}
		var notified any
		if !r.NotifiedAt.IsZero() {
			notified = r.NotifiedAt
		}
		return []any{r.RegionName, r.RegionCode, r.Person.Name, r.Person.IDNumber, phone, r.TubeCode, r.PointName,
			t("screening.recall_reason." + string(r.Reason)), t("screening.recall_state." + string(r.State)), r.DueAt, notified}
	}
	return cols, row
}
