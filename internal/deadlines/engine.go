package deadlines

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/storage"
)

// Engine opens, meets, moves and lists deadlines.
type Engine struct {
	db       *storage.DB
	settings *settings.Store
	now      func() time.Time
	// Instance names this app process in deadline_events, so the history
	// shows which instance's scheduler made each change.
	Instance string
	// Log receives the scheduler's failures (slog.Default() when nil).
	Log *slog.Logger
	// Batch is how many deadlines one scheduler transaction moves per
	// transition, so a backlog never holds locks for long.
	Batch int
}

// New returns the engine over db, reading durations from settings; now is
// the clock (time.Now when nil).
func New(db *storage.DB, s *settings.Store, now func() time.Time) *Engine {
	if now == nil {
		now = time.Now
	}
	return &Engine{db: db, settings: s, now: now, Instance: instanceName(), Batch: 500}
}

// instanceName is host:pid:random, unique among app processes on one database.
func instanceName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}

// Open records a duty inside the caller's transaction tx, so the deadline
// exists exactly when the record it is about does. It is idempotent by the
// dedupe key (see Deadline.DedupeKey): opening the same duty again returns
// the existing deadline's ID and changes nothing. A zero DueAt takes the
// due time from the kind's setting.
//
// Open does not check the caller's capture scope: a module opens a duty for
// whoever owns it (a lab's positive result opens a recall for the township),
// after checking its own record's scope.
func (e *Engine) Open(ctx context.Context, tx *sql.Tx, d Deadline) (int64, error) {
	k, ok := LookupKind(d.Kind)
	if !ok {
		return 0, fmt.Errorf("deadlines: unknown kind %q", d.Kind)
	}
	for name, v := range map[string]string{"subject type": d.SubjectType, "subject id": d.SubjectID, "title": d.Title, "region code": d.RegionCode} {
		if strings.TrimSpace(v) == "" {
			return 0, fmt.Errorf("deadlines: open %s: no %s", d.Kind, name)
		}
	}
	now := e.now()
	due, err := e.dueAt(ctx, tx, k, d.DueAt, now)
	if err != nil {
		return 0, err
	}
	key := d.DedupeKey
	if key == "" {
		key = d.Kind + "|" + d.SubjectType + "|" + d.SubjectID
	}
	inst := sql.NullInt64{Int64: d.InstitutionID, Valid: d.InstitutionID != 0}
	at := storage.Millis(now)
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO deadlines (kind, subject_type, subject_id, title, region_code, institution_id, due_at, state, created_at, updated_at, dedupe_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $8, $9)
		ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
		d.Kind, d.SubjectType, d.SubjectID, d.Title, d.RegionCode, inst, storage.Millis(due), at, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if err := tx.QueryRowContext(ctx, "SELECT id FROM deadlines WHERE dedupe_key = $1", key).Scan(&id); err != nil {
			return 0, fmt.Errorf("deadlines: find existing %s: %w", key, err)
		}
		return id, nil
	}
	if err != nil {
		return 0, fmt.Errorf("deadlines: open %s: %w", d.Kind, err)
	}
	if err := e.recordEvents(ctx, tx, []int64{id}, "", Open, at); err != nil {
		return 0, err
	}
	return id, nil
}

// dueAt returns the given due time, or the one the kind's setting implies.
func (e *Engine) dueAt(ctx context.Context, tx *sql.Tx, k Kind, given, now time.Time) (time.Time, error) {
	if !given.IsZero() {
		return given, nil
	}
	s := e.settings.With(tx)
	switch {
	case k.Duration != "":
		d, err := s.Duration(ctx, k.Duration)
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(d), nil
	case k.Cutoff != "":
		offset, err := s.TimeOfDay(ctx, k.Cutoff)
		if err != nil {
			return time.Time{}, err
		}
		loc, err := s.Location(ctx)
		if err != nil {
			return time.Time{}, err
		}
		return nextCutoff(now, offset, loc), nil
	}
	return time.Time{}, fmt.Errorf("deadlines: a %s deadline needs a due time", k.Code)
}

// nextCutoff returns the first time after now that is offset past midnight
// in loc. Whole days are added to the calendar date, so a daylight-saving
// change (in zones that have one) does not shift the clock time.
func nextCutoff(now time.Time, offset time.Duration, loc *time.Location) time.Time {
	l := now.In(loc)
	h, m := int(offset/time.Hour), int(offset%time.Hour/time.Minute)
	c := time.Date(l.Year(), l.Month(), l.Day(), h, m, 0, 0, loc)
	if !c.After(now) {
		c = time.Date(l.Year(), l.Month(), l.Day()+1, h, m, 0, 0, loc)
	}
	return c
}

