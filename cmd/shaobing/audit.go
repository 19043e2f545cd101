package main

import (
	"context"
	"fmt"
	"io"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/storage"
)

// cmdAudit runs the audit sub-commands: "verify" walks the audit log's hash
// chain and fails when it is broken, so a cron job or monitor can alert.
func cmdAudit(ctx context.Context, args []string, stdout io.Writer) error {
	if ok, err := expectSub(args, "verify", "usage: shaobing audit verify [--db URL]", stdout); !ok {
		return err
	}
	fs := newFlagSet("audit verify", stdout)
	dbURL := dbFlag(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	// No migration: verifying must not change the database it inspects.
	db, err := storage.Open(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := audit.New(db, nil).Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "audit log %s: %d entries\nchain head: #%d %s\n", db.Location, rep.Entries, rep.LastID, rep.LastHash)
	if !rep.OK() {
		fmt.Fprintf(stdout, "BROKEN at entry #%d: %s\n", rep.FirstBad, rep.Reason)
		return fmt.Errorf("audit chain broken at entry %d: %s", rep.FirstBad, rep.Reason)
	}
	fmt.Fprintln(stdout, "chain intact")
	return nil
}
