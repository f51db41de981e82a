package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// importSome imports a calendar of a few domains into cfg's store.
func importSome(t *testing.T, cfg string) string {
	t.Helper()
	cal := filepath.Join(t.TempDir(), "cal.csv")
	rows := "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"
	for _, d := range []string{"b.example", "a.example", "d.example", "c.example"} {
		rows += d + ",2031-01-01,renew,Ann,ann@mail.example,en,,\n"
	}
	os.WriteFile(cal, []byte(rows), 0o600)
	if out, errOut, err := errpd(t, context.Background(), "import", "--config", cfg, cal); err != nil {
		t.Fatalf("import: %v\n%s%s", err, out, errOut)
	}
	return filepath.Join(filepath.Dir(cfg), "errpd.db")
}

func TestCompactCommand(t *testing.T) {
	cfg := testConfig(t)
	path := importSome(t, cfg)
	before, _ := os.ReadFile(path)
	keep := filepath.Join(filepath.Dir(path), "old.db")
	out, errOut, err := errpd(t, context.Background(), "compact", "--config", cfg, "--keep", keep)
	if err != nil {
		t.Fatalf("compact: %v\n%s", err, errOut)
	}
	for _, want := range []string{"compacted: ", "MiB before", "MiB after", "old file kept as " + keep} {
		if !strings.Contains(out, want) {
			t.Errorf("compact printed no %q:\n%s", want, out)
		}
	}
	// Not a terminal: the progress is in the log, from start to end.
	for _, want := range []string{"compacting the store", "percent=100", "store compacted"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("compact's log lacks %q:\n%s", want, errOut)
		}
	}
	if kept, _ := os.ReadFile(keep); !bytes.Equal(kept, before) {
		t.Error("the old file kept is not the store as it was")
	}
	if out, _, err := errpd(t, context.Background(), "verify", "--config", cfg); err != nil || !strings.Contains(out, "ok:") {
		t.Errorf("verify after compact: %v\n%s", err, out)
	}
	out, _, err = errpd(t, context.Background(), "compact", "--config", testConfig(t))
	if err != nil || !strings.Contains(out, "no store at") {
		t.Errorf("compact without a store: %v\n%s", err, out)
	}
}

// With log.format = "json" the progress lines are JSON too.
func TestCompactLogsJSON(t *testing.T) {
	cfg := writeServeConfig(t, "")
	importSome(t, cfg)
	_, errOut, err := errpd(t, context.Background(), "compact", "--config", cfg)
	if err != nil {
		t.Fatalf("compact: %v\n%s", err, errOut)
	}
	msgs := jsonMsgs(t, errOut)
	if len(msgs) < 3 || msgs[len(msgs)-1] != "store compacted" {
		t.Errorf("compact logged %q; want its start, progress and end", msgs)
	}
}

// jsonMsgs holds every line of a command's log to be JSON and returns
// their messages.
func jsonMsgs(t *testing.T, log string) []string {
	t.Helper()
	var msgs []string
	for i, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var l struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("log line %d is not JSON: %s", i+1, line)
		}
		msgs = append(msgs, l.Msg)
	}
	return msgs
}

// While the daemon holds the store, compact stops at once and says to
// stop the daemon, and how long a compaction takes.
func TestCompactRefusesRunningDaemon(t *testing.T) {
	cfg := writeServeConfig(t, "[smtp]\noutbox_dir = \"outbox\"\n")
	serveInProcess(t, cfg)
	path := filepath.Join(filepath.Dir(cfg), "errpd.db")
	_, _, err := errpd(t, context.Background(), "compact", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "stop the daemon first") || !strings.Contains(err.Error(), "1,000,000 domains took") ||
		!strings.Contains(err.Error(), "in use by another errpd process") {
		t.Errorf("compact while serve runs: %v; want a refusal saying to stop the daemon", err)
	}
	if _, err := os.Stat(path + ".compacting"); err == nil {
		t.Error("a refused compaction left a new file")
	}
}

func TestCompactRefusesOldStore(t *testing.T) {
	cfg := testConfig(t)
	path := schema1Store(t, cfg)
	_, _, err := errpd(t, context.Background(), "compact", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "errpd migrate --config "+cfg) {
		t.Errorf("compact of a schema-1 store: %v; want a refusal naming the command to run first", err)
	}
	if v := schemaOf(t, path); v != 1 {
		t.Errorf("the refused store's schema is now %d", v)
	}
}
