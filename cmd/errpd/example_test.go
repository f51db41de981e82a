package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
)

// TestExampleCalendarWindows: as of --now, every row of the example
// calendar has a notice whose window is open, or opens within a day and
// a bit, under the default policy.
func TestExampleCalendarWindows(t *testing.T) {
	now := time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC) // a month end, a year without Feb 29
	out, _, err := errpd(t, context.Background(), "example-calendar", "--now", now.Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	r, err := calendar.NewReader(strings.NewReader(out), "example")
	if err != nil {
		t.Fatal(err)
	}
	rows, ccTLD := 0, false
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		ccTLD = ccTLD || strings.HasSuffix(row.Domain.Name, ".de")
		var soonest time.Duration = -1
		for _, s := range scheduler.Plan(row.Domain.Expiry, row.Domain.Mode, scheduler.DefaultPolicy(), now) {
			if s.State == scheduler.StateDue {
				soonest = 0
				break
			}
			if s.State == scheduler.StatePlanned && (soonest < 0 || s.Opens.Sub(now) < soonest) {
				soonest = s.Opens.Sub(now)
			}
		}
		if soonest < 0 || soonest > 25*time.Hour {
			t.Errorf("%s (expiry %s, %s): no window open or opening within 25 h (soonest %s)", row.Domain.Name, row.Domain.Expiry, row.Domain.Mode, soonest)
		}
	}
	if rows != len(exampleRows) || !ccTLD {
		t.Errorf("%d rows (want %d), a ccTLD among them: %v", rows, len(exampleRows), ccTLD)
	}
}

// TestExampleCalendarQuickStart follows the README's quick start: a daemon
// on the defaults, the example calendar imported through it; messages reach
// the outbox without waiting for a tick, and import names the missed ones.
func TestExampleCalendarQuickStart(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errpd.toml")
	os.WriteFile(cfg, []byte("[store]\npath = \"errpd.db\"\n[http]\nlisten = \"127.0.0.1:0\"\n[smtp]\noutbox_dir = \"outbox\"\n"), 0o600)
	serveInProcess(t, cfg)

	out, _, err := errpd(t, context.Background(), "example-calendar")
	if err != nil {
		t.Fatal(err)
	}
	cal := filepath.Join(t.TempDir(), "cal.csv")
	os.WriteFile(cal, []byte(out), 0o600)
	out, stderr, err := errpd(t, context.Background(), "import", "--config", cfg, cal)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		"5 rows read: 5 new domains, each with its notices planned\n",
		"3 notices were already past their deadline",
		"errpd steps --state missed --config " + cfg,
		"2 notices skipped: out of scope",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q:\n%s", want, out)
		}
	}
	waitFor(t, "three messages in the outbox", func() bool {
		entries, _ := os.ReadDir(filepath.Join(dir, "outbox"))
		return len(entries) >= 3
	})
}

// TestImportMessages: the usual first mistakes get a message that says
// what to do.
func TestImportMessages(t *testing.T) {
	cfg := testConfig(t)
	dir := t.TempDir()
	file := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(text), 0o600)
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"import", "--config", cfg}, "import needs the calendar file: errpd import CALENDAR.csv"},
		{"empty", []string{"import", "--config", cfg, file("empty.csv", "")}, "empty.csv is empty: a calendar starts with the header line domain,expiry,"},
		{"blank lines", []string{"import", "--config", cfg, file("blank.csv", "\n\n")}, "blank.csv is empty"},
		{"semicolons", []string{"import", "--config", cfg, file("semi.csv",
			"domain;expiry;mode;registrant_name;registrant_email;language;order_id;brand\nexample.com;2099-01-01;renew;A;a@example.org;en;;\n")},
			"semi.csv:1: the header is separated by semicolons; use commas: domain,expiry,"},
	} {
		_, _, err := errpd(t, context.Background(), tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// TestExampleCalendarGolden holds the example calendar, as of a fixed
// instant, to testdata/example-calendar.golden.csv (go test -update
// rewrites it): a change to the example shows in review.
func TestExampleCalendarGolden(t *testing.T) {
	out, _, err := errpd(t, context.Background(), "example-calendar", "--now", "2026-01-01T00:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("..", "..", "testdata", "example-calendar.golden.csv")
	if *update {
		os.WriteFile(golden, []byte(out), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("example-calendar differs from %s (go test -update rewrites it):\n%s", golden, out)
	}
}
