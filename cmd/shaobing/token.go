package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shaobing/shaobing/internal/scope"
)

// cmdToken runs the token sub-commands: "create" makes an API token for a
// user and prints it; it is shown this once.
func cmdToken(ctx context.Context, args []string, stdout io.Writer) error {
	if ok, err := expectSub(args, "create", "usage: shaobing token create --username U [--name N] [--days D] [--db URL]", stdout); !ok {
		return err
	}
	fs := newFlagSet("token create", stdout)
	dbURL := dbFlag(fs)
	username := fs.String("username", "", "the user the token acts as (with exactly their roles and scope)")
	name := fs.String("name", "cli", "what the token is for, shown on the user's account page")
	days := fs.Int("days", 0, "days until the token expires; 0 for never")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *days < 0 {
		return errors.New("--days must not be negative")
	}
	svc, _, db, err := openAuth(ctx, *dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx = scope.WithPrincipal(ctx, scope.System())
	u, err := svc.UserByUsername(ctx, *username)
	if err != nil {
		return fmt.Errorf("user %q: %w", *username, err)
	}
	var expires time.Time
	if *days > 0 {
		expires = time.Now().AddDate(0, 0, *days)
	}
	_, secret, err := svc.CreateToken(ctx, u.ID, *name, expires)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	return nil
}
