package main

import (
	"context"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	tagged := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/errpd/errpd", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-11-30T20:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	devel := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/errpd/errpd", Version: "(devel)"}}
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"git checkout", tagged, true, "errpd v1.2.3\ncommit 0123456789abcdef0123456789abcdef01234567 (with uncommitted changes)\ncommitted 2026-11-30T20:00:00Z\nbuilt with go1.26.8"},
		{"go run", devel, true, "errpd (devel)\ncommit unknown (not built from a git checkout)\nbuilt with go1.26.8"},
		{"no build info", nil, false, "errpd (devel): no build information in this binary"},
	} {
		if got := versionText(tc.bi, tc.ok); got != tc.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

// TestVersionCommand: `errpd version` and `errpd --version` print the same
// text, and it starts with the module version.
func TestVersionCommand(t *testing.T) {
	a, _, err := errpd(t, context.Background(), "version")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := errpd(t, context.Background(), "--version")
	if err != nil {
		t.Fatal(err)
	}
	if a != b || !strings.HasPrefix(a, "errpd ") || !strings.Contains(a, "built with go") {
		t.Errorf("version %q, --version %q", a, b)
	}
}
