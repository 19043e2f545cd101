// Package storagetest gives each test its own fresh, migrated database.
// SHAOBING_TEST_DB selects the database: "sqlite" (default) or "postgres",
// which needs SHAOBING_TEST_POSTGRES, the URL of a server where tests may
// create databases. scripts/test runs the whole suite once with each.
package storagetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/storage"
)

// Open returns a fresh database with the given migrations applied, closed
// (and on PostgreSQL dropped) when the test ends.
func Open(t testing.TB, sets ...storage.Migrations) *storage.DB {
	t.Helper()
	var db *storage.DB
	if os.Getenv("SHAOBING_TEST_DB") == "postgres" {
		db = openPostgres(t, PostgresURL(t))
	} else {
		db = OpenSQLite(t, filepath.Join(t.TempDir(), "test.db"))
	}
	if err := db.Migrate(context.Background(), sets...); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// URL returns a URL for a fresh, empty database of the selected kind, for
// tests that start their own processes or several handles on one database.
func URL(t testing.TB) string {
	t.Helper()
	if os.Getenv("SHAOBING_TEST_DB") == "postgres" {
		return createPostgresDB(t, PostgresURL(t))
	}
	return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
}

// OpenSQLite opens a SQLite database at path.
func OpenSQLite(t testing.TB, path string) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), "sqlite://"+path)
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// PostgresURL returns the test server URL, skipping the test when there is
// none — or failing it when SHAOBING_TEST_STRICT is set, so CI cannot pass
// by skipping.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SHAOBING_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("SHAOBING_TEST_STRICT") != "" {
			t.Fatal("SHAOBING_TEST_POSTGRES is not set (scripts/test sets it)")
		}
		t.Skip("no PostgreSQL: set SHAOBING_TEST_POSTGRES or run scripts/test")
	}
	return u
}

func openPostgres(t testing.TB, server string) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), createPostgresDB(t, server))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// createPostgresDB creates a uniquely named database on the server and
// registers its removal; it returns the new database's URL.
func createPostgresDB(t testing.TB, server string) string {
	t.Helper()
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatalf("connect postgres: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "shaobing_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", server)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(server)
	if err != nil {
		t.Fatalf("parse SHAOBING_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
