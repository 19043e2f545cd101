package deadlines

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/web"
)

// Filter selects deadlines for the inbox and the API. Empty fields select
// everything; the caller's scope always applies.
type Filter struct {
	Kind       string
	State      State  // one of States, Unresolved, or "" for all
	RegionCode string // a region subtree inside the caller's scope
	Cursor     string // from the previous page's next cursor
	Limit      int    // page size; 50 when 0
}

// MaxLimit is the largest page List returns.
const MaxLimit = 1000

// Check validates the filter, naming each bad field as the API spells it.
func (f Filter) Check() error {
	var p apperr.Problems
	if f.Kind != "" {
		if _, ok := LookupKind(f.Kind); !ok {
			p.Add("kind", "deadlines.kind.unknown", "unknown kind %v", f.Kind)
		}
	}
	if f.State != "" && f.State != Unresolved && !slices.Contains(States, f.State) {
		p.Add("state", "deadlines.state.unknown", "state must be one of open, overdue, escalated, met or unresolved")
	}
	if f.RegionCode != "" && !regions.ValidCode(f.RegionCode) {
		p.Add("region_code", "deadlines.region_code.invalid", "a region code is 2, 4, 6, 9 or 12 digits")
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		p.Add("limit", "limit.range", "limit must be a whole number from 1 to %v", MaxLimit)
	}
	return p.Err()
}

// position is the sort key of the last deadline on a page.
type position struct {
	Due int64 `json:"d"`
	ID  int64 `json:"i"`
}

// List returns one page of the caller's deadlines, most urgent (earliest
// due) first, and the cursor of the next page ("" on the last).
func (e *Engine) List(ctx context.Context, f Filter) ([]Deadline, string, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return nil, "", err
	}
	if err := f.Check(); err != nil {
		return nil, "", err
	}
	var pos *position
	if f.Cursor != "" {
		pos = &position{}
		if err := web.DecodeCursor(f.Cursor, pos); err != nil {
			return nil, "", err
		}
	}
	limit := f.Limit
	if limit == 0 {
		limit = 50
	}
	var a storage.Args
	where := []string{p.Where(&a, "d.region_code", "d.institution_id")}
	if f.Kind != "" {
		where = append(where, "d.kind = "+a.Add(f.Kind))
	}
	switch f.State {
	case "":
	case Unresolved:
		where = append(where, "d.state IN ('open', 'overdue', 'escalated')")
	default:
		where = append(where, "d.state = "+a.Add(string(f.State)))
	}
	if f.RegionCode != "" {
		where = append(where, scope.RegionPrefix(&a, "d.region_code", f.RegionCode))
	}
	if pos != nil {
		due, id := a.Add(pos.Due), a.Add(pos.ID)
		where = append(where, "(d.due_at > "+due+" OR (d.due_at = "+due+" AND d.id > "+id+"))")
	}
	q := "SELECT " + columns + " FROM deadlines d WHERE " + strings.Join(where, " AND ") +
		" ORDER BY d.due_at, d.id LIMIT " + a.Add(limit+1)
	out, err := storage.Query(ctx, e.db, scanDeadline, q, a.Values()...)
	if err != nil {
		return nil, "", fmt.Errorf("deadlines: list: %w", err)
	}
	out, next := web.NextPage(out, limit, func(d Deadline) any { return position{Due: storage.Millis(d.DueAt), ID: d.ID} })
	return out, next, nil
}

// Summary is the caller's deadline figures for the dashboard.
type Summary struct {
	Open      int // open: not yet done, not yet marked overdue
	DueSoon   int // open and due within DueSoonWindow
	Overdue   int
	Escalated int
	// ByKind counts the unresolved deadlines of each kind, in Kinds order,
	// leaving out kinds with none.
	ByKind []KindCount
}

// KindCount is how many unresolved deadlines one kind has.
type KindCount struct {
	Kind  string
	Count int
}

// DueSoonWindow is how far ahead the dashboard's "due soon" figure looks.
const DueSoonWindow = 24 * time.Hour

// Summary counts the caller's unresolved deadlines.
func (e *Engine) Summary(ctx context.Context) (Summary, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return Summary{}, err
	}
	var a storage.Args
	soon := a.Add(storage.Millis(e.now().Add(DueSoonWindow)))
	q := `SELECT d.kind, d.state, COUNT(*), COALESCE(SUM(CASE WHEN d.due_at <= ` + soon + ` THEN 1 ELSE 0 END), 0)
		FROM deadlines d WHERE d.state IN ('open', 'overdue', 'escalated') AND ` + p.Where(&a, "d.region_code", "d.institution_id") + `
		GROUP BY d.kind, d.state`
	rows, err := e.db.QueryContext(ctx, q, a.Values()...)
	if err != nil {
		return Summary{}, fmt.Errorf("deadlines: summary: %w", err)
	}
	defer rows.Close()
	var s Summary
	byKind := map[string]int{}
	for rows.Next() {
		var kind, state string
		var n, soonN int
		if err := rows.Scan(&kind, &state, &n, &soonN); err != nil {
			return Summary{}, fmt.Errorf("deadlines: summary: %w", err)
		}
		byKind[kind] += n
		switch State(state) {
		case Open:
			s.Open += n
			s.DueSoon += soonN
		case Overdue:
			s.Overdue += n
		case Escalated:
			s.Escalated += n
		}
	}
	if err := rows.Err(); err != nil {
		return Summary{}, fmt.Errorf("deadlines: summary: %w", err)
	}
	for _, k := range Kinds {
		if n := byKind[k.Code]; n > 0 {
			s.ByKind = append(s.ByKind, KindCount{Kind: k.Code, Count: n})
		}
	}
	return s, nil
}
