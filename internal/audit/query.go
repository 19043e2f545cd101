package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

const selectColumns = "id, at, user_id, username, action, object_type, object_id, outcome, detail, client_addr, user_agent, region_code, prev_hash, hash"

type scanner = storage.Scanner

func scanRow(s scanner, r *row) error {
	return s.Scan(&r.ID, &r.At, &r.UserID, &r.Username, &r.Action, &r.ObjectType, &r.ObjectID, &r.Outcome,
		&r.Detail, &r.ClientAddr, &r.UserAgent, &r.RegionCode, &r.PrevHash, &r.Hash)
}

// Item is one entry as listed on the audit page and in the API.
type Item struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	UserID     int64     `json:"user_id,omitempty"`
	Username   string    `json:"username"`
	Action     string    `json:"action"`
	ObjectType string    `json:"object_type"`
	ObjectID   string    `json:"object_id"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail"`
	ClientAddr string    `json:"client_addr"`
	UserAgent  string    `json:"user_agent"`
	RegionCode string    `json:"region_code"`
	Hash       string    `json:"hash"`
}

func (r *row) item() Item {
	return Item{ID: r.ID, At: storage.FromMillis(r.At), UserID: r.UserID.Int64, Username: r.Username, Action: r.Action,
		ObjectType: r.ObjectType, ObjectID: r.ObjectID, Outcome: r.Outcome, Detail: r.Detail, ClientAddr: r.ClientAddr,
		UserAgent: r.UserAgent, RegionCode: r.RegionCode, Hash: r.Hash}
}

// Filter selects entries; empty fields select everything.
type Filter struct {
	Username   string
	Action     string // exact, or a prefix when it ends in "." ("person.")
	ObjectType string
	ObjectID   string
	Outcome    string
	From       time.Time // inclusive
	To         time.Time // exclusive
	// Before is the pagination cursor: only entries with a smaller id.
	Before int64
}

// List returns up to limit entries matching f, newest first, within the
// caller's scope: a bureau admin sees the entries of actors in their region
// subtree. It also returns the cursor for the next page (0 at the end).
func (l *Log) List(ctx context.Context, f Filter, limit int) ([]Item, int64, error) {
	p, err := admin(ctx)
	if err != nil {
		return nil, 0, err
	}
	if f.Outcome != "" && !validOutcome(f.Outcome) {
		return nil, 0, apperr.Field("outcome", "audit.outcome_unknown", "unknown outcome %q", f.Outcome)
	}
	var a storage.Args
	return l.list(ctx, &a, p.Where(&a, "region_code", ""), f, limit)
}

// Object is a record entries can be about, placed in a scope the way its
// own store places it: by region, and by owning institution for
// institution-scoped users.
type Object struct {
	Type          string // as entries record it: "person"
	ID            string
	RegionCode    string
	InstitutionID int64 // 0 if none
}

// About returns up to limit entries about obj, newest first, to a bureau
// admin whose scope covers obj, whoever made them. List scopes entries by
// the actor's region, which hides accesses to a record by actors placed
// outside the admin's region (a city-wide epidemiologist, the system
// importing); an admin accountable for a record must see every access to
// it. Pass obj's region and institution as just read through its scoped
// store; an object outside the admin's scope is NotFound.
func (l *Log) About(ctx context.Context, obj Object, limit int) ([]Item, error) {
	p, err := admin(ctx)
	if err != nil {
		return nil, err
	}
	if obj.Type == "" || obj.ID == "" {
		return nil, fmt.Errorf("audit: about: object type and id are required")
	}
	if !p.CoversScope(obj.RegionCode, obj.InstitutionID) {
		return nil, apperr.NotFoundf("%s %s not found", obj.Type, obj.ID)
	}
	var a storage.Args
	items, _, err := l.list(ctx, &a, "1=1", Filter{ObjectType: obj.Type, ObjectID: obj.ID}, limit)
	return items, err
}

// admin returns the caller if they are a bureau admin, the only role that
// reads the log.
func admin(ctx context.Context) (*scope.Principal, error) {
	p, err := scope.Require(ctx, scope.BureauAdmin)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// list runs the query of List and About: the entries within scopeCond (a
// condition whose parameters are already in a) that match f.
func (l *Log) list(ctx context.Context, a *storage.Args, scopeCond string, f Filter, limit int) ([]Item, int64, error) {
	conds := []string{scopeCond}
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = "+a.Add(v))
		}
	}
	eq("username", f.Username)
	eq("object_type", f.ObjectType)
	eq("object_id", f.ObjectID)
	eq("outcome", f.Outcome)
	if strings.HasSuffix(f.Action, ".") {
		conds = append(conds, `action LIKE `+a.Add(storage.EscapeLike(f.Action)+"%")+` ESCAPE '\'`)
	} else {
		eq("action", f.Action)
	}
	if !f.From.IsZero() {
		conds = append(conds, "at >= "+a.Add(storage.Millis(f.From)))
	}
	if !f.To.IsZero() {
		conds = append(conds, "at < "+a.Add(storage.Millis(f.To)))
	}
	if f.Before > 0 {
		conds = append(conds, "id < "+a.Add(f.Before))
	}
	if limit <= 0 {
		limit = 50
	}
	q := "SELECT " + selectColumns + " FROM audit_log WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY id DESC LIMIT " + a.Add(limit+1)
	rows, err := l.db.QueryContext(ctx, q, a.Values()...)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: list: %w", err)
	}
	defer rows.Close()
	var items []Item
	var r row
	for rows.Next() {
		if err := scanRow(rows, &r); err != nil {
			return nil, 0, fmt.Errorf("audit: list: %w", err)
		}
		items = append(items, r.item())
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("audit: list: %w", err)
	}
	var next int64
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].ID
	}
	return items, next, nil
}
