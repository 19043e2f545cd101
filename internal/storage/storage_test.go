package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

var testMigrations = storage.Migrations{Module: "widgets", FS: fstest.MapFS{
	"0001_widgets.sql": {Data: []byte(`
CREATE TABLE widgets (
  id {{pk}},
  code TEXT NOT NULL UNIQUE,
  region_code TEXT NOT NULL,
  made_at BIGINT NOT NULL,
  payload {{blob}}
);
CREATE INDEX widgets_region ON widgets (region_code);
`)},
	"0002_flag.sql":             {Data: []byte(`ALTER TABLE widgets ADD COLUMN active BOOLEAN NOT NULL DEFAULT TRUE;`)},
	"0003_only_pg.postgres.sql": {Data: []byte(`CREATE TABLE pg_only (x INT);`)},
	"0003_only_lite.sqlite.sql": {Data: []byte(`CREATE TABLE lite_only (x INT);`)},
	"README.md":                 {Data: []byte("not a migration")},
}}

func TestMigrateIsIdempotentAndDialectAware(t *testing.T) {
	db := storagetest.Open(t, testMigrations)
	ctx := context.Background()
	if err := db.Migrate(ctx, testMigrations); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE module = 'widgets'").Scan(&n); err != nil || n != 3 {
		t.Fatalf("applied = %d, %v; want 3", n, err)
	}
	own, other := "lite_only", "pg_only"
	if db.Dialect == storage.Postgres {
		own, other = other, own
	}
	if _, err := db.ExecContext(ctx, "SELECT * FROM "+own); err != nil {
		t.Errorf("%s should exist: %v", own, err)
	}
	if _, err := db.ExecContext(ctx, "SELECT * FROM "+other); err == nil {
		t.Errorf("%s should not exist on %s", other, db.Dialect)
	}
}

func TestSharedSQLOnBothDialects(t *testing.T) {
	db := storagetest.Open(t, testMigrations)
	ctx := context.Background()
	made := time.Date(2026, 11, 23, 8, 30, 0, 123e6, time.UTC)
	var id int64
	err := db.QueryRowContext(ctx, `INSERT INTO widgets (code, region_code, made_at, payload) VALUES ($1, $2, $3, $4)
		ON CONFLICT (code) DO UPDATE SET region_code = excluded.region_code RETURNING id`,
		"w1", "330305001", storage.Millis(made), []byte{1, 2}).Scan(&id)
	if err != nil || id <= 0 {
		t.Fatalf("insert: id=%d err=%v", id, err)
	}
	var again int64
	if err := db.QueryRowContext(ctx, `INSERT INTO widgets (code, region_code, made_at) VALUES ($1, $2, $3)
		ON CONFLICT (code) DO UPDATE SET region_code = excluded.region_code RETURNING id`,
		"w1", "330305002", storage.Millis(made)).Scan(&again); err != nil || again != id {
		t.Fatalf("upsert returned %d (%v), want %d", again, err, id)
	}
	var ms int64
	var active bool
	var payload []byte
	if err := db.QueryRowContext(ctx, "SELECT made_at, active, payload FROM widgets WHERE id = $1", id).Scan(&ms, &active, &payload); err != nil {
		t.Fatal(err)
	}
	if got := storage.FromMillis(ms); !got.Equal(made) || !active || len(payload) != 2 {
		t.Errorf("round trip: %v %v %v", got, active, payload)
	}
	_, err = db.ExecContext(ctx, "INSERT INTO widgets (code, region_code, made_at) VALUES ('w1', 'x', 0)")
	if !storage.IsUniqueViolation(err) {
		t.Errorf("IsUniqueViolation(%v) = false", err)
	}
}

func TestInTxRollsBackOnError(t *testing.T) {
	db := storagetest.Open(t, testMigrations)
	ctx := context.Background()
	boom := errors.New("boom")
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO widgets (code, region_code, made_at) VALUES ('r', 'x', 0)"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var n int
	_ = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM widgets").Scan(&n)
	if n != 0 {
		t.Errorf("rolled-back insert is visible: %d rows", n)
	}
}