// Meet marks the subject's deadlines of this kind done (all of them: see
// Deadline.DedupeKey for recurring duties), inside the caller's
// transaction, whatever state they reached: a duty met late is still met,
// and its met_at shows by how much. Meeting an already met deadline, or a
// subject without one, changes nothing.
func (e *Engine) Meet(ctx context.Context, tx *sql.Tx, kind, subjectType, subjectID string) error {
	if _, ok := LookupKind(kind); !ok {
		return fmt.Errorf("deadlines: unknown kind %q", kind)
	}
	at := storage.Millis(e.now())
	// One conditional UPDATE per state (the states only move forward, and
	// each statement sees the latest committed state), so the event records
	// the state the deadline really left, even racing the scheduler.
	for _, from := range []State{Open, Overdue, Escalated} {
		ids, err := updateIDs(ctx, tx, `UPDATE deadlines SET state = 'met', met_at = $1, updated_at = $1
			WHERE kind = $2 AND subject_type = $3 AND subject_id = $4 AND state = $5 RETURNING id`,
			at, kind, subjectType, subjectID, string(from))
		if err != nil {
			return fmt.Errorf("deadlines: meet %s %s/%s: %w", kind, subjectType, subjectID, err)
		}
		if err := e.recordEvents(ctx, tx, ids, from, Met, at); err != nil {
			return err
		}
	}
	return nil
}

// updateIDs runs an UPDATE … RETURNING id and collects the ids.
func updateIDs(ctx context.Context, q storage.Querier, query string, args ...any) ([]int64, error) {
	return storage.Query(ctx, q, func(r storage.Scanner) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	}, query, args...)
}

// recordEvents writes one transition for each deadline in ids.
func (e *Engine) recordEvents(ctx context.Context, q storage.Querier, ids []int64, from, to State, at int64) error {
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		var a storage.Args
		f, t, ts, by := a.Add(string(from)), a.Add(string(to)), a.Add(at), a.Add(e.Instance)
		var b strings.Builder
		b.WriteString("INSERT INTO deadline_events (deadline_id, from_state, to_state, at, by_instance) VALUES ")
		for i, id := range ids[start:min(start+chunk, len(ids))] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "(%s, %s, %s, %s, %s)", a.Add(id), f, t, ts, by)
		}
		if _, err := q.ExecContext(ctx, b.String(), a.Values()...); err != nil {
			return fmt.Errorf("deadlines: record %s → %s: %w", from, to, err)
		}
	}
	return nil
}

// columns is the select list that scanDeadline reads.
const columns = `d.id, d.kind, d.subject_type, d.subject_id, d.title, d.region_code, d.institution_id, d.due_at, d.state,
	d.met_at, d.overdue_at, d.escalated_at, d.created_at, d.updated_at, COALESCE(d.dedupe_key, '')`

type scanner = storage.Scanner

func scanDeadline(s scanner) (Deadline, error) {
	var d Deadline
	var inst, met, overdue, escalated sql.NullInt64
	var due, created, updated int64
	var state string
	if err := s.Scan(&d.ID, &d.Kind, &d.SubjectType, &d.SubjectID, &d.Title, &d.RegionCode, &inst, &due, &state,
		&met, &overdue, &escalated, &created, &updated, &d.DedupeKey); err != nil {
		return Deadline{}, err
	}
	d.InstitutionID = inst.Int64
	d.DueAt = storage.FromMillis(due)
	d.State = State(state)
	d.MetAt = storage.FromNullMillis(met)
	d.OverdueAt = storage.FromNullMillis(overdue)
	d.EscalatedAt = storage.FromNullMillis(escalated)
	d.CreatedAt = storage.FromMillis(created)
	d.UpdatedAt = storage.FromMillis(updated)
	return d, nil
}

// Get returns one deadline in the caller's scope with its history; one out
// of scope is not found.
func (e *Engine) Get(ctx context.Context, id int64) (Deadline, []Event, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return Deadline{}, nil, err
	}
	var a storage.Args
	q := "SELECT " + columns + " FROM deadlines d WHERE d.id = " + a.Add(id) + " AND " + p.Where(&a, "d.region_code", "d.institution_id")
	d, err := scanDeadline(e.db.QueryRowContext(ctx, q, a.Values()...))
	if errors.Is(err, sql.ErrNoRows) {
		return Deadline{}, nil, apperr.NotFoundf("deadline not found")
	}
	if err != nil {
		return Deadline{}, nil, fmt.Errorf("deadlines: get %d: %w", id, err)
	}
	rows, err := e.db.QueryContext(ctx, "SELECT from_state, to_state, at, by_instance FROM deadline_events WHERE deadline_id = $1 ORDER BY id", id)
	if err != nil {
		return Deadline{}, nil, fmt.Errorf("deadlines: history of %d: %w", id, err)
	}
	defer rows.Close()
	var events []Event
	for rows.Next() {
		var ev Event
		var from, to string
		var at int64
		if err := rows.Scan(&from, &to, &at, &ev.ByInstance); err != nil {
			return Deadline{}, nil, fmt.Errorf("deadlines: history of %d: %w", id, err)
		}
		ev.From, ev.To, ev.At = State(from), State(to), storage.FromMillis(at)
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return Deadline{}, nil, fmt.Errorf("deadlines: history of %d: %w", id, err)
	}
	return d, events, nil
}
