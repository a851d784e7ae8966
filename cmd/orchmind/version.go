package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version, when set at build time with -ldflags "-X main.version=…",
// overrides the version read from the build.
var version string

// buildVersion is this binary's version: the -X main.version stamp if any,
// else versionOf the build information the Go toolchain embedded.
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, _ := debug.ReadBuildInfo()
	return versionOf(bi)
}

// versionOf reads a version from build information: the main module's
// version when the toolchain set one (a release tag, or the pseudo-version
// go build derives from the VCS commit and its time, with "+dirty" when
// the tree had changes); else "devel", followed by the VCS revision, time
// and "modified" when they were recorded.
func versionOf(bi *debug.BuildInfo) string {
	if bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var vcs []string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcs = append([]string{s.Value[:min(12, len(s.Value))]}, vcs...)
		case "vcs.time":
			vcs = append(vcs, s.Value)
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if len(vcs) == 0 {
		return "devel"
	}
	if modified {
		vcs = append(vcs, "modified")
	}
	return "devel (" + strings.Join(vcs, ", ") + ")"
}

func versionCmd(e *env) *cobra.Command {
	c := verb("version", "print the version", noArgs)
	c.RunE = func(*cobra.Command, []string) error {
		fmt.Fprintln(e.stdout, "orchmind", e.version)
		return nil
	}
	return c
}
