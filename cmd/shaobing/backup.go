package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	var check string
	copyDB, err := storage.Open(ctx, "sqlite://"+abs)
	if err != nil {
		return fmt.Errorf("open the copy: %w", err)
	}
	defer copyDB.Close()
	if err := copyDB.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		return fmt.Errorf("the copy failed its integrity check: %v %s", err, check)
	}
	fmt.Fprintf(stdout, "backed up %s to %s (integrity ok)\n", db.Location, abs)
	return nil
}
