package storage

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migrations is one module's ordered schema changes: files named
// NNNN_description.sql (both databases), NNNN_description.sqlite.sql or
// NNNN_description.postgres.sql (one database only) in FS's root.
type Migrations struct {
	Module string // unique key in schema_migrations, e.g. "people"
	FS     fs.FS
}

type migration struct {
	version int
	name    string
	body    string
}

// Migrate applies every pending migration of each set, in the order given
// (a set may reference tables of the sets before it). Each file runs in its
// own transaction. Several processes may call Migrate at once: on PostgreSQL
// an advisory lock serialises them; on SQLite the write lock does.
func (db *DB) Migrate(ctx context.Context, sets ...Migrations) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("storage: migrate: %w", err)
	}
	defer conn.Close()
	if db.Dialect == Postgres {
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727001)"); err != nil {
			return fmt.Errorf("storage: migrate lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(727001)")
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		module TEXT NOT NULL,
		version INTEGER NOT NULL,
		name TEXT NOT NULL,
		applied_at BIGINT NOT NULL,
		PRIMARY KEY (module, version))`); err != nil {
		return fmt.Errorf("storage: create schema_migrations: %w", err)
	}
	for _, set := range sets {
		ms, err := db.loadMigrations(set)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if err := db.apply(ctx, conn, set.Module, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// Pending compares the database's schema with the migrations of sets (the
// ones this binary embeds, for this database's dialect). missing names each
// migration of sets the database has not applied: this binary would use
// tables or columns that are not there. unknown names each applied migration
// none of sets holds: a newer binary migrated the database. Both are sorted
// "module/file" names, nil when there are none; a database never migrated
// lacks every migration.
func (db *DB) Pending(ctx context.Context, sets ...Migrations) (missing, unknown []string, err error) {
	applied, err := db.applied(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, set := range sets {
		ms, err := db.loadMigrations(set)
		if err != nil {
			return nil, nil, err
		}
		for _, m := range ms {
			key := appliedKey{set.Module, m.version}
			if _, ok := applied[key]; ok {
				delete(applied, key)
			} else {
				missing = append(missing, set.Module+"/"+m.name)
			}
		}
	}
	for key, name := range applied {
		unknown = append(unknown, key.module+"/"+name)
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	return missing, unknown, nil
}

// appliedKey identifies an applied migration, as schema_migrations does.
type appliedKey struct {
	module  string
	version int
}

// applied reads schema_migrations: each applied migration's file name. A
// database without the table has applied nothing.
func (db *DB) applied(ctx context.Context) (map[appliedKey]string, error) {
	exists := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	if db.Dialect == Postgres {
		exists = "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'"
	}
	var n int
	if err := db.QueryRowContext(ctx, exists).Scan(&n); err != nil {
		return nil, fmt.Errorf("storage: look for schema_migrations: %w", err)
	}
	out := map[appliedKey]string{}
	if n == 0 {
		return out, nil
	}
	rows, err := db.QueryContext(ctx, "SELECT module, version, name FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("storage: read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k appliedKey
		var name string
		if err := rows.Scan(&k.module, &k.version, &name); err != nil {
			return nil, fmt.Errorf("storage: read schema_migrations: %w", err)
		}
		out[k] = name
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("storage: read schema_migrations: %w", err)
	}
	return out, nil
}

func (db *DB) loadMigrations(set Migrations) ([]migration, error) {
	entries, err := fs.ReadDir(set.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("storage: read %s migrations: %w", set.Module, err)
	}
	seen := map[int]string{}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || path.Ext(name) != ".sql" {
			continue
		}
		base := strings.TrimSuffix(name, ".sql")
		switch {
		case strings.HasSuffix(base, ".sqlite"):
			if db.Dialect != SQLite {
				continue
			}
		case strings.HasSuffix(base, ".postgres"):
			if db.Dialect != Postgres {
				continue
			}
		}
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("storage: %s migration %q: name must start with a positive number and '_'", set.Module, name)
		}
		if prev, dup := seen[version]; dup {
			return nil, fmt.Errorf("storage: %s migrations %q and %q share version %d", set.Module, prev, name, version)
		}
		seen[version] = name
		body, err := fs.ReadFile(set.FS, name)
		if err != nil {
			return nil, fmt.Errorf("storage: read %s: %w", name, err)
		}
		ms = append(ms, migration{version: version, name: name, body: db.Dialect.expandMacros(string(body))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

func (db *DB) apply(ctx context.Context, conn *sql.Conn, module string, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage: begin migration %s/%s: %w", module, m.name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE module = $1 AND version = $2", module, m.version).Scan(&n); err != nil {
		return fmt.Errorf("storage: check migration %s/%s: %w", module, m.name, err)
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range splitStatements(m.body) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("storage: migration %s/%s: %w", module, m.name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (module, version, name, applied_at) VALUES ($1, $2, $3, $4)",
		module, m.version, m.name, Millis(time.Now())); err != nil {
		return fmt.Errorf("storage: record migration %s/%s: %w", module, m.name, err)
	}
	return tx.Commit()
}

// splitStatements splits a migration on lines holding only "-- split", so
// bodies with semicolons (triggers, functions) stay whole; without markers the
// file is split on ";" at line ends.
func splitStatements(body string) []string {
	var parts []string
	if strings.Contains(body, "\n-- split\n") {
		parts = strings.Split(body, "\n-- split\n")
	} else {
		parts = strings.Split(body, ";\n")
	}
	var out []string
	for _, p := range parts {
		p = strings.TrimSpace(p)
		p = strings.TrimSuffix(p, ";")
		if stripComments(p) != "" {
			out = append(out, p)
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "--") {
			b.WriteString(t)
		}
	}
	return b.String()
}
