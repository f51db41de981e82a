package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondServeStopsAtOnce: a second serve on a store a daemon holds
// stops at once, naming the daemon's pid, however long open_timeout is.
// (Before: it waited the 30 s of open_timeout, then said "waited 30s for
// its lock".)
func TestSecondServeStopsAtOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errpd.toml")
	os.WriteFile(cfg, []byte("[store]\npath = \"errpd.db\"\nopen_timeout = \"30s\"\n[http]\nlisten = \"127.0.0.1:0\"\n"), 0o600)
	serveInProcess(t, cfg)

	start := time.Now()
	_, _, err := errpd(t, context.Background(), "serve", "--config", cfg)
	took := time.Since(start)
	want := fmt.Sprintf("store is in use by another errpd process (pid %d)", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second serve: %v, want %q", err, want)
	}
	if took > 10*time.Second {
		t.Errorf("second serve took %s to stop; open_timeout is 30s", took)
	}
}
