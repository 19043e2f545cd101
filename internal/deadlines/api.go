package deadlines

import (
	"net/http"
	"time"

	"github.com/shaobing/shaobing/internal/web"
)

// item is a deadline in the JSON API. The field names are a contract
// (the screening module filters on kind and state).
type item struct {
	ID            int64      `json:"id"`
	Kind          string     `json:"kind"`
	SubjectType   string     `json:"subject_type"`
	SubjectID     string     `json:"subject_id"`
	Title         string     `json:"title"`
	RegionCode    string     `json:"region_code"`
	InstitutionID *int64     `json:"institution_id"`
	DueAt         time.Time  `json:"due_at"`
	State         State      `json:"state"`
	MetAt         *time.Time `json:"met_at"`
}

func toItem(d Deadline) item {
	it := item{ID: d.ID, Kind: d.Kind, SubjectType: d.SubjectType, SubjectID: d.SubjectID, Title: d.Title,
		RegionCode: d.RegionCode, DueAt: d.DueAt, State: d.State}
	if d.InstitutionID != 0 {
		it.InstitutionID = &d.InstitutionID
	}
	if !d.MetAt.IsZero() {
		it.MetAt = &d.MetAt
	}
	return it
}

// listResponse is a page of the API list.
type listResponse struct {
	Items      []item `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// APIList answers GET /api/v1/deadlines?kind=&state=&region_code=&cursor=&limit=
// with the caller's deadlines, most urgent first; without state, all states.
func (h *Handler) APIList(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	f, err := filterFromQuery(r.URL.Query(), "")
	if err != nil {
		return err
	}
	ds, next, err := h.engine.List(r.Context(), f)
	if err != nil {
		return err
	}
	resp := listResponse{Items: make([]item, len(ds)), NextCursor: next}
	for i, d := range ds {
		resp.Items[i] = toItem(d)
	}
	web.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// APIGet answers GET /api/v1/deadlines/{id}; one out of scope is 404.
func (h *Handler) APIGet(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	d, _, err := h.engine.Get(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, toItem(d))
	return nil
}
