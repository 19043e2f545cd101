package storage_test

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

var bulkMigrations = storage.Migrations{Module: "bulk", FS: fstest.MapFS{
	"0001_bulk.sql": {Data: []byte(`
CREATE TABLE bulk_rows (
  id {{pk}},
  code TEXT NOT NULL UNIQUE,
  n BIGINT,
  small INTEGER NOT NULL,
  label TEXT,
  flag BOOLEAN
);
`)},
}}

var bulkColumns = storage.NewColumns("code TEXT", "n BIGINT", "small INTEGER", "label TEXT", "flag BOOLEAN")

type bulkRow struct {
	code  string
	n     sql.NullInt64
	small int
	label sql.NullString
	flag  sql.NullBool
}

func readBulk(t *testing.T, db *storage.DB) []bulkRow {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT code, n, small, label, flag FROM bulk_rows ORDER BY code")
	if err != nil {
		t.Fatal(err)
	}
	var out []bulkRow
	err = storage.EachRow(rows, func(rows *sql.Rows) error {
		var r bulkRow
		if err := rows.Scan(&r.code, &r.n, &r.small, &r.label, &r.flag); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestColumnsInsertWithAndInList runs the bulk statement shapes on the
// selected database: values of each type and NULLs arrive as given, an
// insert returns only the rows it inserted, a WITH list drives an UPDATE,
// and InList matches exactly its values.
func TestColumnsInsertWithAndInList(t *testing.T) {
	db := storagetest.Open(t, bulkMigrations)
	ctx := context.Background()
	rows := [][]any{
		{"a", int64(1), 10, "first", true},
		{"b", sql.NullInt64{}, int32(20), sql.NullString{}, sql.NullBool{}},
		{"c", sql.NullInt64{Int64: -3, Valid: true}, 30, sql.NullString{String: "third, with 'quotes'", Valid: true}, false},
		{"d", nil, 40, nil, nil},
	}
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		return bulkColumns.Insert(ctx, tx, db.Dialect, "bulk_rows", "", rows)
	})
	if err != nil {
		t.Fatalf("insert: %v", err)
	}
	want := []bulkRow{
		{"a", sql.NullInt64{Int64: 1, Valid: true}, 10, sql.NullString{String: "first", Valid: true}, sql.NullBool{Bool: true, Valid: true}},
		{"b", sql.NullInt64{}, 20, sql.NullString{}, sql.NullBool{}},
		{"c", sql.NullInt64{Int64: -3, Valid: true}, 30, sql.NullString{String: "third, with 'quotes'", Valid: true}, sql.NullBool{Valid: true}},
		{"d", sql.NullInt64{}, 40, sql.NullString{}, sql.NullBool{}},
	}
	if got := readBulk(t, db); !slices.Equal(got, want) {
		t.Fatalf("rows = %+v\nwant %+v", got, want)
	}

	// Conflicting rows are skipped and not returned.
	var returned []string
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		return bulkColumns.InsertReturning(ctx, tx, db.Dialect, "bulk_rows", "ON CONFLICT (code) DO NOTHING RETURNING code",
			[][]any{{"a", 9, 9, "x", true}, {"e", 5, 50, "fifth", true}, {"f", 6, 60, "sixth", false}}, func(r *sql.Rows) error {
				var c string
				returned = append(returned, c)
				return r.Scan(&returned[len(returned)-1])
			})
	})
	slices.Sort(returned)
	if err != nil || !slices.Equal(returned, []string{"e", "f"}) {
		t.Fatalf("returned %v (%v), want [e f]", returned, err)
	}

	// A WITH list joined in an UPDATE … FROM.
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		a := db.Dialect.BulkArgs()
		with, err := storage.NewColumns("code TEXT", "small INTEGER").With(&a, db.Dialect, "v", [][]any{{"a", 11}, {"e", 55}})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, with+" UPDATE bulk_rows SET small = v.small FROM v WHERE bulk_rows.code = v.code", a.Values()...)
		return err
	})
	if err != nil {
		t.Fatalf("update from a WITH list: %v", err)
	}
	smalls := map[string]int{}
	for _, r := range readBulk(t, db) {
		smalls[r.code] = r.small
	}
	if smalls["a"] != 11 || smalls["e"] != 55 || smalls["b"] != 20 || len(smalls) != 6 {
		t.Errorf("after the update: %v", smalls)
	}

	// InList, with text and numbers, and no values at all.
	count := func(cond func(a *storage.Args) string) int {
		a := db.Dialect.BulkArgs()
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM bulk_rows WHERE "+cond(&a), a.Values()...).Scan(&n); err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}
	if n := count(func(a *storage.Args) string {
		return storage.InList(db.Dialect, a, "code", []string{"a", "c", "zz", "a' OR '1'='1"})
	}); n != 2 {
		t.Errorf("InList(code) matched %d rows, want 2", n)
	}
	if n := count(func(a *storage.Args) string { return storage.InList(db.Dialect, a, "n", []int64{1, -3, 6, 100}) }); n != 3 {
		t.Errorf("InList(n) matched %d rows, want 3", n)
	}
	if n := count(func(a *storage.Args) string { return storage.InList(db.Dialect, a, "code", []string{}) }); n != 0 {
		t.Errorf("an empty InList matched %d rows", n)
	}
}

