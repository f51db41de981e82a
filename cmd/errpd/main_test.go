package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/admin"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// errpd runs the command in-process and returns its output.
func errpd(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// testConfig writes a config whose store lives in a temp dir.
func testConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "errpd.toml")
	if err := os.WriteFile(path, []byte("[store]\npath = \"errpd.db\"\nopen_timeout = \"200ms\"\n[http]\nlisten = \"127.0.0.1:0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPlanJSON(t *testing.T) {
	out, _, err := errpd(t, context.Background(), "plan", "--expiry", "2026-12-31T00:00:00Z", "--mode", "expire", "--now", "2026-12-27T12:00:00Z", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got planOut
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	want := planOut{Expiry: "2026-12-31T00:00:00Z", Mode: "expire", Steps: []stepJSON{
		{Notice: "reminder1", Opens: "2026-11-26T00:00:00Z", Deadline: "2026-12-05T00:00:00Z", State: "missed"},
		{Notice: "reminder2", Opens: "2026-12-24T00:00:00Z", Deadline: "2026-12-27T00:00:00Z", State: "missed"},
		{Notice: "reminder3", Opens: "2026-12-31T00:00:00Z", Deadline: "2027-01-05T00:00:00Z", SendAt: "2026-12-31T00:00:00Z", State: "planned"},
		{Notice: "suspension", Opens: "2027-01-08T00:00:00Z", Deadline: "2027-01-09T00:00:00Z", SendAt: "2027-01-08T00:00:00Z", State: "planned"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan --json (-want +got):\n%s", diff)
	}
}

func TestPlanBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"plan", "--expiry", "tomorrow", "--mode", "renew"},
		{"plan", "--expiry", "2026-12-31", "--mode", "delete"},
		{"plan", "--mode", "renew"},
	} {
		_, _, err := errpd(t, context.Background(), args...)
		if err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func TestImportAndDomains(t *testing.T) {
	cfg := testConfig(t)
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte(`domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand
example.com,2099-12-31,renew,Ann,ann@example.org,en,,
bücher.example,2099-06-30T12:00:00Z,expire,Bea,bea@example.org,de,ORD1,
bad..name,2099-12-31,renew,Cy,cy@example.org,,,
ok.net,someday,renew,Di,di@example.org,,,
`), 0o600)

	out, stderr, err := errpd(t, context.Background(), "import", "--config", cfg, csv)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("import with bad rows: err %v (exit %d), want exit 1", err, exitCode(err))
	}
	if !strings.Contains(out, "4 rows read: 2 new domains, each with its notices planned, 2 rows rejected") {
		t.Errorf("summary: %q", out)
	}
	for _, want := range []string{"calendar.csv:4: domain:", "calendar.csv:5: expiry:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	out, _, err = errpd(t, context.Background(), "domains", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rows []domainRow
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r domainRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		rows = append(rows, r)
	}
	want := []domainRow{
		{Domain: "example.com", Mode: "renew", Expiry: "2099-12-31T00:00:00Z", Next: "reminder1", NextAt: "2099-11-26T00:00:00Z", State: "planned"},
		{Domain: "xn--bcher-kva.example", Mode: "expire", Expiry: "2099-06-30T12:00:00Z", OrderID: "ORD1", Next: "reminder1", NextAt: "2099-05-26T12:00:00Z", State: "planned"},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
}

// syncBuffer is a bytes.Buffer safe to read while serve writes its log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeStopsOnSignalAndLocksTheStore(t *testing.T) {
	cfg := testConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &bytes.Buffer{}, logs) }()
	for !strings.Contains(logs.String(), "errpd serving") {
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, logs)
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, want := range []string{"outbox", "uploads wait"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, logs)
		}
	}

	// A second writer is refused while serve holds the store.
	_, _, err := errpd(t, context.Background(), "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "in use by another errpd") {
		t.Errorf("second serve: %v, want a clear lock error", err)
	}
	// Other commands keep working: they run inside the daemon.
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\nlive.example.com,2099-12-31,renew,Ann,ann@example.org,en,,\n"), 0o600)
	out, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv)
	if err != nil || !strings.Contains(out, "1 new domain") {
		t.Errorf("import while serving: %q %v", out, err)
	}
	out, _, err = errpd(t, context.Background(), "domains", "--config", cfg)
	if err != nil || !strings.Contains(out, "live.example.com") {
		t.Errorf("domains while serving: %q %v", out, err)
	}
	_, _, err = errpd(t, context.Background(), "resolve", "--config", cfg, "no.such/step", "--resend")
	if err == nil || !strings.Contains(err.Error(), "no step") || exitCode(err) != 2 {
		t.Errorf("resolve of an unknown step through the daemon: %v (exit %d)", err, exitCode(err))
	}
	// Files the daemon's commands write arrive where the client asked.
	outDir := t.TempDir()
	backup, rep := filepath.Join(outDir, "backup.db"), filepath.Join(outDir, "report.csv")
	if out, _, err := errpd(t, context.Background(), "backup", "--config", cfg, backup); err != nil || !strings.Contains(out, backup) {
		t.Errorf("backup while serving: %q %v", out, err)
	}
	if _, _, err := errpd(t, context.Background(), "report", "--config", cfg, "--from", "2099-01-01", "--to", "2100-01-01", "--format", "csv", "--output", rep); err != nil {
		t.Errorf("report while serving: %v", err)
	}
	if b, err := os.ReadFile(rep); err != nil || !strings.Contains(string(b), "live.example.com") {
		t.Errorf("report file: %v\n%s", err, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if !strings.Contains(logs.String(), "errpd stopped") {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}
	// The backup is a whole store: it opens and holds the domain.
	db, err := store.Open(backup, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("backup does not open: %v", err)
	}
	defer db.Close()
	db.View(func(tx *store.Tx) error {
		if _, ok, err := tx.Domain("live.example.com"); !ok || err != nil {
			t.Errorf("backup lacks the domain (%v)", err)
		}
		return nil
	})
}

// Commands that only read open the store read-only when no daemon runs:
// they run beside each other (here, beside another reader holding the
// store), and say so plainly when there is no store yet.
func TestReadersShareTheStore(t *testing.T) {
	cfg := testConfig(t)
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\nshared.example.com,2099-12-31,renew,Ann,ann@example.org,en,,\n"), 0o600)
	if _, _, err := errpd(t, context.Background(), "domains", "--config", cfg); err == nil || !strings.Contains(err.Error(), "does not exist yet") {
		t.Errorf("domains before any store: %v, want a plain 'does not exist yet'", err)
	}
	if _, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.Open(c.Store.Path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	missing := filepath.Join(t.TempDir(), "nodir", "report.csv")
	if _, _, err := errpd(t, context.Background(), "report", "--config", cfg, "--output", missing); err == nil || !strings.Contains(err.Error(), missing+":") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("report into a missing folder: %v, want an error naming %s", err, missing)
	}
	if _, _, err := errpd(t, context.Background(), "steps", "--config", cfg, "--state", "bogus"); err == nil || !strings.Contains(err.Error(), "in_doubt") {
		t.Errorf("steps --state bogus: %v, want an error listing the states", err)
	}
	for _, args := range [][]string{{"domains"}, {"steps"}, {"verify"}, {"resolve"}} {
		out, _, err := errpd(t, context.Background(), append(args, "--config", cfg)...)
		if err != nil {
			t.Errorf("%s beside another reader: %v", args[0], err)
		}
		if args[0] == "domains" && !strings.Contains(out, "shared.example.com") {
			t.Errorf("domains: %q", out)
		}
	}
}

// resolve --retry of a failed step orders a new send for the domain's
// present registrant: an earlier send in doubt no longer pins the resend
// to the old message and address.
func TestRetryOfFailedStepRendersAfresh(t *testing.T) {
	cfg := testConfig(t)
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	expiry := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	os.WriteFile(csv, fmt.Appendf(nil, "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\nfix.example.com,%s,renew,Ann,old@example.org,en,,\n", expiry.Format(time.RFC3339)), 0o600)
	if _, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := store.StepID("fix.example.com", expiry, scheduler.Reminder1)
	// What a resend refused for good leaves: failed, with a message that
	// may have gone.
	db, err := store.Open(c.Store.Path, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateFailed, "test", func(s *store.Step) {
			s.MayHaveGone, s.Recipient, s.Reason = true, "old@example.org", "smtp: 550 no such user"
		})
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := errpd(t, context.Background(), "resolve", "--config", cfg, id, "--retry"); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(c.Store.Path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *store.Tx) error {
		s, _, _ := tx.Step(id)
		if s.State != scheduler.StateDue || s.MayHaveGone {
			t.Errorf("after --retry: %s, may_have_gone %v; want due, rendered afresh", s.State, s.MayHaveGone)
		}
		return nil
	})
}

