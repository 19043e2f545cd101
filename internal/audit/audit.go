// Package audit keeps the audit log of DESIGN.md §6: an append-only record of
// every write and every read or search of personal data, with who, when, from
// where and with what outcome. Entries form a hash chain, so a changed,
// removed or re-ordered entry shows when the chain is verified.
//
// Callers record writes with Record inside their own write transaction (the
// entry commits or rolls back with the write), and reads, searches and
// failures with RecordOutside. Record takes the chain lock, which is held
// until the caller's transaction ends: record audit entries LAST in a
// transaction, just before commit, so the serialised part stays short.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

//go:embed messages.json
var messageFiles embed.FS

// Migrations creates the audit_log table and its append-only triggers.
var Migrations = storage.Migrations{Module: "audit", FS: mustSub(migrationFiles, "migrations")}

// Messages are the audit module's translations.
var Messages = locale.Source{FS: messageFiles, Name: "messages.json"}

// The outcomes an entry may record.
const (
	OK       = "ok"
	Denied   = "denied"
	NotFound = "not_found"
	Invalid  = "invalid"
	Error    = "error"
)

// Outcomes lists the valid outcomes in display order.
var Outcomes = []string{OK, Denied, NotFound, Invalid, Error}

// GenesisHash is the prev_hash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// chainLock is the PostgreSQL advisory lock key that serialises appends
// (storage's migration lock is 727001).
const chainLock = 727002

// Field length limits: the log stores what happened, not payloads.
const (
	maxField     = 256
	maxDetail    = 1000
	maxUserAgent = 256
)

// Entry is one thing that happened.
type Entry struct {
	// Action names what was done: "person.create", "person.read",
	// "person.search", "person.unmask", "person.export", "user.login" …
	Action string
	// ObjectType and ObjectID name what it was done to ("person", "42");
	// both may be empty (a search).
	ObjectType string
	ObjectID   string
	// Outcome is "ok" (the default when empty), "denied", "not_found",
	// "invalid" or "error".
	Outcome string
	// Detail is free text for the reader of the log. It holds no personal
	// data, except the reason a user stated for unmasking.
	Detail string
	// RegionCode places the entry for scoping when the actor has no region
	// of their own (an anonymous failed login for a known user). It is
	// ignored when the actor is a user with a region: then the actor's
	// region is recorded.
	RegionCode string
}

// Log appends to and verifies the audit log.
type Log struct {
	db  *storage.DB
	now func() time.Time
}

// New returns the audit log kept in db; now is the clock (time.Now when nil).
func New(db *storage.DB, now func() time.Time) *Log {
	if now == nil {
		now = time.Now
	}
	return &Log{db: db, now: now}
}

// row is an entry as stored: the caller's Entry plus who, when and where.
type row struct {
	ID         int64
	At         int64
	UserID     sql.NullInt64
	Username   string
	Action     string
	ObjectType string
	ObjectID   string
	Outcome    string
	Detail     string
	ClientAddr string
	UserAgent  string
	RegionCode string
	PrevHash   string
	Hash       string
}

// Record appends e inside the caller's transaction tx: the entry commits or
// rolls back with the caller's write. Call it last in the transaction (see
// the package comment).
func (l *Log) Record(ctx context.Context, tx *sql.Tx, e Entry) error {
	return l.RecordBatch(ctx, tx, []Entry{e})
}

// RecordOutside appends e in a transaction of its own, for reads, searches
// and failures that have no write transaction to join. It records even when
// ctx is already cancelled (the request may have ended), within a short
// time limit.
func (l *Log) RecordOutside(ctx context.Context, e Entry) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return l.db.InTx(ctx, func(tx *sql.Tx) error { return l.RecordBatch(ctx, tx, []Entry{e}) })
}