func TestSQLitePath(t *testing.T) {
	for in, want := range map[string]string{
		"sqlite://./data/x.db":    "./data/x.db",
		"sqlite:/tmp/x.db":        "/tmp/x.db",
		"file:x.db?mode=rwc":      "x.db",
		"x.db":                    "x.db",
		"postgres://u@h/db":       "",
		"postgresql://u@h/db?a=b": "",
	} {
		if got := storage.SQLitePath(in); got != want {
			t.Errorf("SQLitePath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPendingComparesSchemaWithBinary: Pending names the migrations a binary
// embeds that the database lacks, and those the database has that the
// binary does not know (a newer binary migrated it).
func TestPendingComparesSchemaWithBinary(t *testing.T) {
	ctx := context.Background()
	own := "widgets/0003_only_lite.sqlite.sql"
	if os.Getenv("SHAOBING_TEST_DB") == "postgres" {
		own = "widgets/0003_only_pg.postgres.sql"
	}
	// newer is the next release: one more widgets migration and a new module.
	newerWidgets := storage.Migrations{Module: "widgets", FS: fstest.MapFS{}}
	for name, f := range testMigrations.FS.(fstest.MapFS) {
		newerWidgets.FS.(fstest.MapFS)[name] = f
	}
	newerWidgets.FS.(fstest.MapFS)["0004_colour.sql"] = &fstest.MapFile{Data: []byte(`ALTER TABLE widgets ADD COLUMN colour TEXT;`)}
	gadgets := storage.Migrations{Module: "gadgets", FS: fstest.MapFS{"0001_gadgets.sql": {Data: []byte(`CREATE TABLE gadgets (id {{pk}});`)}}}

	db, err := storage.Open(ctx, storagetest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	steps := []struct {
		name                 string
		migrate              []storage.Migrations // applied before the check
		binary               []storage.Migrations
		wantMissing, wantNew []string
	}{
		{"never migrated", nil, []storage.Migrations{testMigrations},
			[]string{"widgets/0001_widgets.sql", "widgets/0002_flag.sql", own}, nil},
		{"current", []storage.Migrations{testMigrations}, []storage.Migrations{testMigrations}, nil, nil},
		{"binary is newer", nil, []storage.Migrations{newerWidgets, gadgets},
			[]string{"gadgets/0001_gadgets.sql", "widgets/0004_colour.sql"}, nil},
		{"database is newer", []storage.Migrations{newerWidgets, gadgets}, []storage.Migrations{testMigrations},
			nil, []string{"gadgets/0001_gadgets.sql", "widgets/0004_colour.sql"}},
		{"binary lacks a whole module it would need", nil, []storage.Migrations{testMigrations, {Module: "gizmos", FS: fstest.MapFS{
			"0001_gizmos.sql": {Data: []byte(`CREATE TABLE gizmos (id {{pk}});`)}}}},
			[]string{"gizmos/0001_gizmos.sql"}, []string{"gadgets/0001_gadgets.sql", "widgets/0004_colour.sql"}},
	}
	for _, st := range steps {
		if len(st.migrate) > 0 {
			if err := db.Migrate(ctx, st.migrate...); err != nil {
				t.Fatalf("%s: migrate: %v", st.name, err)
			}
		}
		missing, unknown, err := db.Pending(ctx, st.binary...)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if !slices.Equal(missing, st.wantMissing) || !slices.Equal(unknown, st.wantNew) {
			t.Errorf("%s: missing %q, unknown %q; want %q, %q", st.name, missing, unknown, st.wantMissing, st.wantNew)
		}
	}
}

// TestOpenRefusesWeakenedPostgres: a PostgreSQL connection whose commits are
// not flushed (here set in the URL) is refused, as a SQLite file without
// synchronous=FULL would be.
func TestOpenRefusesWeakenedPostgres(t *testing.T) {
	if os.Getenv("SHAOBING_TEST_DB") != "postgres" {
		t.Skip("PostgreSQL-only; the postgres pass of scripts/test runs it")
	}
	u := storagetest.URL(t)
	db, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("durable settings refused: %v", err)
	}
	db.Close()
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	if db, err := storage.Open(context.Background(), u+sep+"synchronous_commit=off"); err == nil || !strings.Contains(err.Error(), "synchronous_commit=off") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("synchronous_commit=off: err = %v, want a refusal", err)
	}
}

// TestPostgresParallelQueryOffByDefault: the server's connections plan
// without parallel workers unless the URL sets the parameter.
func TestPostgresParallelQueryOffByDefault(t *testing.T) {
	if os.Getenv("SHAOBING_TEST_DB") != "postgres" {
		t.Skip("PostgreSQL-only; the postgres pass of scripts/test runs it")
	}
	u := storagetest.URL(t)
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	for _, c := range []struct{ url, want string }{
		{u, "0"},
		{u + sep + "max_parallel_workers_per_gather=2", "2"},
	} {
		db, err := storage.Open(context.Background(), c.url)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		var got string
		err = db.QueryRowContext(context.Background(), "SELECT current_setting('max_parallel_workers_per_gather')").Scan(&got)
		db.Close()
		if err != nil || got != c.want {
			t.Errorf("max_parallel_workers_per_gather = %q (%v), want %q", got, err, c.want)
		}
	}
}

// TestBulkArgs checks the placeholders handed out per dialect, and that a
// many-parameter statement with anonymous placeholders binds them in order.
func TestBulkArgs(t *testing.T) {
	pg := storage.Postgres.BulkArgs()
	if got := pg.Add(1) + pg.Add(2); got != "$1$2" {
		t.Errorf("postgres placeholders %q", got)
	}
	lite := storage.SQLite.BulkArgs()
	if got := lite.Add(1) + lite.Add(2); got != "??" {
		t.Errorf("sqlite placeholders %q", got)
	}
	db := storagetest.Open(t)
	a := db.Dialect.BulkArgs()
	var marks []string
	for i := range 3000 {
		marks = append(marks, "(CAST("+a.Add(i)+" AS BIGINT))")
	}
	var sum, n int64
	err := db.QueryRow("WITH v (x) AS (VALUES "+strings.Join(marks, ", ")+") SELECT SUM(x), COUNT(*) FROM v", a.Values()...).Scan(&sum, &n)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3000 || sum != 3000*2999/2 {
		t.Errorf("sum %d of %d values", sum, n)
	}
}
