package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shaobing/shaobing/internal/server"
	"github.com/shaobing/shaobing/internal/storage"
)

func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("migrate", stdout)
	dbURL := dbFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := openMigrated(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(stdout, "migrated %s\n", db.Location)
	return nil
}

// openMigrated opens the database and applies every pending migration.
func openMigrated(ctx context.Context, dbURL string) (*storage.DB, error) {
	db, err := storage.Open(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, server.Migrations()...); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
