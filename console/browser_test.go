package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestPagesInBrowser renders the overview and a domain page of the seeded
// store, as of its end (June 2025, so the chart's months hold notices), in
// headless Chromium: the chart has its twelve bars, the timeline its
// Message-IDs. With ERRPD_CONSOLE_SCREENSHOTS=DIR the screenshots are
// kept there (docs/console-*.png are made so).
func TestPagesInBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is missing (apt-get install chromium)")
		}
		t.Skip("chromium is missing")
	}
	b := setup(t, false)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	dir := os.Getenv("ERRPD_CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shoot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if len(png) < 10000 {
			t.Errorf("%s: %d bytes, the page did not render", name, len(png))
		}
		os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(b.srv.URL+"/"),
		chromedp.SendKeys("#login-user", "alice"),
		chromedp.SendKeys("#login-password", "correct horse"),
		chromedp.Click("#login-submit"),
		chromedp.WaitVisible("#compliance-chart"))
	if err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#compliance-chart .bar .value")].map(e => e.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(bars) != 12 || bars[0] != "–" || !strings.HasSuffix(bars[8], "%") {
		t.Errorf("chart bars %q: want 12, July 2024 empty, February 2025 with a rate", bars)
	}
	shoot("console-overview")

	if err := chromedp.Do(ctx, chromedp.Navigate(b.srv.URL+"/domains/xn--bcher-kva.com"), chromedp.WaitVisible("#step-reminder1")); err != nil {
		t.Fatal(err)
	}
	row, err := chromedp.Run(ctx, chromedp.Text("#step-reminder1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(row, "@errpd.example.net>") || !strings.Contains(row, "proved") {
		t.Errorf("bücher.com reminder1 row: %q", row)
	}
	shoot("console-domain")
}
