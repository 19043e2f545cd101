package audit

import (
	"context"
	"embed"
	"net/http"
	"net/url"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed templates/*.html
var templateFiles embed.FS

// Templates are the audit module's pages.
var Templates = web.Templates{FS: templateFiles, Pattern: "templates/*.html"}

// Handler serves the audit page (/audit) and API (/api/v1/audit) to bureau
// admins, each seeing the entries of actors in their region subtree.
type Handler struct {
	log   *Log
	shell *web.Shell
}

// NewHandler returns the audit handlers.
func NewHandler(l *Log, shell *web.Shell) *Handler {
	return &Handler{log: l, shell: shell}
}

// Page sizes.
const (
	pageSize   = 50
	maxPage    = 500
	exportPage = 1000
)

// cursor is the position after the last entry of a page.
type cursor struct {
	Before int64 `json:"before"`
}

// PageData is the audit page's template data.
type PageData struct {
	Items     []Item
	FirstURL  string // the first page with the same filters
	NextURL   string // "" on the last page
	CSVURL    string // export links with the same filters
	XLSXURL   string
	VerifyURL string // the verify form's action, keeping the filters
	Outcomes  []string
	Report    *VerifyReport // set after "verify chain"
}

// Page shows the filtered log, newest first.
func (h *Handler) Page(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	data, err := h.pageData(r)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "audit", data)
	return nil
}

func (h *Handler) pageData(r *http.Request) (*PageData, error) {
	f, err := h.filter(r.Context(), r.URL.Query())
	if err != nil {
		return nil, err
	}
	items, next, err := h.log.List(r.Context(), f, pageSize)
	if err != nil {
		return nil, err
	}
	filters := filterQuery(r.URL.Query())
	with := func(path, key, value string) string {
		q := filterQuery(filters)
		if key != "" {
			q.Set(key, value)
		}
		if len(q) == 0 {
			return path
		}
		return path + "?" + q.Encode()
	}
	d := &PageData{Items: items, Outcomes: Outcomes, FirstURL: with("/audit", "", ""),
		CSVURL: with("/audit/export", "format", "csv"), XLSXURL: with("/audit/export", "format", "xlsx"),
		VerifyURL: with("/audit/verify", "", "")}
	if next != 0 {
		d.NextURL = with("/audit", "cursor", web.EncodeCursor(cursor{Before: next}))
	}
	return d, nil
}

// API answers GET /api/v1/audit with {items, next_cursor}.
func (h *Handler) API(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	q := r.URL.Query()
	f, err := h.filter(r.Context(), q)
	if err != nil {
		return err
	}
	limit, err := web.Limit(q, pageSize, maxPage)
	if err != nil {
		return err
	}
	items, next, err := h.log.List(r.Context(), f, limit)
	if err != nil {
		return err
	}
	resp := struct {
		Items      []Item `json:"items"`
		NextCursor string `json:"next_cursor"`
	}{Items: items}
	if resp.Items == nil {
		resp.Items = []Item{}
	}
	if next != 0 {
		resp.NextCursor = web.EncodeCursor(cursor{Before: next})
	}
	web.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// Export writes every entry matching the filters as CSV or .xlsx
// (?format=csv|xlsx), and records that the log was exported.
func (h *Handler) Export(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	q := r.URL.Query()
	f, err := h.filter(r.Context(), q)
	if err != nil {
		return err
	}
	f.Before = 0
	ctx := r.Context()
	return h.shell.Export(w, r, "audit-log", "audit", exportColumns, func(format tabular.Format, write func([]any) error) error {
		// Read the first page and record the export before the file starts,
		// so a failure can still be answered with an error page.
		items, next, err := h.log.List(ctx, f, exportPage)
		if err != nil {
			return err
		}
		if err := h.log.RecordOutside(ctx, Entry{Action: "audit.export", Detail: "format=" + string(format)}); err != nil {
			return err
		}
		for {
			for _, it := range items {
				if err := write([]any{it.ID, it.At, it.Username, it.Action, it.ObjectType, it.ObjectID, it.Outcome,
					it.Detail, it.ClientAddr, it.UserAgent, it.RegionCode, it.Hash}); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			f.Before = next
			if items, next, err = h.log.List(ctx, f, exportPage); err != nil {
				return err
			}
		}
	})
}

var exportColumns = []tabular.Column{
	{Header: "id", Kind: tabular.Number},
	{Header: "at", Kind: tabular.Time},
	{Header: "username"},
	{Header: "action"},
	{Header: "object_type"},
	{Header: "object_id"},
	{Header: "outcome"},
	{Header: "detail", Width: 40},
	{Header: "client_addr"},
	{Header: "user_agent", Width: 30},
	{Header: "region_code"},
	{Header: "hash", Width: 20},
}

// VerifyPage walks the chain (POST /audit/verify) and shows the report above
// the list.
func (h *Handler) VerifyPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	rep, err := h.log.Verify(r.Context())
	if err != nil {
		return err
	}
	data, err := h.pageData(r)
	if err != nil {
		return err
	}
	data.Report = &rep
	h.shell.Render(w, r, "audit", data)
	return nil
}

// VerifyAPI walks the chain (POST /api/v1/audit/verify) and returns the report.
func (h *Handler) VerifyAPI(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	rep, err := h.log.Verify(r.Context())
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// filterParams are the query parameters that select entries.
var filterParams = []string{"user", "action", "object_type", "object_id", "outcome", "from", "to"}

// filterQuery returns just the filter parameters of q.
func filterQuery(q url.Values) url.Values {
	out := url.Values{}
	for _, k := range filterParams {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out
}

// filter reads the filters and the cursor. Dates are whole days in the
// bureau's time zone; "to" includes its day.
func (h *Handler) filter(ctx context.Context, q url.Values) (Filter, error) {
	f := Filter{Username: q.Get("user"), Action: q.Get("action"), ObjectType: q.Get("object_type"),
		ObjectID: q.Get("object_id"), Outcome: q.Get("outcome")}
	var problems apperr.Problems
	loc := h.shell.Location(ctx)
	if f.Outcome != "" && !validOutcome(f.Outcome) {
		problems.Add("outcome", "audit.outcome_unknown", "unknown outcome %q", f.Outcome)
	}
	day := func(name string) time.Time {
		s := q.Get(name)
		if s == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation("2006-01-02", s, loc)
		if err != nil {
			problems.Add(name, "audit.date_invalid", "must be a date like 2026-03-01")
		}
		return t
	}
	f.From = day("from")
	if to := day("to"); !to.IsZero() {
		f.To = to.AddDate(0, 0, 1)
	}
	var c cursor
	if err := web.DecodeCursor(q.Get("cursor"), &c); err != nil {
		return f, err
	}
	f.Before = c.Before
	if err := problems.Err(); err != nil {
		return f, err
	}
	return f, nil
}
