package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/errpd/errpd/admin"
	"github.com/errpd/errpd/config"
)

func TestFrameMeter(t *testing.T) {
	var got []admin.Progress
	send := func(p admin.Progress) error { got = append(got, p); return nil }
	m := newFrameMeter(send, "importing", 1000)
	for range 1000 / 7 {
		m.Add64(7)
	}
	m.Add64(1000 % 7)
	m.Finish()
	if len(got) < 50 || len(got) > 102 {
		t.Errorf("%d frames for 1000 bytes in steps of 7; want one per hundredth or so", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Done < got[i-1].Done {
			t.Fatalf("frame %d goes back: %v after %v", i, got[i], got[i-1])
		}
	}
	if last := got[len(got)-1]; last != (admin.Progress{Label: "importing", Done: 1000, Total: 1000}) {
		t.Errorf("last frame %v", last)
	}

	// Unknown size: a frame a MiB, and the last one full.
	got = nil
	m = newFrameMeter(send, "report", -1)
	for range 3 {
		m.Add64(1 << 20)
	}
	m.Add64(5)
	m.Finish()
	if len(got) != 4 || got[3] != (admin.Progress{Label: "report", Done: 3<<20 + 5, Total: 3<<20 + 5}) {
		t.Errorf("unknown size: frames %v", got)
	}
}

// TestForwardedProgress: backup and report forwarded to a running daemon
// send progress frames ending at the whole size, which the client draws
// (on a terminal) as the command does locally. (Before: no frames; a
// forwarded backup or report showed nothing, even on a terminal.)
func TestForwardedProgress(t *testing.T) {
	cfg := testConfig(t)
	serveInProcess(t, cfg)
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cal := filepath.Join(dir, "cal.csv")
	var b strings.Builder
	b.WriteString("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n")
	for i := range 1500 {
		fmt.Fprintf(&b, "d%d.example,2099-12-31,renew,Ann,ann@example.org,en,,\n", i)
	}
	os.WriteFile(cal, []byte(b.String()), 0o600)
	forward := func(args, inputs, outputs []string) []admin.Progress {
		t.Helper()
		var got []admin.Progress
		err := admin.Forward(context.Background(), admin.SocketPath(c.Store.Path), append(args, "--config", cfg), inputs, outputs, io.Discard, io.Discard,
			admin.WithProgressFrames(func(p admin.Progress) { got = append(got, p) }))
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		return got
	}
	check := func(label string, frames []admin.Progress, size int64) {
		t.Helper()
		if len(frames) < 1 || len(frames) > 102 {
			t.Errorf("%s: %d frames", label, len(frames))
			return
		}
		last := frames[len(frames)-1]
		if last != (admin.Progress{Label: label, Done: size, Total: size}) {
			t.Errorf("%s: last frame %+v, want done = total = %d", label, last, size)
		}
	}
	// Import's bar follows the bytes the client streams (admin.WithProgress):
	// no frames, or a terminal would show two bars.
	if frames := forward([]string{"import", cal}, []string{cal}, nil); len(frames) != 0 {
		t.Errorf("import sent %d progress frames, want none", len(frames))
	}

	backup := filepath.Join(dir, "copy.db")
	frames := forward([]string{"backup", backup}, nil, []string{backup})
	fi, err := os.Stat(backup)
	if err != nil {
		t.Fatal(err)
	}
	check("backup", frames, fi.Size())

	rep := filepath.Join(dir, "report.csv")
	frames = forward([]string{"report", "--from", "2099-01-01", "--output", rep}, nil, []string{rep})
	fi, err = os.Stat(rep)
	if err != nil {
		t.Fatal(err)
	}
	check("report", frames, fi.Size())
}

// TestImportLogsProgress: an import of more than a MiB run without a
// terminal (cron, systemd) logs how far it got at each tenth, as JSON with
// JSON logs. (Before: nothing until the summary at the end; a 1M-row
// import is silent for ten minutes.)
func TestImportLogsProgress(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errpd.toml")
	if err := os.WriteFile(cfg, []byte("[store]\npath = \"errpd.db\"\n[log]\nformat = \"json\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n")
	for i := 0; b.Len() < 1<<20+1000; i++ {
		fmt.Fprintf(&b, "d%05d.example,2031-01-%02d,expire,%s %d,owner%d@mail.example,en,,\n", i, i%28+1, strings.Repeat("Registrant ", 17), i, i)
	}
	csv := filepath.Join(dir, "calendar.csv")
	if err := os.WriteFile(csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := errpd(t, context.Background(), "--config", cfg, "import", csv)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	var percents []int
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec struct {
			Msg     string
			Percent int
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a line on stderr is not JSON: %q", line)
		}
		if rec.Msg == "importing" {
			percents = append(percents, rec.Percent)
		}
	}
	if len(percents) < 9 || len(percents) > 11 || percents[len(percents)-1] != 100 {
		t.Errorf("progress lines at %v percent; want one at each tenth, ending at 100", percents)
	}
}
