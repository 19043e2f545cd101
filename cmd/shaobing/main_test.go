package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/buildinfo"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

func TestUnknownCommandAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("code %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run(context.Background(), []string{"help"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "serve") {
		t.Fatalf("help: code %d, %q", code, errOut.String())
	}
}

func TestMigrateThenBackupSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbURL := "sqlite://" + filepath.Join(dir, "live.db")
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"migrate", "--db", dbURL}, &out, &errOut); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut.String())
	}
	copyPath := filepath.Join(dir, "copy.db")
	out.Reset()
	if code := run(ctx, []string{"backup", "--db", dbURL, "--out", copyPath}, &out, &errOut); code != 0 {
		t.Fatalf("backup: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "integrity ok") {
		t.Errorf("backup output %q", out.String())
	}
	copyDB := storagetest.OpenSQLite(t, copyPath)
	var n int
	if err := copyDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n == 0 {
		t.Fatalf("copy has %d migrations (%v)", n, err)
	}
	errOut.Reset()
	if code := run(ctx, []string{"backup", "--db", dbURL, "--out", copyPath}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already exists") {
		t.Errorf("backup over an existing file: %d %q", code, errOut.String())
	}
	out.Reset()
	if code := run(ctx, []string{"backup", "--db", "postgres://u@localhost/x"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "pg_dump") {
		t.Errorf("postgres backup advice: %d %q", code, out.String())
	}
}

func TestVersion(t *testing.T) {
	want := buildinfo.Read()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("version: %d %s", code, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != want.String() || !strings.Contains(got, "revision "+want.Revision) {
		t.Errorf("version printed %q, want %q", got, want.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"version", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("version --json: %d %s", code, errOut.String())
	}
	var got buildinfo.Info
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got != want {
		t.Errorf("version --json = %s (%v), want %+v", out.String(), err, want)
	}
	if code := run(context.Background(), []string{"version", "extra"}, &out, &errOut); code != 1 {
		t.Errorf("version with an argument: exit %d, want 1", code)
	}
}
