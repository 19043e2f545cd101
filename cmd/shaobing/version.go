package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/shaobing/shaobing/internal/buildinfo"
)

// cmdVersion prints the build: module version, VCS revision and commit time.
func cmdVersion(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("version", stdout)
	asJSON := fs.Bool("json", false, "print the build as a JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	info := buildinfo.Read()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	_, err := fmt.Fprintln(stdout, info)
	return err
}