// RecordBatch appends several entries inside tx under one chain lock, with
// one INSERT from arrays on PostgreSQL and a prepared INSERT on SQLite: bulk
// imports and group commits use it.
func (l *Log) RecordBatch(ctx context.Context, tx *sql.Tx, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	actor := actorOf(ctx)
	c := clientOf(ctx)
	at := storage.Millis(l.now())
	rows := make([]row, len(entries))
	for i, e := range entries {
		r, err := newRow(e, actor, c, at)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	return l.append(ctx, tx, rows)
}

// Origin is who made a request and where it came from, as an entry records
// them. Entries written after their request has ended (a registration filed
// a moment after it was acknowledged) keep the request's Origin instead of
// its context.
type Origin struct {
	UserID     int64 // 0 when nobody signed in, or the system
	Username   string
	RegionCode string // the user's region
	ClientAddr string
	UserAgent  string
}

// OriginOf returns the origin of the request ctx belongs to: its principal
// and client.
func OriginOf(ctx context.Context) Origin {
	a, c := actorOf(ctx), clientOf(ctx)
	return Origin{UserID: a.userID.Int64, Username: a.username, RegionCode: a.region, ClientAddr: c.addr, UserAgent: c.userAgent}
}

// Attributed is an entry together with the origin of the request it belongs
// to, which is recorded with it.
type Attributed struct {
	Origin Origin
	Entry  Entry
}

// RecordAttributed is RecordBatch for entries of different requests: the
// filing of many users' registrations in one transaction, where each entry
// names its own actor and client.
func (l *Log) RecordAttributed(ctx context.Context, tx *sql.Tx, items []Attributed) error {
	if len(items) == 0 {
		return nil
	}
	at := storage.Millis(l.now())
	rows := make([]row, len(items))
	for i, it := range items {
		o := it.Origin
		a := actor{userID: sql.NullInt64{Int64: o.UserID, Valid: o.UserID != 0}, username: o.Username, region: o.RegionCode}
		r, err := newRow(it.Entry, a, client{addr: o.ClientAddr, userAgent: o.UserAgent}, at)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	return l.append(ctx, tx, rows)
}

// append chains rows onto the log inside tx.
func (l *Log) append(ctx context.Context, tx *sql.Tx, rows []row) error {
	if l.db.Dialect == storage.Postgres {
		// Held until tx ends, so the last hash read below stays the last
		// until this transaction's entries are committed or gone.
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", chainLock); err != nil {
			return fmt.Errorf("audit: chain lock: %w", err)
		}
	}
	// On SQLite transactions begin IMMEDIATE, so the write lock already
	// serialises appends.
	lastID, prev, err := head(ctx, tx)
	if err != nil {
		return err
	}
	for i := range rows {
		lastID++
		rows[i].ID = lastID
		rows[i].PrevHash = prev
		rows[i].Hash = rows[i].hash()
		prev = rows[i].Hash
	}
	if l.db.Dialect == storage.SQLite {
		return insertPrepared(ctx, tx, rows)
	}
	return insertArrays(ctx, tx, rows)
}

// head returns the id and hash of the last entry, or 0 and GenesisHash.
func head(ctx context.Context, q storage.Querier) (int64, string, error) {
	var id int64
	var hash string
	err := q.QueryRowContext(ctx, "SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, GenesisHash, nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("audit: read chain head: %w", err)
	}
	return id, hash, nil
}

const insertColumns = "INSERT INTO audit_log (id, at, user_id, username, action, object_type, object_id, outcome, detail, client_addr, user_agent, region_code, prev_hash, hash) "

// insertArrays writes rows with one INSERT reading a PostgreSQL array per
// column: 14 parameters however many rows, sent in binary. Multi-row VALUES
// (500 rows, 7,000 parameters a statement) spent a quarter of a results
// import's client CPU numbering, converting and encoding parameters: 200
// batches of 1,000 entries (BenchmarkRecordBatch) took 2.3-2.6 s user and
// 0.7-0.9 s system time that way, 1.2-1.4 s and 0.3-0.5 s from arrays, and
// 27-29 against 20-23 ms a batch. The explicit, consecutive ids mean a
// stale view of the chain head fails on the primary key instead of forking
// the chain.
func insertArrays(ctx context.Context, tx *sql.Tx, rows []row) error {
	n := len(rows)
	ids, ats, users := make([]int64, n), make([]int64, n), make([]*int64, n)
	var texts [11][]string
	for j := range texts {
		texts[j] = make([]string, n)
	}
	for i, r := range rows {
		ids[i], ats[i] = r.ID, r.At
		if r.UserID.Valid {
			users[i] = &r.UserID.Int64
		}
		for j, v := range [...]string{r.Username, r.Action, r.ObjectType, r.ObjectID, r.Outcome, r.Detail, r.ClientAddr, r.UserAgent,
			r.RegionCode, r.PrevHash, r.Hash} {
			texts[j][i] = v
		}
	}
	args := []any{ids, ats, users}
	for _, t := range texts {
		args = append(args, t)
	}
	_, err := tx.ExecContext(ctx, insertColumns+`SELECT * FROM unnest(CAST($1 AS BIGINT[]), CAST($2 AS BIGINT[]), CAST($3 AS BIGINT[]),
		CAST($4 AS TEXT[]), CAST($5 AS TEXT[]), CAST($6 AS TEXT[]), CAST($7 AS TEXT[]), CAST($8 AS TEXT[]), CAST($9 AS TEXT[]),
		CAST($10 AS TEXT[]), CAST($11 AS TEXT[]), CAST($12 AS TEXT[]), CAST($13 AS TEXT[]), CAST($14 AS TEXT[]))`, args...)
	if err != nil {
		return fmt.Errorf("audit: append %d entries: %w", n, err)
	}
	return nil
}

// insertPrepared writes rows with one prepared single-row INSERT. SQLite is
// in-process, so there is no round trip to save, and it binds numbered
// parameters ($n) in time quadratic in their count: a 7,000-parameter
// statement costs more than 500 executions of a small one.
func insertPrepared(ctx context.Context, tx *sql.Tx, rows []row) error {
	stmt, err := tx.PrepareContext(ctx, insertColumns+"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
	if err != nil {
		return fmt.Errorf("audit: prepare append: %w", err)
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r.ID, r.At, r.UserID, r.Username, r.Action, r.ObjectType, r.ObjectID, r.Outcome,
			r.Detail, r.ClientAddr, r.UserAgent, r.RegionCode, r.PrevHash, r.Hash); err != nil {
			return fmt.Errorf("audit: append entry %d: %w", r.ID, err)
		}
	}
	return nil
}

// actor is who an entry is recorded against.
type actor struct {
	userID   sql.NullInt64
	username string
	region   string
}

// actorOf returns the principal in ctx: "system" for scope.System(), and
// "anonymous" when nobody is signed in (a failed login).
func actorOf(ctx context.Context) actor {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return actor{username: "anonymous"}
	}
	if p.IsSystem() {
		return actor{username: "system"}
	}
	a := actor{username: p.Username, region: p.RegionCode}
	if p.UserID != 0 {
		a.userID = sql.NullInt64{Int64: p.UserID, Valid: true}
	}
	if a.username == "" {
		a.username = "user:" + strconv.FormatInt(p.UserID, 10)
	}
	return a
}