// A socket left by a crash does not eat a calendar that can be read only
// once (a pipe): with no daemon answering, the command runs here and reads
// it itself.
func TestStaleSocketLeavesPipedInputAlone(t *testing.T) {
	cfg := testConfig(t)
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", admin.SocketPath(c.Store.Path))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the socket file stays, nobody listens: a crash's leftover

	fifo := pipedCalendar(t, "piped.example.com", 0)
	done := make(chan struct{})
	var out string
	go func() {
		defer close(done)
		out, _, err = errpd(t, context.Background(), "import", "--config", cfg, fifo)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("import hangs: the piped calendar was read before the stale socket was noticed")
	}
	if err != nil || !strings.Contains(out, "1 new domain") {
		t.Errorf("import from a pipe beside a stale socket: %q %v", out, err)
	}
}

// A calendar that is slow to read (a pipe, a network file system) still
// goes through a running daemon: the request is sent once it is read,
// not on a connection the daemon has meanwhile given up on (it waits 5 s
// for a request).
func TestSlowInputThroughTheDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 6 s")
	}
	cfg := testConfig(t)
	serveInProcess(t, cfg)
	// Written 6 s after it is opened: longer than the daemon waits for a
	// request.
	fifo := pipedCalendar(t, "slow.example.com", 6*time.Second)
	out, _, err := errpd(t, context.Background(), "import", "--config", cfg, fifo)
	if err != nil || !strings.Contains(out, "1 new domain") {
		t.Errorf("slow import through the daemon: %q %v", out, err)
	}
}

// pipedCalendar is a named pipe that yields a one-domain calendar, after
// delay, once it is opened: an input that can be read only once.
func pipedCalendar(t *testing.T, domain string, delay time.Duration) string {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "calendar.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		time.Sleep(delay)
		fmt.Fprintf(f, "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n%s,2099-12-31,renew,Ann,ann@example.org,en,,\n", domain)
		f.Close()
	}()
	return fifo
}

// serveInProcess runs errpd serve on cfg until the test ends, and returns
// its log once it serves.
func serveInProcess(t *testing.T, cfg string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &bytes.Buffer{}, logs) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	waitFor(t, "serve to start", func() bool { return strings.Contains(logs.String(), "errpd serving") })
	return logs
}
