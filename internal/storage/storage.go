// Package storage opens shaobing's database — SQLite (embedded default) or
// PostgreSQL (production) — and applies the versioned migrations that each
// module embeds. One SQL text serves both databases wherever it can; the few
// differences live in dialect.go.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
)

// DB is an open database with its dialect. It is safe for concurrent use.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Location is the database's address with any password removed, for logs.
	Location string
	ckpt     *checkpointer // SQLite's background checkpoints
}

// Querier is what both *sql.DB and *sql.Tx offer; store functions take it so
// they can run inside a caller's transaction or on their own.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Scanner is a row to read: *sql.Row or *sql.Rows. An alias, so a scan
// function written for either takes it as is.
type Scanner = interface{ Scan(dest ...any) error }

// Query runs query on q and reads every row with scan: the loop every list
// would otherwise repeat. The caller adds its own context to an error.
func Query[T any](ctx context.Context, q Querier, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Open opens the database named by rawURL:
//   - postgres://… or postgresql://… — PostgreSQL through pgx;
//   - sqlite://PATH, sqlite:PATH, file:PATH or a bare file path — SQLite in WAL
//     mode with synchronous=FULL and foreign keys on. The directory is created.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	if rawURL == "" {
		return nil, errors.New("storage: empty database URL")
	}
	var db *DB
	var err error
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		db, err = openPostgres(rawURL)
	} else {
		db, err = openSQLite(rawURL)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: connect to %s: %w", db.Location, err)
	}
	if db.Dialect == Postgres {
		// A write is acknowledged only once durable: refuse a server, role,
		// database or URL (options=-c …) that turned flushing off.
		var fsync, syncCommit string
		if err := db.QueryRowContext(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: read durability settings: %w", err)
		}
		if fsync != "on" || (syncCommit != "on" && syncCommit != "remote_write" && syncCommit != "remote_apply") {
			db.Close()
			return nil, fmt.Errorf("storage: postgres durability is weakened (fsync=%s synchronous_commit=%s); shaobing needs fsync=on and synchronous_commit=on", fsync, syncCommit)
		}
	}
	if db.Dialect == SQLite {
		// Confirm the durability settings took effect; a silently weaker
		// setting would break the promise that acknowledged writes are kept.
		var mode string
		var syncLevel int
		if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: read journal_mode: %w", err)
		}
		if err := db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncLevel); err != nil {
			db.Close()
			return nil, fmt.Errorf("storage: read synchronous: %w", err)
		}
		if mode != "wal" || syncLevel != 2 {
			db.Close()
			return nil, fmt.Errorf("storage: sqlite durability settings not applied (journal_mode=%s synchronous=%d)", mode, syncLevel)
		}
	}
	return db, nil
}

// SQLitePath returns the file path named by a SQLite URL, or "" if rawURL is
// not a SQLite URL.
func SQLitePath(rawURL string) string {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return ""
	}
	p := rawURL
	for _, prefix := range []string{"sqlite://", "sqlite:", "file:"} {
		if strings.HasPrefix(p, prefix) {
			p = strings.TrimPrefix(p, prefix)
			break
		}
	}
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	return p
}

func openSQLite(rawURL string) (*DB, error) {
	path := SQLitePath(rawURL)
	if path == "" {
		return nil, fmt.Errorf("storage: no file path in %q", rawURL)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("storage: create directory for %s: %w", path, err)
		}
	}
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"foreign_keys(1)",
		"busy_timeout(10000)",
		// Statement and savepoint journals in memory, not temporary files:
		// a registration batch runs under a savepoint. They hold nothing
		// that must survive a crash (the WAL does).
		"temp_store(MEMORY)",
		// 64 MiB of page cache per connection (the default is 2 MiB), so a
		// batch's index pages are not evicted and read back mid-batch.
		"cache_size(-65536)",
		// Checkpoints run in the background (checkpoint.go); this is the
		// backstop should they fall behind.
		fmt.Sprintf("wal_autocheckpoint(%d)", backstopWALPages),
	} {
		q.Add("_pragma", p)
	}
	// Writers take the write lock at BEGIN, so two writers never deadlock
	// upgrading a read lock; readers outside transactions are unaffected.
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: open sqlite %s: %w", path, err)
	}
	// Writers of this process queue in order (writelock.go).
	sqlDB := sql.OpenDB(&sqliteConnector{Connector: base, lock: newWriteLock()})
	sqlDB.SetMaxOpenConns(8)
	sqlDB.SetMaxIdleConns(8)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{DB: sqlDB, Dialect: SQLite, Location: "sqlite:" + path}
	db.startCheckpointer()
	return db, nil
}

func openPostgres(rawURL string) (*DB, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage: parse postgres URL: %w", err)
	}
	// Parallel query is off unless the URL asks for it: shaobing's
	// statements are keyed lookups and small batches, which the planner
	// sometimes costs just above parallel_setup_cost. Starting the workers
	// then takes 100-250 ms on a busy small machine for 0.3 ms of work
	// (the registration load test: 2,295/s with it, 4,988/s without).
	// A deployment whose reports want it sets the parameter in the URL
	// (…?max_parallel_workers_per_gather=2); pgx sends unknown URL
	// parameters as session settings.
	q := u.Query()
	if !q.Has("max_parallel_workers_per_gather") {
		q.Set("max_parallel_workers_per_gather", "0")
		u.RawQuery = q.Encode()
	}
	sqlDB, err := sql.Open("pgx", u.String())
	if err != nil {
		return nil, fmt.Errorf("storage: open postgres: %w", err)
	}
	sqlDB.SetMaxOpenConns(32)
	sqlDB.SetMaxIdleConns(32)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return &DB{DB: sqlDB, Dialect: Postgres, Location: u.Redacted()}, nil
}

// InTx runs fn in a transaction, committing if fn returns nil and rolling back
// otherwise. The commit is durable when InTx returns nil.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: begin: %w", err)
	}
	return finishTx(tx, fn)
}

// finishTx runs fn in tx and commits it, or rolls it back when fn returns
// an error or panics (the panic goes on).
func finishTx(tx *sql.Tx, fn func(tx *sql.Tx) error) error {
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storage: commit: %w", err)
	}
	return nil
}

// Millis converts a time to the stored form: milliseconds since the Unix epoch, UTC.
// Every timestamp column is a BIGINT of this form, so comparisons and ordering
// are the same on both databases.
func Millis(t time.Time) int64 { return t.UnixMilli() }

// FromMillis converts a stored timestamp back to a UTC time.
func FromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// NullMillis converts an optional time; the zero time is NULL.
func NullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// FromNullMillis converts an optional stored timestamp; NULL is the zero time.
func FromNullMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return FromMillis(v.Int64)
}
