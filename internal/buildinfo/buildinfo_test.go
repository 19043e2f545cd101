package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want Info
	}{
		{"no build info", nil, false, Info{Version: "devel", Revision: Unknown, Time: Unknown, GoVersion: Unknown}},
		{"go run or test", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/shaobing/shaobing", Version: "(devel)"}}, true,
			Info{Version: "devel", Revision: Unknown, Time: Unknown, GoVersion: "go1.26.8"}},
		{"build from a dirty checkout", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v0.0.0-20260301101500-2e18133abcde+dirty"},
			Settings: []debug.BuildSetting{
				{Key: "-trimpath", Value: "true"},
				{Key: "vcs", Value: "git"},
				{Key: "vcs.revision", Value: "2e18133abcdef0123456789abcdef0123456789a"},
				{Key: "vcs.time", Value: "2026-03-01T10:15:00Z"},
				{Key: "vcs.modified", Value: "true"},
			}}, true,
			Info{Version: "v0.0.0-20260301101500-2e18133abcde+dirty", Revision: "2e18133abcdef0123456789abcdef0123456789a",
				Time: "2026-03-01T10:15:00Z", Modified: true, GoVersion: "go1.26.8"}},
		{"tagged release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.time", Value: "2026-04-01T00:00:00Z"}, {Key: "vcs.modified", Value: "false"}}}, true,
			Info{Version: "v1.2.0", Revision: "abc", Time: "2026-04-01T00:00:00Z", GoVersion: "go1.26.8"}},
	}
	for _, tt := range tests {
		if got := From(tt.bi, tt.ok); got != tt.want {
			t.Errorf("%s: From = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.0", Revision: "abc", Time: "2026-04-01T00:00:00Z", Modified: true, GoVersion: "go1.26.8"}
	want := "shaobing v1.2.0 (revision abc with uncommitted changes, committed 2026-04-01T00:00:00Z, go1.26.8)"
	if got := i.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}