func newRow(e Entry, a actor, c client, at int64) (row, error) {
	if e.Outcome == "" {
		e.Outcome = OK
	}
	if !validOutcome(e.Outcome) {
		return row{}, fmt.Errorf("audit: unknown outcome %q", e.Outcome)
	}
	action := clean(e.Action, maxField)
	if action == "" {
		return row{}, errors.New("audit: entry without an action")
	}
	region := a.region
	if region == "" {
		region = e.RegionCode
	}
	return row{
		At:         at,
		UserID:     a.userID,
		Username:   clean(a.username, maxField),
		Action:     action,
		ObjectType: clean(e.ObjectType, maxField),
		ObjectID:   clean(e.ObjectID, maxField),
		Outcome:    e.Outcome,
		Detail:     clean(e.Detail, maxDetail),
		ClientAddr: clean(c.addr, maxField),
		UserAgent:  clean(c.userAgent, maxUserAgent),
		RegionCode: clean(region, maxField),
	}, nil
}

func validOutcome(s string) bool {
	for _, o := range Outcomes {
		if s == o {
			return true
		}
	}
	return false
}

// clean makes s storable and hashable identically on both databases:
// valid UTF-8 without NUL (PostgreSQL TEXT refuses both), at most max bytes.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// hash returns hex(SHA-256(prev_hash || canonical encoding of every other
// field)). Each field is written as its byte length, ':', the bytes and ';',
// so no two different rows encode alike; a NULL user id is written as "-".
func (r *row) hash() string {
	h := sha256.New()
	h.Write([]byte(r.PrevHash))
	var buf []byte
	field := func(s string) {
		buf = strconv.AppendInt(buf[:0], int64(len(s)), 10)
		buf = append(buf, ':')
		buf = append(buf, s...)
		buf = append(buf, ';')
		h.Write(buf)
	}
	field(strconv.FormatInt(r.ID, 10))
	field(strconv.FormatInt(r.At, 10))
	if r.UserID.Valid {
		field(strconv.FormatInt(r.UserID.Int64, 10))
	} else {
		field("-")
	}
	for _, s := range []string{r.Username, r.Action, r.ObjectType, r.ObjectID, r.Outcome, r.Detail, r.ClientAddr, r.UserAgent, r.RegionCode} {
		field(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// client is where a request came from.
type client struct {
	addr      string
	userAgent string
}

type clientKey struct{}

// WithClient returns ctx carrying the client's address and user agent, which
// entries recorded under it will name. The HTTP middleware sets it.
func WithClient(ctx context.Context, addr, userAgent string) context.Context {
	return context.WithValue(ctx, clientKey{}, client{addr: addr, userAgent: userAgent})
}

func clientOf(ctx context.Context) client {
	c, _ := ctx.Value(clientKey{}).(client)
	return c
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
