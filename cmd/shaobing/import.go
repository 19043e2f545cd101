package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
	"github.com/shaobing/shaobing/internal/tabular"
)

// cmdImport bulk-loads a CSV or .xlsx file on behalf of a user, with that
// user's scope, writing the row-by-row report as JSON. Kinds: people.
func cmdImport(ctx context.Context, args []string, stdout io.Writer) error {
	if ok, err := expectSub(args, "people", "usage: shaobing import people --file F --as USERNAME [--format csv|xlsx] [--db URL]\n\n"+
		"The file's header row: id_type,id_number,name,phone,region_code,no_phone,address,tags.\n"+
		"Good rows are kept, bad rows are reported with their row numbers; the report is printed as JSON.", stdout); !ok {
		return err
	}
	fs := newFlagSet("import people", stdout)
	dbURL := dbFlag(fs)
	file := fs.String("file", "", "the CSV or .xlsx file to import")
	as := fs.String("as", "", "the user the import acts as: their scope limits it and the audit log names them")
	format := fs.String("format", "", "csv or xlsx (default: from the file name)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *file == "" || *as == "" {
		return errors.New("--file and --as are required")
	}
	f := *format
	if f == "" {
		f = strings.TrimPrefix(filepath.Ext(*file), ".")
	}
	ft, err := tabular.ParseFormat(f)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	src, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer src.Close()
	ctx, reg, db, err := peopleRegistryAs(ctx, *dbURL, *as, "import")
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := reg.Import(ctx, src, ft)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}

// peopleRegistryAs opens the database and the people registry for work done
// on a named user's behalf: the returned context carries that user's
// principal, so their scope limits the work and the audit log names them.
// verb ("import", "export") appears in the refusal for a user without a
// people role.
func peopleRegistryAs(ctx context.Context, dbURL, username, verb string) (context.Context, *people.Registry, *storage.DB, error) {
	svc, tree, db, err := openAuth(ctx, dbURL)
	if err != nil {
		return ctx, nil, nil, err
	}
	p, err := svc.PrincipalFor(ctx, username)
	if err == nil {
		err = p.Require(people.Roles...)
		if err != nil {
			err = fmt.Errorf("%s may not %s people: %w", username, verb, err)
		}
	}
	if err != nil {
		db.Close()
		return ctx, nil, nil, err
	}
	return scope.WithPrincipal(ctx, p), people.NewRegistry(db, tree, audit.New(db, time.Now), time.Now), db, nil
}
