package regions

import (
	"embed"
	"io/fs"

	"github.com/shaobing/shaobing/internal/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the institutions table.
var Migrations = storage.Migrations{Module: "regions", FS: mustSub(migrationFiles, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
