package deadlines

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

// Handler serves the inbox, the home dashboard and the deadlines API.
type Handler struct {
	engine *Engine
	shell  *web.Shell
}

// NewHandler returns the deadlines handlers.
func NewHandler(e *Engine, shell *web.Shell) *Handler {
	return &Handler{engine: e, shell: shell}
}

// dueSoon is how close a due time turns an open deadline's badge amber.
const dueSoon = time.Hour

// filterFromQuery reads the list filter from query parameters; def is the
// state when none is given.
func filterFromQuery(q url.Values, def State) (Filter, error) {
	limit, err := web.Limit(q, 50, MaxLimit)
	if err != nil {
		return Filter{}, err
	}
	f := Filter{Kind: q.Get("kind"), State: State(q.Get("state")), RegionCode: q.Get("region_code"), Cursor: q.Get("cursor"), Limit: limit}
	if _, given := q["state"]; !given {
		f.State = def
	}
	return f, f.Check()
}

// row is a deadline as the inbox and dashboard show it, translated.
type row struct {
	Deadline
	KindLabel  string
	StateLabel string
	Due        string // in the bureau's time zone
	Left       string // "2小时5分" left, or overdue by
	Badge      string // badge class: ok, warn, danger, info
	Late       bool
}

// table is a list of deadlines with its translated headings (the shared
// partial "deadline_rows" renders it).
type table struct {
	Head      []string
	Rows      []row
	LateLabel string
}

// table prepares deadlines for display in the request's language.
func (h *Handler) table(r *http.Request, ds []Deadline) (table, error) {
	rows, err := h.rows(r, ds)
	if err != nil {
		return table{}, err
	}
	lang := locale.FromRequest(r)
	t := func(key string) string { return h.shell.Catalog.T(lang, key) }
	return table{Rows: rows, LateLabel: t("deadlines.late"), Head: []string{t("deadlines.col.kind"), t("deadlines.col.title"),
		t("deadlines.col.region_code"), t("deadlines.col.due_at"), t("deadlines.col.left"), t("deadlines.col.state")}}, nil
}

// rows prepares deadlines for display in the request's language.
func (h *Handler) rows(r *http.Request, ds []Deadline) ([]row, error) {
	loc := h.shell.Location(r.Context())
	lang := locale.FromRequest(r)
	now := h.engine.now()
	out := make([]row, len(ds))
	for i, d := range ds {
		rw := row{Deadline: d, Due: d.DueAt.In(loc).Format("2006-01-02 15:04"), Late: d.Late(),
			KindLabel:  h.shell.Catalog.T(lang, "deadlines.kind."+d.Kind),
			StateLabel: h.shell.Catalog.T(lang, "deadlines.state."+string(d.State))}
		switch left := d.DueAt.Sub(now); {
		case d.State == Met:
			rw.Badge = "ok"
		case left < 0 || d.State != Open:
			rw.Badge = "danger"
			rw.Left = h.shell.Catalog.T(lang, "deadlines.overdue_by", h.duration(lang, -left))
		case left <= dueSoon:
			rw.Badge = "warn"
			rw.Left = h.shell.Catalog.T(lang, "deadlines.time_left", h.duration(lang, left))
		default:
			rw.Badge = "info"
			rw.Left = h.shell.Catalog.T(lang, "deadlines.time_left", h.duration(lang, left))
		}
		out[i] = rw
	}
	return out, nil
}

// duration writes d to the minute, in days and hours beyond a day.
func (h *Handler) duration(lang locale.Lang, d time.Duration) string {
	d = d.Truncate(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return h.shell.Catalog.T(lang, "deadlines.dur.days", days, hours)
	case hours > 0:
		return h.shell.Catalog.T(lang, "deadlines.dur.hours", hours, mins)
	default:
		return h.shell.Catalog.T(lang, "deadlines.dur.minutes", mins)
	}
}

// inboxPage is the template data of the inbox.
type inboxPage struct {
	Table  table
	Next   string
	Filter Filter
	Kinds  []Kind
	States []State
}

// Inbox lists the signed-in user's deadlines, unresolved ones by default.
func (h *Handler) Inbox(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	f, err := filterFromQuery(r.URL.Query(), Unresolved)
	if err != nil {
		return err
	}
	ds, next, err := h.engine.List(r.Context(), f)
	if err != nil {
		return err
	}
	tbl, err := h.table(r, ds)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "inbox", inboxPage{Table: tbl, Next: next, Filter: f, Kinds: Kinds, States: States})
	return nil
}

