package main

import (
	"runtime/debug"
	"testing"
)

// serve sets its soft memory limit unless GOMEMLIMIT set one (issue 11:
// the daemon's own memory during a 1M-row import).
func TestApplyMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	debug.SetMemoryLimit(1 << 40)
	if got, from := applyMemoryLimit(func(string) string { return "1TiB" }); got != 1<<40 || from != "GOMEMLIMIT" {
		t.Errorf("with GOMEMLIMIT set: %d from %s, want the runtime's 1 TiB kept", got, from)
	}
	if now := debug.SetMemoryLimit(-1); now != 1<<40 {
		t.Errorf("with GOMEMLIMIT set the limit became %d", now)
	}
	if got, from := applyMemoryLimit(func(string) string { return "" }); got != defaultMemoryLimit || from != "default" {
		t.Errorf("without GOMEMLIMIT: %d from %s", got, from)
	}
	if now := debug.SetMemoryLimit(-1); now != defaultMemoryLimit {
		t.Errorf("without GOMEMLIMIT the limit is %d, want %d", now, defaultMemoryLimit)
	}
}

// gcPercent sets GOGC for a command's work and puts it back, and leaves
// it alone when the environment sets GOGC.
func TestGCPercent(t *testing.T) {
	t.Setenv("GOGC", "")
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	restore := gcPercent(25)
	if now := debug.SetGCPercent(25); now != 25 {
		t.Errorf("GOGC during the work: %d, want 25", now)
	}
	restore()
	if now := debug.SetGCPercent(100); now != 100 {
		t.Errorf("GOGC after the work: %d, want 100 back", now)
	}
	t.Setenv("GOGC", "200")
	restore = gcPercent(25)
	if now := debug.SetGCPercent(100); now != 100 {
		t.Errorf("GOGC set in the environment was overridden: %d", now)
	}
	restore()
}
