package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/shaobing/shaobing/internal/storage"
)

// cmdBackup writes a consistent online copy of a SQLite database with
// VACUUM INTO, which reads one snapshot while the server keeps writing.
func cmdBackup(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("backup", stdout)
	dbURL := dbFlag(fs)
	out := fs.String("out", "", "file to write the copy to (must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if storage.SQLitePath(*dbURL) == "" {
		io.WriteString(stdout, `PostgreSQL databases are backed up with PostgreSQL's own tools, which take a consistent
snapshot while the server runs, for example:

    pg_dump --format=custom --file=shaobing-$(date +%F).dump "$SHAOBING_DB"

and restored with pg_restore. For point-in-time recovery, configure WAL archiving
(archive_mode, archive_command) and take base backups with pg_basebackup.
`)
		return nil
	}
	if *out == "" {
		return errors.New("--out FILE is required")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("%s already exists; choose a new file", *out)
	}
	db, err := storage.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	abs, err := filepath.Abs(*out)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "VACUUM INTO $1", abs); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := checkCopy(ctx, abs); err != nil {
		// A copy that fails its check must not be mistaken for a backup.
		if rmErr := os.Remove(abs); rmErr != nil {
			return fmt.Errorf("%w (and removing the bad copy: %v)", err, rmErr)
		}
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s (integrity ok)\n", db.Location, abs)
	return nil
}

// checkCopy runs SQLite's integrity check on the copy at path. It closes
// the copy before returning, so a bad one can be removed.
func checkCopy(ctx context.Context, path string) error {
	copyDB, err := storage.Open(ctx, "sqlite://"+path)
	if err != nil {
		return fmt.Errorf("open the copy: %w", err)
	}
	defer copyDB.Close()
	// The check answers one row "ok", or a row per problem (at most 5 here).
	rows, err := copyDB.QueryContext(ctx, "PRAGMA integrity_check(5)")
	if err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	defer rows.Close()
	var result []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check the copy: %w", err)
		}
		result = append(result, line)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check the copy: %w", err)
	}
	if len(result) != 1 || result[0] != "ok" {
		return fmt.Errorf("integrity check failed: %s", strings.Join(result, "; "))
	}
	return nil
}