// detailPage is the template data of one deadline's page.
type detailPage struct {
	Row    row
	Events []Event
}

// Detail shows one deadline and its history.
func (h *Handler) Detail(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	d, events, err := h.engine.Get(r.Context(), id)
	if err != nil {
		return err
	}
	rows, err := h.rows(r, []Deadline{d})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "deadline", detailPage{Row: rows[0], Events: events})
	return nil
}

// Export writes the filtered inbox as CSV or .xlsx (?format=), every page of it.
func (h *Handler) Export(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	q := r.URL.Query()
	q.Del("cursor")
	q.Del("limit")
	f, err := filterFromQuery(q, Unresolved)
	if err != nil {
		return err
	}
	f.Limit = MaxLimit
	lang := locale.FromRequest(r)
	t := func(key string) string { return h.shell.Catalog.T(lang, key) }
	cols := []tabular.Column{
		{Header: "ID", Kind: tabular.Number},
		{Header: t("deadlines.col.kind")},
		{Header: t("deadlines.col.title"), Width: 40},
		{Header: t("deadlines.col.region_code")},
		{Header: t("deadlines.col.institution_id"), Kind: tabular.Number},
		{Header: t("deadlines.col.due_at"), Kind: tabular.Time},
		{Header: t("deadlines.col.state")},
		{Header: t("deadlines.col.met_at"), Kind: tabular.Time},
		{Header: t("deadlines.col.subject_type")},
		{Header: t("deadlines.col.subject_id")},
	}
	return h.shell.Export(w, r, "deadlines", t("deadlines.title"), cols, func(_ tabular.Format, write func([]any) error) error {
		for {
			ds, next, err := h.engine.List(r.Context(), f)
			if err != nil {
				return err
			}
			for _, d := range ds {
				var inst any
				if d.InstitutionID != 0 {
					inst = d.InstitutionID
				}
				if err := write([]any{d.ID, t("deadlines.kind." + d.Kind), d.Title, d.RegionCode, inst, d.DueAt,
					t("deadlines.state." + string(d.State)), d.MetAt, d.SubjectType, d.SubjectID}); err != nil {
					return err
				}
			}
			if next == "" {
				return nil
			}
			f.Cursor = next
		}
	})
}

// homePage is the template data of the dashboard.
type homePage struct {
	Summary    Summary
	Urgent     table
	Level      string
	BureauName string
	Chart      string // an ECharts option as JSON, for app.js's data-chart
}

// Home is the dashboard every signed-in user lands on: their deadline
// figures, the most urgent duties and the response level.
func (h *Handler) Home(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	ctx := r.Context()
	sum, err := h.engine.Summary(ctx)
	if err != nil {
		return err
	}
	ds, _, err := h.engine.List(ctx, Filter{State: Unresolved, Limit: 10})
	if err != nil {
		return err
	}
	urgent, err := h.table(r, ds)
	if err != nil {
		return err
	}
	level, err := h.engine.settings.ResponseLevel(ctx)
	if err != nil {
		return err
	}
	name, err := h.engine.settings.String(ctx, settings.BureauName)
	if err != nil {
		return err
	}
	chart, err := h.kindChart(locale.FromRequest(r), sum.ByKind)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "home", homePage{Summary: sum, Urgent: urgent, Level: level, BureauName: name, Chart: chart})
	return nil
}

// kindChart returns the ECharts option of a bar chart of unresolved
// deadlines by kind, or "" when there are none.
func (h *Handler) kindChart(lang locale.Lang, counts []KindCount) (string, error) {
	if len(counts) == 0 {
		return "", nil
	}
	labels := make([]string, len(counts))
	values := make([]int, len(counts))
	for i, c := range counts {
		labels[i] = h.shell.Catalog.T(lang, "deadlines.kind."+c.Kind)
		values[i] = c.Count
	}
	option := map[string]any{
		"tooltip": map[string]any{},
		"grid":    map[string]any{"left": 40, "right": 16, "top": 24, "bottom": 64},
		"xAxis":   map[string]any{"type": "category", "data": labels, "axisLabel": map[string]any{"interval": 0, "rotate": 30}},
		"yAxis":   map[string]any{"type": "value", "minInterval": 1},
		"series":  []any{map[string]any{"type": "bar", "name": h.shell.Catalog.T(lang, "deadlines.chart.unresolved"), "data": values}},
	}
	b, err := json.Marshal(option)
	if err != nil {
		return "", fmt.Errorf("deadlines: chart: %w", err)
	}
	return string(b), nil
}
