package people

import (
	"embed"
	"io/fs"

	"github.com/shaobing/shaobing/internal/storage"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations creates the persons table; it references institutions, so it
// runs after regions.Migrations.
var Migrations = storage.Migrations{Module: "people", FS: mustSub(migrationFiles, "migrations")}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
