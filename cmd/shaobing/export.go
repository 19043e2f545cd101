package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

// cmdExport writes a list to a CSV or .xlsx file on behalf of a user: the
// same columns, masking and audit entry as the web export, within that
// user's scope. Kinds: people.
func cmdExport(ctx context.Context, args []string, stdout io.Writer) error {
	if ok, err := expectSub(args, "people", "usage: shaobing export people --as USERNAME --out FILE [--format csv|xlsx] [--region CODE] [--tag T] [--lang zh-CN|en] [--db URL]\n\n"+
		"Writes the people in the user's scope (narrowed by --region and --tag), masked as on the web, to a new file.\n"+
		"The export is recorded in the audit log under the user's name.", stdout); !ok {
		return err
	}
	fs := newFlagSet("export people", stdout)
	dbURL := dbFlag(fs)
	as := fs.String("as", "", "the user the export acts as: their scope limits it and the audit log names them")
	out := fs.String("out", "", "the file to write; it must not exist yet")
	format := fs.String("format", "", "csv or xlsx (default: from the --out file name)")
	region := fs.String("region", "", "only people living in this region (a code within the user's scope)")
	tag := fs.String("tag", "", "only people with this tag")
	lang := fs.String("lang", string(locale.ZhCN), "language of the header and labels: zh-CN or en")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" || *as == "" {
		return errors.New("--out and --as are required")
	}
	f := *format
	if f == "" {
		f = strings.TrimPrefix(filepath.Ext(*out), ".")
	}
	ft, err := tabular.ParseFormat(f)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	l, ok := locale.Parse(*lang)
	if !ok {
		return fmt.Errorf("--lang: unknown language %q (zh-CN or en)", *lang)
	}
	// Fail before touching the database: an existing file is never replaced.
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s already exists; choose a new file name", *out)
	}
	ctx, reg, db, err := peopleRegistryAs(ctx, *dbURL, *as, "export")
	if err != nil {
		return err
	}
	defer db.Close()
	cat := locale.NewCatalog()
	if err := cat.LoadAll(web.Messages, people.Messages); err != nil {
		return err
	}
	t := func(key string) string { return cat.T(l, key) }
	loc, err := settings.New(db, nil, time.Now).Location(ctx)
	if err != nil {
		return err
	}
	q := people.Query{RegionCode: strings.TrimSpace(*region), Tag: people.Tag(strings.TrimSpace(*tag))}

	// O_EXCL: a file that appeared since the check above is not replaced either.
	file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := writePeople(ctx, reg, q, ft, t, loc, file)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(*out) // a cut file must not pass for a whole export
		return err
	}
	fmt.Fprintf(stdout, "wrote %d people to %s\n", n, *out)
	return nil
}

// writePeople writes the export of q to w and returns the number of rows.
func writePeople(ctx context.Context, reg *people.Registry, q people.Query, f tabular.Format, t func(string) string, loc *time.Location, w io.Writer) (int, error) {
	cols, row := people.ExportTable(t)
	tw, err := tabular.NewWriter(w, f, t("people.title"), cols, loc)
	if err != nil {
		return 0, err
	}
	n := 0
	err = reg.Export(ctx, q, string(f), func(p people.Person) error {
		n++
		return tw.Write(row(p))
	})
	if cerr := tw.Close(); err == nil {
		err = cerr
	}
	return n, err
}
