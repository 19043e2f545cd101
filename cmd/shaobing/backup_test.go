package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/storage"
)

func TestCheckCopy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "copy.db")
	db, err := storage.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
		"CREATE INDEX notes_body ON notes (body)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO notes (body) SELECT printf('note %08d', i) FROM n",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if err := checkCopy(ctx, path); err != nil {
		t.Fatalf("checkCopy of a sound copy: %v", err)
	}
	// Overwrite a page in the middle of the file: the check must fail, and
	// say why rather than print a nil error.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff", 4096)), st.Size()/2/4096*4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	err = checkCopy(ctx, path)
	if err == nil {
		t.Fatal("checkCopy of a corrupt copy succeeded")
	}
	t.Logf("corrupt copy: %v", err)
	if strings.Contains(err.Error(), "<nil>") {
		t.Errorf("checkCopy error %q shows a nil error", err)
	}
}
