// Package buildinfo tells which build of shaobing is running: the module
// version and the VCS revision the Go toolchain stamps into every binary
// built from a git checkout. Operators compare it across instances that
// share one database.
package buildinfo

import "runtime/debug"

// Unknown is shown for what the binary was built without (a build outside a
// git checkout, or with -buildvcs=false).
const Unknown = "unknown"

// Info is the running binary's build.
type Info struct {
	// Version is the module version: a tag such as "v1.2.0", a pseudo-version
	// (with "+dirty" for uncommitted changes), or "devel".
	Version string `json:"version"`
	// Revision is the commit hash, Time its commit time (RFC 3339), and
	// Modified reports uncommitted changes in the checkout.
	Revision  string `json:"revision"`
	Time      string `json:"time"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
}

// Read returns the running binary's build.
func Read() Info { return From(debug.ReadBuildInfo()) }

// From extracts Info from what debug.ReadBuildInfo returned.
func From(bi *debug.BuildInfo, ok bool) Info {
	info := Info{Version: "devel", Revision: Unknown, Time: Unknown, GoVersion: Unknown}
	if !ok || bi == nil {
		return info
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		info.Version = v
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one-line form `shaobing version` prints.
func (i Info) String() string {
	s := "shaobing " + i.Version + " (revision " + i.Revision
	if i.Modified {
		s += " with uncommitted changes"
	}
	return s + ", committed " + i.Time + ", " + i.GoVersion + ")"
}
