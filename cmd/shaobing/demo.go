package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/shaobing/shaobing/internal/demo"
	"github.com/shaobing/shaobing/internal/regions"
)

// cmdDemo loads a demo district: institutions, synthetic residents and one
// user per role. Re-running it on a database that has the demo data reports
// so and changes nothing.
func cmdDemo(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("demo", stdout)
	dbURL := dbFlag(fs)
	region := fs.String("region", demo.DefaultRegion, "district or city code to build (default 330305 温州市洞头区; seed regions with villages: 330305, 230506, 371302, 1306)")
	peopleN := fs.Int("people", demo.DefaultPeople, "number of synthetic residents (洞头区 really has about 150000)")
	seed := fs.Uint64("seed", 1, "random seed: the same seed gives the same data")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	start := time.Now()
	db, err := openMigrated(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	tree, err := regions.LoadTree()
	if err != nil {
		return err
	}
	res, err := demo.Load(ctx, db, tree, demo.Options{Region: *region, People: *peopleN, Seed: *seed})
	if err != nil {
		return err
	}
	if res.AlreadyLoaded {
		fmt.Fprintf(stdout, "%s already holds demo data for %s %s; nothing changed.\n", db.Location, res.Region.Code, res.Region.Name)
		return nil
	}
	fmt.Fprintf(stdout, "loaded demo data for %s (%s) into %s in %s\n", tree.Path(res.Region.Code), res.Region.Code, db.Location, time.Since(start).Round(10*time.Millisecond))
	fmt.Fprintf(stdout, "  residents:    %d\n", res.People)
	for _, t := range regions.InstitutionTypes() {
		if n := res.Institutions[t]; n > 0 {
			fmt.Fprintf(stdout, "  %-24s %d\n", string(t)+":", n)
		}
	}
	sc := res.Screening
	fmt.Fprintf(stdout, "  screening round %d: %d sampling points, %d specimens in %d tubes, %d tubes resulted, %d positive\n",
		sc.CampaignID, sc.Points, sc.Specimens, sc.Tubes, sc.Resulted, sc.Positives)
	fmt.Fprintf(stdout, "\nsign in with any of these users, password %s:\n", demo.Password)
	for _, l := range res.Logins {
		where := l.Scope
		if l.Institution != "" {
			where = l.Institution
		}
		fmt.Fprintf(stdout, "  %-10s %-18s %s\n", l.Username, l.Role, where)
	}
	fmt.Fprintf(stdout, "\nstart the server with: shaobing serve --db %s   then open http://127.0.0.1:8080/\n", *dbURL)
	return nil
}
