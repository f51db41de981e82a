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
	// Counted: every deadline is before the report was made (June 2025).
	// Sent in window: proved.com x2, renewed.net, bücher, doubt.info r1;
	// of which proved in time: proved.com x2, renewed.net. Ascio's own
	// copy: missed.org r1 (yes), failed.com r1 (unknown).
	// Skipped: renewed.net r2, beispiel.de x2. Owed: 18 - 3.
	want := report.Summary{Due: 18, Counted: 18, Skipped: 3, Owed: 15, Sent: 5, SentInWindow: 5, Proved: 4, ProvedInTime: 3,
		Missed: 8, Failed: 1, InDoubt: 1, SentAndProved: 3, CoveredByAscio: 1, CoverageUnknown: 1}
	rate, ok := sum.Rate()
	if !sum.Cutoff.Equal(generated()) {
		t.Errorf("cutoff %s, want the time the report was made, %s", sum.Cutoff, generated())
	}
	sum.ComplianceRate, sum.From, sum.To, sum.Cutoff = nil, time.Time{}, time.Time{}, time.Time{}
	if sum != want {
		t.Errorf("summary = %+v\nwant      %+v", sum, want)
	}
	if !ok || rate != 4.0/15 {
		t.Errorf("rate = %v, %v; want 4/15", rate, ok)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 19 {
		t.Errorf("CSV has %d lines, want a header and 18 rows", lines)
	}
}

// TestRate: the rate counts only notices whose deadline is before the
// period's end or the report's time, whichever is earlier; pending ones are
// listed, never counted; skipped ones are not owed; a notice is answered
// when sent in its window and proved in time, or by Ascio's own copy.
func TestRate(t *testing.T) {
	gen := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	before, after := gen.Add(-24*time.Hour), gen.Add(24*time.Hour)
	row := func(deadline time.Time, state string, inWindow, proved bool, covered string) report.Row {
		return report.Row{Deadline: deadline, State: state, InWindow: inWindow, ProvedInTime: proved, CoveredByAscio: covered}
	}
	proved := row(before, "proved", true, true, "")
	provedLate := row(before, "proved", true, false, "no")
	missed := row(before, "missed", false, false, "no")
	covered := row(before, "missed", false, false, "yes")
	unknown := row(before, "failed", false, false, "unknown")
	skipped := row(before, "skipped", false, false, "")
	skippedCovered := row(before, "skipped", false, false, "yes")
	planned := row(after, "planned", false, false, "")
	sentNotYetProved := row(after, "sent", true, false, "")
	cases := []struct {
		name                   string
		to                     time.Time
		rows                   []report.Row
		owed, pending, counted int
		proved, covered        int
		rate                   float64 // -1: none (nothing owed)
	}{
		{"all answered by errpd", time.Time{}, []report.Row{proved, proved}, 2, 0, 2, 2, 0, 1},
		{"Ascio's copy answers", time.Time{}, []report.Row{proved, covered, missed, unknown}, 4, 0, 4, 1, 1, 0.5},
		{"proved late is not errpd's answer", time.Time{}, []report.Row{provedLate, proved}, 2, 0, 2, 1, 0, 0.5},
		{"skipped is not owed, whatever Ascio did", time.Time{}, []report.Row{skipped, skippedCovered, missed}, 1, 0, 3, 0, 0, 0},
		{"pending is listed, not counted", time.Time{}, []report.Row{planned, sentNotYetProved, proved}, 1, 2, 1, 1, 0, 1},
		{"nothing owed yet", time.Time{}, []report.Row{planned}, 0, 1, 0, 0, 0, -1},
		{"deadline at the cutoff is pending", time.Time{}, []report.Row{row(gen, "missed", false, false, ""), proved}, 1, 1, 1, 1, 0, 1},
		{"the period's end cuts when earlier", before.Add(time.Minute), []report.Row{proved, row(before.Add(time.Hour), "missed", false, false, "")}, 1, 1, 1, 1, 0, 1},
		{"the report's time cuts when earlier", after.Add(time.Hour), []report.Row{proved, planned}, 1, 1, 1, 1, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sum := report.NewSummary(report.Filter{To: c.to}, gen)
			for _, r := range c.rows {
				sum.Add(r)
			}
			if sum.Due != len(c.rows) || sum.Owed != c.owed || sum.Pending != c.pending || sum.Counted != c.counted ||
				sum.SentAndProved != c.proved || sum.CoveredByAscio != c.covered {
				t.Errorf("due %d, owed %d, pending %d, counted %d, sent and proved %d, covered %d; want %d, %d, %d, %d, %d, %d",
					sum.Due, sum.Owed, sum.Pending, sum.Counted, sum.SentAndProved, sum.CoveredByAscio,
					len(c.rows), c.owed, c.pending, c.counted, c.proved, c.covered)
			}
			rate, ok := sum.Rate()
			if ok != (c.rate >= 0) || (ok && rate != c.rate) {
				t.Errorf("rate %v, %v; want %v", rate, ok, c.rate)
			}
		})
	}
}

// TestHTMLHeader: the page states its period in words, open or closed,
// and where its count stops; a notice whose deadline is to come shows
// "pending", not a red "no".
func TestHTMLHeader(t *testing.T) {
	s := reporttest.Seed(t)
	from, to := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		f         report.Filter
		generated time.Time
		want      []string
	}{
		{"closed", report.Filter{From: from, To: to}, generated(), []string{
			"Notices whose deadline is on or after 2025-01-01 00:00:00Z and before 2025-04-01 00:00:00Z.",
			"deadline is before 2025-04-01 00:00:00Z (the end of the period)"}},
		{"open", report.Filter{}, generated(), []string{
			"Every notice in the store, whatever its deadline (no period given).",
			"deadline is before 2025-06-01 12:00:00Z (when this report was generated"}},
		{"from only", report.Filter{From: from}, generated(), []string{"Notices whose deadline is on or after 2025-01-01 00:00:00Z (no end given)."}},
		{"to only, report made before its end", report.Filter{To: to}, time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC), []string{
			"Notices whose deadline is before 2025-04-01 00:00:00Z (no start given).",
			"deadline is before 2025-02-10 00:00:00Z (when this report was generated, before the end of the period)",
			`<td class="pending">pending</td>`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			sum, err := report.Write(&buf, s.DB, c.f, report.HTML, c.generated)
			if err != nil {
				t.Fatal(err)
			}
			page := buf.String()
			if strings.Contains(page, "open") && strings.Contains(page, "[open") {
				t.Errorf("page states the period as [open, ...)")
			}
			for _, w := range c.want {
				if !strings.Contains(page, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			// A pending row never shows a red "no" for what is still to come.
			if sum.Pending > 0 && strings.Count(page, `class="pending"`) == 0 {
				t.Errorf("%d pending notices, none shown as pending", sum.Pending)
			}
		})
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
	for _, want := range []string{`id="summary"`, "Compliance rate", "26.7%", "<svg", "<rect", "bücher.com", "renewed: new expiry 2026-03-01T00:00:00Z"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
}
