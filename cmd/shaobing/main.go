// Command shaobing is the public-health operations platform: one binary with
// sub-commands to serve, migrate, load demo data, import and export people,
// manage users and tokens, verify the audit log and back up the database.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	_ "time/tzdata" // the bureau time zone must resolve on machines without tzdata
)

// command is one sub-command: it parses its own flags from args.
type command struct {
	run     func(ctx context.Context, args []string, stdout io.Writer) error
	summary string
}

func commands() map[string]command {
	return map[string]command{
		"serve":    {cmdServe, "run the web server and API (migrates first)"},
		"migrate":  {cmdMigrate, "apply pending database migrations"},
		"import":   {cmdImport, "bulk-load people from CSV or .xlsx as a user, with a row-by-row report"},
		"export":   {cmdExport, "write people to a CSV or .xlsx file as a user: their scope, masked, audited"},
		"backup":   {cmdBackup, "write a consistent copy of a SQLite database (PostgreSQL: explains pg_dump)"},
		"audit":    {cmdAudit, "verify the audit log's hash chain (exits non-zero when broken)"},
		"demo":     {cmdDemo, "load a demo district: institutions, synthetic residents, one user per role"},
		"loadtest": {cmdLoadtest, "drive a running server with many samplers registering specimens; print throughput and latency"},
		"user":     {cmdUser, "create or list users (create makes the first bureau_admin)"},
		"token":    {cmdToken, "create an API token for a user and print it"},
		"version":  {cmdVersion, "print the module version and the VCS revision it was built from"},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "shaobing: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "shaobing %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: shaobing <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'shaobing <command> -h' for a command's flags.")
}

// defaultDB is the database used when neither --db nor SHAOBING_DB is given.
const defaultDB = "sqlite://./data/shaobing.db"

// dbFlag registers the --db flag, defaulting to $SHAOBING_DB or the embedded SQLite file.
func dbFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("SHAOBING_DB")
	if def == "" {
		def = defaultDB
	}
	return fs.String("db", def, "database URL: sqlite://PATH or postgres://USER@HOST/DB (env SHAOBING_DB)")
}

func newFlagSet(name string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("shaobing "+name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	return fs
}

// expectSub checks that args starts with the sub-command want. Otherwise it
// prints usage and reports ok=false with the error to return: nil for an
// explicit request for help, an error naming want for anything else.
func expectSub(args []string, want, usage string, stdout io.Writer) (ok bool, err error) {
	if len(args) > 0 && args[0] == want {
		return true, nil
	}
	fmt.Fprintln(stdout, usage)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return false, nil
	}
	return false, fmt.Errorf("expected the sub-command %s", want)
}
