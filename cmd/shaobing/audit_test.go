package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage/storagetest"
)

func TestAuditVerify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	db := storagetest.OpenSQLite(t, path)
	if err := db.Migrate(context.Background(), audit.Migrations); err != nil {
		t.Fatal(err)
	}
	l := audit.New(db, nil)
	ctx := scope.WithPrincipal(context.Background(), scope.System())
	for range 3 {
		if err := l.RecordOutside(ctx, audit.Entry{Action: "user.create"}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if err := cmdAudit(ctx, []string{"verify", "--db", "sqlite://" + path}, &out); err != nil || !strings.Contains(out.String(), "3 entries") {
		t.Fatalf("intact chain: %v\n%s", err, out.String())
	}
	for _, s := range []string{"DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE id = 2"} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := cmdAudit(ctx, []string{"verify", "--db", "sqlite://" + path}, &out); err == nil || !strings.Contains(out.String(), "BROKEN at entry #3") {
		t.Fatalf("broken chain: %v\n%s", err, out.String())
	}
	if err := cmdAudit(ctx, nil, &out); err == nil {
		t.Fatal("no sub-command accepted")
	}
}
