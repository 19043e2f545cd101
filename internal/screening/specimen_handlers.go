package screening

import (
	"net/http"
	"sync"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/web"
)

// Body limits of the registration API.
const (
	maxSpecimenBody = 8 << 10
	// maxBatchSpecimens bounds one batch request: an offline queue of a
	// morning fits, and one request cannot monopolise the committer.
	maxBatchSpecimens = 500
	maxBatchBody      = maxBatchSpecimens * maxSpecimenBody / 4
)

// APISpecimenCreate registers one specimen: POST /api/v1/specimens. A new
// registration answers 201, a retry of a Registered client id 200 with the
// original.
func (h *Handlers) APISpecimenCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, SampleRoles...); err != nil {
		return err
	}
	var in NewSpecimen
	if err := web.DecodeJSON(w, r, &in, maxSpecimenBody); err != nil {
		return err
	}
	reg, err := h.svc.RegisterSpecimen(r.Context(), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if reg.Created {
		status = http.StatusCreated
	}
	web.WriteJSON(w, status, reg)
	return nil
}

// batchRequest is the body of POST /api/v1/specimens/batch.
type batchRequest struct {
	Specimens []NewSpecimen `json:"specimens"`
}

// BatchItem is one registration's outcome in a batch answer: status is the
// HTTP status the single endpoint would have answered.
type BatchItem struct {
	ClientID     string          `json:"client_id"`
	Status       int             `json:"status"`
	ID           int64           `json:"id,omitempty"`
	TubeCode     string          `json:"tube_code,omitempty"`
	TubeCount    int             `json:"tube_count,omitempty"`
	TubeCapacity int             `json:"tube_capacity,omitempty"`
	TubeState    string          `json:"tube_state,omitempty"`
	Error        *web.ProblemDoc `json:"error,omitempty"`
}

// APISpecimenBatch registers several specimens, e.g. an offline queue
// coming back online: POST /api/v1/specimens/batch. One bad item does not
// reject the others; each has its own status.
func (h *Handlers) APISpecimenBatch(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, SampleRoles...); err != nil {
		return err
	}
	var in batchRequest
	if err := web.DecodeJSON(w, r, &in, maxBatchBody); err != nil {
		return err
	}
	switch {
	case len(in.Specimens) == 0:
		return apperr.Field("specimens", codeRequired, "send at least one specimen")
	case len(in.Specimens) > maxBatchSpecimens:
		return apperr.Field("specimens", "specimens.too_many", "send at most %d specimens at once", maxBatchSpecimens)
	}
	// Every item joins the group commit at once, so the whole request
	// usually shares one or two transactions with everyone else's.
	out := make([]BatchItem, len(in.Specimens))
	var wg sync.WaitGroup
	for i, sp := range in.Specimens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg, err := h.svc.RegisterSpecimen(r.Context(), sp)
			if err != nil {
				doc := h.shell.ProblemDoc(r, err)
				out[i] = BatchItem{ClientID: sp.ClientID, Status: doc.Status, Error: &doc}
				return
			}
			status := http.StatusOK
			if reg.Created {
				status = http.StatusCreated
			}
			out[i] = BatchItem{ClientID: reg.ClientID, Status: status, ID: reg.ID, TubeCode: reg.TubeCode,
				TubeCount: reg.TubeCount, TubeCapacity: reg.TubeCapacity, TubeState: reg.TubeState}
		}()
	}
	wg.Wait()
	// Items shed by a full queue (503) are to be sent again: say when, as a
	// 503 answer to the whole request would.
	for _, it := range out {
		if it.Status == http.StatusServiceUnavailable || it.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
			break
		}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"results": out})
	return nil
}
