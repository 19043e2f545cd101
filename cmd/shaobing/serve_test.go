package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRejectsBadShedWait: --shed-wait and SHAOBING_SHED_WAIT take a Go
// duration from 1ms to 10s, and a bad one stops serve before it starts.
func TestServeRejectsBadShedWait(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "never-created.db")
	tests := []struct {
		name, env string
		args      []string
		want      string
	}{
		{"flag without a unit", "", []string{"--shed-wait", "100"}, "invalid value"},
		{"flag zero", "", []string{"--shed-wait", "0s"}, "outside 1ms to 10s"},
		{"flag negative", "", []string{"--shed-wait=-5ms"}, "outside 1ms to 10s"},
		{"flag too long", "", []string{"--shed-wait", "1m"}, "outside 1ms to 10s"},
		{"env not a duration", "soon", nil, `SHAOBING_SHED_WAIT="soon": want a duration`},
		{"env too long", "30s", nil, `SHAOBING_SHED_WAIT="30s": 30s is outside`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SHAOBING_SHED_WAIT", tt.env)
			var out, errOut bytes.Buffer
			args := append([]string{"serve", "--db", db, "--addr", "127.0.0.1:0"}, tt.args...)
			if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String()+out.String(), tt.want) {
				t.Errorf("exit %d, output %q %q; want an error containing %q", code, out.String(), errOut.String(), tt.want)
			}
			if strings.Contains(out.String(), "running") {
				t.Errorf("serve started: %q", out.String())
			}
		})
	}
}

func TestParseShedWait(t *testing.T) {
	for in, want := range map[string]string{"1ms": "1ms", "250ms": "250ms", "1.5s": "1.5s", "10s": "10s"} {
		d, err := parseShedWait(in)
		if err != nil || d.String() != want {
			t.Errorf("parseShedWait(%q) = %v, %v; want %s", in, d, err, want)
		}
	}
	for _, in := range []string{"", "100", "0", "999us", "10.001s", "-1s", "1h"} {
		if d, err := parseShedWait(in); err == nil {
			t.Errorf("parseShedWait(%q) = %v, want an error", in, d)
		}
	}
}
