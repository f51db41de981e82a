package report_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func generated() time.Time { return time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) }

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

func TestGolden(t *testing.T) {
	s := reporttest.Seed(t)
	f := report.Filter{From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)}
	for _, format := range []report.Format{report.CSV, report.JSONL, report.HTML} {
		t.Run(string(format), func(t *testing.T) {
			var buf bytes.Buffer
			sum, err := report.Write(&buf, s.DB, f, format, generated())
			if err != nil {
				t.Fatal(err)
			}
			// 7 domains: 5 renew x 2 notices + 2 expire x 4 notices.
			if sum.Due != 18 {
				t.Errorf("due = %d, want 18", sum.Due)
			}
			golden(t, "report."+string(format)+".golden", buf.Bytes())
		})
	}
}

func rows(t *testing.T, db *store.DB, f report.Filter) map[string]report.Row {
	t.Helper()
	out := map[string]report.Row{}
	err := report.Rows(db, f, func(r report.Row) error {
		out[r.Step] = r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOutcomes(t *testing.T) {
	s := reporttest.Seed(t)
	exp := reporttest.Expiry()
	got := rows(t, s.DB, report.Filter{})
	id := func(d string, n scheduler.Notice) string { return store.StepID(d, exp, n) }

	renewed := got[id("renewed.net", scheduler.Reminder2)]
	if renewed.State != "skipped" || renewed.WhyNotSent != "renewed: new expiry 2026-03-01T00:00:00Z" {
		t.Errorf("renewed.net reminder2: state %q, why %q; want skipped by the renewal with the new expiry", renewed.State, renewed.WhyNotSent)
	}
	cases := []struct {
		id               string
		inWindow, proved bool
		why              string
	}{
		{id("proved.com", scheduler.Reminder1), true, true, ""},
		{id("xn--bcher-kva.com", scheduler.Reminder1), true, false, ""},
		{id("failed.com", scheduler.Reminder1), false, false, "failed: 550 5.1.1 <holder@failed.com>: Recipient address rejected"},
		{id("missed.org", scheduler.Reminder1), false, false, "missed: deadline passed before the notice was sent"},
		{id("doubt.info", scheduler.Reminder2), false, false, "in doubt: found in sending at start-up: may or may not have been delivered"},
		{id("beispiel.de", scheduler.Reminder1), false, false, "out of scope: ERRP does not apply to this TLD"},
	}
	for _, c := range cases {
		r, ok := got[c.id]
		if !ok {
			t.Errorf("%s: no row", c.id)
			continue
		}
		if r.InWindow != c.inWindow || r.ProvedInTime != c.proved || r.WhyNotSent != c.why {
			t.Errorf("%s: in window %v, proved in time %v, why %q; want %v, %v, %q", c.id, r.InWindow, r.ProvedInTime, r.WhyNotSent, c.inWindow, c.proved, c.why)
		}
	}
	if u := got[id("xn--bcher-kva.com", scheduler.Reminder1)].DomainUnicode; u != "bücher.com" {
		t.Errorf("U-label = %q, want bücher.com", u)
	}
}

func TestFilters(t *testing.T) {
	s := reporttest.Seed(t)
	exp := reporttest.Expiry()
	cases := []struct {
		name string
		f    report.Filter
		want int
	}{
		{"all", report.Filter{}, 18 + 2}, // the renewed cycle's two notices are due in 2026
		{"domain", report.Filter{Domains: []string{"missed.org", "proved.com"}}, 6},
		{"tld", report.Filter{TLD: "com"}, 2 + 2 + 4},
		// Reminder 1's deadline is 26 days before expiry; reminder 2's 4.
		{"period", report.Filter{From: exp.Add(-26 * scheduler.Day), To: exp.Add(-4 * scheduler.Day)}, 7},
		{"period end is exclusive", report.Filter{From: exp.Add(-27 * scheduler.Day), To: exp.Add(-26 * scheduler.Day)}, 0},
	}
	for _, c := range cases {
		if got := len(rows(t, s.DB, c.f)); got != c.want {
			t.Errorf("%s: %d rows, want %d", c.name, got, c.want)
		}
	}
}

func TestSummary(t *testing.T) {
	s := reporttest.Seed(t)
	var buf bytes.Buffer
	sum, err := report.Write(&buf, s.DB, report.Filter{To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, report.CSV, generated())
	if err != nil {
		t.Fatal(err)
	}
	// Sent in window: proved.com x2, renewed.net, bücher, doubt.info r1.
	// Skipped: renewed.net r2, beispiel.de x2. Owed: 18 - 3.
	want := report.Summary{Due: 18, Skipped: 3, Owed: 15, Sent: 5, SentInWindow: 5, Proved: 4, ProvedInTime: 3,
		Missed: 8, Failed: 1, InDoubt: 1}
	rate, ok := sum.Rate()
	sum.ComplianceRate, sum.From, sum.To = nil, time.Time{}, time.Time{}
	if sum != want {
		t.Errorf("summary = %+v\nwant      %+v", sum, want)
	}
	if !ok || rate != 5.0/15 {
		t.Errorf("rate = %v, %v; want 1/3", rate, ok)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 19 {
		t.Errorf("CSV has %d lines, want a header and 18 rows", lines)
	}
}

// TestHTMLInBrowser renders the HTML report in a real headless Chromium
// and checks that the page has its summary and chart.
func TestHTMLInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium)")
	}
	s := reporttest.Seed(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var buf bytes.Buffer
	if _, err := report.Write(&buf, s.DB, report.Filter{To: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, report.HTML, generated()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "report.png")
	if keep := os.Getenv("ERRPD_REPORT_SCREENSHOT"); keep != "" {
		shot = keep // to look at it
	}
	browse := func(extra ...string) []byte {
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}, extra...)
		cmd := exec.Command(chromium, append(args, "file://"+page)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, stderr.String())
		}
		return out
	}
	browse("--screenshot="+shot, "--window-size=1200,1600")
	info, err := os.Stat(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if info.Size() < 20000 {
		t.Errorf("screenshot is %d bytes: the page did not render", info.Size())
	}
	dom := string(browse("--dump-dom"))
	for _, want := range []string{`id="summary"`, "Compliance rate", "33.3%", "<svg", "<rect", "bücher.com", "renewed: new expiry 2026-03-01T00:00:00Z"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
}
