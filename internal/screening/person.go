package screening

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"time"

	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

// PersonSpecimen is one of a person's specimens with its tube's outcome:
// a member's result is its tube's result.
type PersonSpecimen struct {
	ID            int64      `json:"id"`
	CampaignID    int64      `json:"campaign_id"`
	CampaignName  string     `json:"campaign_name"`
	PointName     string     `json:"sampling_point_name"`
	TubeCode      string     `json:"tube_code"`
	TubeCapacity  int        `json:"tube_capacity"`
	TubeState     TubeState  `json:"tube_state"`
	Result        Result     `json:"result,omitempty"`
	SampledAt     time.Time  `json:"sampled_at"`
	ResultedAt    *time.Time `json:"resulted_at,omitempty"`
	RecallState   string     `json:"recall_state,omitempty"`
	RecallReason  string     `json:"recall_reason,omitempty"`
	Counted       bool       `json:"counted"`
	ResidenceCode string     `json:"region_code"`
}

// maxPersonSpecimens bounds a person's history page: a few rounds a week
// for a year.
const maxPersonSpecimens = 500

// PersonSpecimens returns a person's specimens across campaigns, newest
// first, as far as they lie in the caller's scope (specimens are placed by
// the residence given and by the sampling point).
func (s *Service) PersonSpecimens(ctx context.Context, personID int64) ([]PersonSpecimen, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.settled(ctx); err != nil {
		return nil, err
	}
	var a storage.Args
	query := `SELECT s.id, s.campaign_id, c.name, sp.name, t.code, t.capacity, t.state, t.result, s.sampled_at, t.resulted_at,
		r.state, r.reason, s.counted, s.region_code
		FROM specimens s JOIN tubes t ON t.id = s.tube_id JOIN campaigns c ON c.id = s.campaign_id
		JOIN sampling_points sp ON sp.id = s.sampling_point_id
		LEFT JOIN recalls r ON r.specimen_id = s.id
		WHERE s.person_id = ` + a.Add(personID) + " AND " + p.Where(&a, "s.region_code", "s.institution_id") +
		" ORDER BY s.sampled_at DESC, s.id DESC LIMIT " + a.Add(maxPersonSpecimens)
	rows, err := s.db.QueryContext(ctx, query, a.Values()...)
	if err != nil {
		return nil, fmt.Errorf("screening: read person's specimens: %w", err)
	}
	defer rows.Close()
	var out []PersonSpecimen
	for rows.Next() {
		var ps PersonSpecimen
		var result, recallState, recallReason sql.NullString
		var sampled int64
		var resulted sql.NullInt64
		if err := rows.Scan(&ps.ID, &ps.CampaignID, &ps.CampaignName, &ps.PointName, &ps.TubeCode, &ps.TubeCapacity, &ps.TubeState,
			&result, &sampled, &resulted, &recallState, &recallReason, &ps.Counted, &ps.ResidenceCode); err != nil {
			return nil, fmt.Errorf("screening: read person's specimens: %w", err)
		}
		ps.Result, ps.RecallState, ps.RecallReason = Result(result.String), recallState.String, recallReason.String
		ps.SampledAt = storage.FromMillis(sampled)
		if resulted.Valid {
			t := storage.FromMillis(resulted.Int64)
			ps.ResultedAt = &t
		}
		out = append(out, ps)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("screening: read person's specimens: %w", err)
	}
	return out, nil
}

// personScreening is a person with their specimens.
type personScreening struct {
	Person    people.PersonView `json:"person"`
	Specimens []PersonSpecimen  `json:"items"`
}

func (h *Handlers) personScreening(r *http.Request) (personScreening, error) {
	if _, err := web.UserWith(r, FollowRoles...); err != nil {
		return personScreening{}, err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return personScreening{}, err
	}
	// The registry read is scoped and audited like any person page.
	p, err := h.svc.people.Get(r.Context(), id)
	if err != nil {
		return personScreening{}, err
	}
	items, err := h.svc.PersonSpecimens(r.Context(), id)
	if err != nil {
		return personScreening{}, err
	}
	if items == nil {
		items = []PersonSpecimen{}
	}
	return personScreening{Person: p.Masked(), Specimens: items}, nil
}

// PersonPage shows a person's specimens and results across campaigns:
// GET /screening/people/{id}.
func (h *Handlers) PersonPage(w http.ResponseWriter, r *http.Request) error {
	d, err := h.personScreening(r)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_person", d)
	return nil
}

// APIPersonSpecimens is GET /api/v1/people/{id}/specimens.
func (h *Handlers) APIPersonSpecimens(w http.ResponseWriter, r *http.Request) error {
	d, err := h.personScreening(r)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, d)
	return nil
}
