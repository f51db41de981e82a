package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print errpd's version, commit and commit time",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintln(a.stdout, versionText(debug.ReadBuildInfo()))
			return nil
		},
	}
}

// versionText says which errpd this is, from what the Go toolchain stamps
// into the binary: the module version (a tag, a pseudo-version, or
// "(devel)" for go run and builds outside a module version), and, when
// built from a git checkout, the commit, its time and whether the tree
// had changes.
func versionText(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "errpd (devel): no build information in this binary"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "errpd %s", v)
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	if rev := s["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "\ncommit %s", rev)
		if s["vcs.modified"] == "true" {
			b.WriteString(" (with uncommitted changes)")
		}
		if t := s["vcs.time"]; t != "" {
			fmt.Fprintf(&b, "\ncommitted %s", t)
		}
	} else {
		b.WriteString("\ncommit unknown (not built from a git checkout)")
	}
	fmt.Fprintf(&b, "\nbuilt with %s", bi.GoVersion)
	return b.String()
}