// TestColumnsRefuseMalformedRows: a row of the wrong length, or (on
// PostgreSQL, where rows become typed arrays) a value of another type, is
// an error naming the columns, and nothing is written.
func TestColumnsRefuseMalformedRows(t *testing.T) {
	db := storagetest.Open(t, bulkMigrations)
	ctx := context.Background()
	bad := [][][]any{{{"a", 1, 1, "x", true}, {"b", 2, 2}}}
	if db.Dialect == storage.Postgres {
		bad = append(bad, [][]any{{"a", "not a number", 1, "x", true}})
	}
	for _, rows := range bad {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			return bulkColumns.Insert(ctx, tx, db.Dialect, "bulk_rows", "", rows)
		})
		if err == nil || !strings.Contains(err.Error(), "storage: ") || !strings.Contains(err.Error(), "code, n, small, label, flag") &&
			!strings.Contains(err.Error(), "column n (BIGINT)") {
			t.Errorf("rows %v: err = %v, want the column check's", rows, err)
		}
	}
	if got := readBulk(t, db); len(got) != 0 {
		t.Errorf("rows written: %+v", got)
	}
	a := db.Dialect.BulkArgs()
	if with, err := bulkColumns.With(&a, db.Dialect, "v", nil); err == nil {
		t.Errorf("With of no rows = %q, want an error (SQL has no empty VALUES list)", with)
	}
}

// TestColumnsPrepend: prepended columns come first, with their types, and an
// insert through them fills every column.
func TestColumnsPrepend(t *testing.T) {
	c := storage.NewColumns("n BIGINT", "small INTEGER", "label TEXT", "flag BOOLEAN").Prepend("code TEXT")
	if got, want := c.Names(), bulkColumns.Names(); got != want {
		t.Fatalf("Names() = %q; want %q", got, want)
	}
	db := storagetest.Open(t, bulkMigrations)
	ctx := context.Background()
	err := db.InTx(ctx, func(tx *sql.Tx) error {
		return c.Insert(ctx, tx, db.Dialect, "bulk_rows", "", [][]any{{"p", int64(7), 3, "x", true}})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := bulkRow{code: "p", n: sql.NullInt64{Int64: 7, Valid: true}, small: 3, label: sql.NullString{String: "x", Valid: true}, flag: sql.NullBool{Bool: true, Valid: true}}
	if got := readBulk(t, db); len(got) != 1 || got[0] != want {
		t.Errorf("rows %+v; want [%+v]", got, want)
	}
}
