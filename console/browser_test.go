package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/errpd/errpd/internal/browsertest"
)

// TestPagesInBrowser renders the overview and a domain page of the seeded
// store, as of its end (June 2025, so the chart's months hold notices), in
// headless Chromium: the chart has its twelve bars, the timeline its
// Message-IDs. With ERRPD_CONSOLE_SCREENSHOTS=DIR the screenshots are
// kept there (docs/console-*.png are made so).
func TestPagesInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 60*time.Second)
	b := setup(t, false)
	browsertest.Do(t, ctx,
		chromedp.Navigate(b.srv.URL+"/"),
		chromedp.SendKeys("#login-user", "alice"),
		chromedp.SendKeys("#login-password", "correct horse"))
	browsertest.Follow(t, ctx, "#login-submit")
	browsertest.Do(t, ctx, chromedp.WaitVisible("#compliance-chart"))
	bars := browsertest.Get(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#compliance-chart .bar .value")].map(e => e.textContent)`))
	if len(bars) != 12 || bars[0] != "–" || !strings.HasSuffix(bars[7], "%") {
		t.Errorf("chart bars %q: want 12, July 2024 empty, February 2025 with a rate", bars)
	}
	browsertest.Screenshot(t, ctx, "console-overview")

	browsertest.Do(t, ctx, chromedp.Navigate(b.srv.URL+"/domains/xn--bcher-kva.com"), chromedp.WaitVisible("#step-reminder1"))
	row := browsertest.Get(t, ctx, chromedp.Text("#step-reminder1"))
	if !strings.Contains(row, "@errpd.example.net>") || !strings.Contains(row, "proved") || !strings.Contains(row, "after the deadline") {
		t.Errorf("bücher.com reminder1 row: %q", row)
	}
	browsertest.Screenshot(t, ctx, "console-domain")
}
