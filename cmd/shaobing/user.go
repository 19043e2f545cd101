package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// cmdUser runs the user sub-commands: "create" adds a user (the way to make
// the first bureau_admin), "list" prints every user. Both act as the system.
func cmdUser(ctx context.Context, args []string, stdout io.Writer) error {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch sub {
	case "create":
		return cmdUserCreate(ctx, args[1:], stdout)
	case "list":
		return cmdUserList(ctx, args[1:], stdout)
	}
	fmt.Fprintln(stdout, "usage: shaobing user create --username U --password P --role ROLE [--role ROLE2 …] (--region CODE | --institution ID) [--name N] [--db URL]\n       shaobing user list [--db URL]")
	if sub == "-h" || sub == "--help" || sub == "help" {
		return nil
	}
	return errors.New("expected the sub-command create or list")
}

// rolesFlag collects --role, given once per role or comma-separated.
type rolesFlag []scope.Role

func (f *rolesFlag) String() string { return fmt.Sprint(*f) }

func (f *rolesFlag) Set(v string) error {
	for _, r := range strings.Split(v, ",") {
		role, err := scope.ParseRole(r)
		if err != nil {
			return fmt.Errorf("unknown role %q (roles: %v)", r, scope.Roles)
		}
		*f = append(*f, role)
	}
	return nil
}

func cmdUserCreate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("user create", stdout)
	dbURL := dbFlag(fs)
	username := fs.String("username", "", "login name: 3–40 of a-z 0-9 . _ -")
	password := fs.String("password", os.Getenv("SHAOBING_PASSWORD"), "password, at least 12 characters (env SHAOBING_PASSWORD keeps it out of the process list)")
	name := fs.String("name", "", "display name (default: the username)")
	region := fs.String("region", "", "the user's region: a 6, 9 or 12-digit division code")
	institution := fs.Int64("institution", 0, "the user's institution ID (instead of --region)")
	var roles rolesFlag
	fs.Var(&roles, "role", "a role code, repeatable: "+fmt.Sprint(scope.Roles))
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc, _, db, err := openAuth(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	u, err := svc.CreateUser(scope.WithPrincipal(ctx, scope.System()), auth.NewUser{
		Username: *username, DisplayName: *name, Password: *password, Roles: roles, RegionCode: *region, InstitutionID: *institution,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (id %d, roles %v, region %s)\n", u.Username, u.ID, u.Roles, u.RegionCode)
	return nil
}

func cmdUserList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("user list", stdout)
	dbURL := dbFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc, _, db, err := openAuth(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx = scope.WithPrincipal(ctx, scope.System())
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSERNAME\tNAME\tROLES\tREGION\tINSTITUTION\tSTATE")
	cursor := ""
	for {
		users, next, err := svc.ListUsers(ctx, auth.UserFilter{Limit: 500}, cursor)
		if err != nil {
			return err
		}
		for _, u := range users {
			state := "active"
			switch {
			case u.Disabled:
				state = "disabled"
			case u.Locked(time.Now()):
				state = "locked"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", u.ID, u.Username, u.DisplayName, joinRoles(u.Roles), u.RegionCode, u.InstitutionName, state)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	return tw.Flush()
}

func joinRoles(roles []scope.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// openAuth opens and migrates the database and returns the user store and
// the region tree it loaded, for callers that need it too (loading it takes
// a while). There is no web shell: the CLI uses only the store.
func openAuth(ctx context.Context, dbURL string) (*auth.Service, *regions.Tree, *storage.DB, error) {
	db, err := openMigrated(ctx, dbURL)
	if err != nil {
		return nil, nil, nil, err
	}
	tree, err := regions.LoadTree()
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return auth.New(db, tree, nil, time.Now, auth.Options{}), tree, db, nil
}
