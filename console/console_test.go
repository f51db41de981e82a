package console_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/errpd/errpd/console"
	"github.com/errpd/errpd/evidence"
	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// bench is a console over the seeded report store, with a clock the test
// moves, a log it reads and a client without redirects.
type bench struct {
	srv    *httptest.Server
	db     *reporttest.Store
	logs   *syncBuffer
	mu     sync.Mutex
	now    time.Time
	client *http.Client
	h      *console.Server
}

func (b *bench) clock() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

func (b *bench) advance(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.now = b.now.Add(d)
}

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

func setup(t *testing.T, tls bool) *bench { return setupKey(t, tls, "") }

func setupKey(t *testing.T, tls bool, signingKey string) *bench {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{db: reporttest.Seed(t), logs: &syncBuffer{}, now: reporttest.End()}
	h, err := console.New(console.Options{
		DB: b.db.DB, Users: map[string]string{"alice": string(hash)}, SessionTTL: time.Hour,
		Log: slog.New(slog.NewTextHandler(b.logs, nil)), Now: b.clock,
		Build:      func(message.Input) (message.Message, error) { return message.Message{}, io.EOF },
		SigningKey: signingKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The overview shows the last background scan: make the first one now.
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	b.h = h
	if tls {
		b.srv = httptest.NewTLSServer(h)
		b.client = b.srv.Client()
	} else {
		b.srv = httptest.NewServer(h)
		b.client = &http.Client{}
	}
	t.Cleanup(b.srv.Close)
	jar, _ := cookiejar.New(nil)
	b.client.Jar = jar
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return b
}

// post sends a form as a same-origin browser would (Sec-Fetch-Site).
func (b *bench) post(t *testing.T, path string, form url.Values, site string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", site)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (b *bench) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := b.client.Get(b.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *bench) login(t *testing.T, password string) *http.Response {
	t.Helper()
	return b.post(t, "/login", url.Values{"user": {"alice"}, "password": {password}}, "same-origin")
}

// TestNoPageWithoutSession: every page but /login and the assets sends
// to the login form; a POST is refused.
func TestNoPageWithoutSession(t *testing.T) {
	b := setup(t, false)
	for _, p := range []string{"/", "/domains", "/domains/doubt.info", "/domains/doubt.info/preview?notice=reminder1",
		"/domains/doubt.info/evidence.zip", "/message.eml?step=proved.com/20250301T000000Z/reminder1", "/report", "/report/download?format=csv"} {
		resp, _ := b.get(t, p)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("GET %s without a session: %d %q, want 303 to /login", p, resp.StatusCode, loc)
		}
	}
	for _, p := range []string{"/login", "/static/style.css"} {
		if resp, _ := b.get(t, p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", p, resp.StatusCode)
		}
	}
	step := store.StepID("doubt.info", reporttest.Expiry(), scheduler.Reminder2)
	if resp := b.post(t, "/resolve", url.Values{"step": {step}, "action": {"sent"}, "note": {"x"}}, "same-origin"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /resolve without a session: %d, want 401", resp.StatusCode)
	}
	assertState(t, b, step, scheduler.StateInDoubt)
}

func assertState(t *testing.T, b *bench, id string, want scheduler.State) {
	t.Helper()
	b.db.DB.View(func(tx *store.Tx) error {
		if s, _, _ := tx.Step(id); s.State != want {
			t.Errorf("%s is %s, want %s", id, s.State, want)
		}
		return nil
	})
}

// TestLoginCookieAndLimit: a login sets an HttpOnly, SameSite=Strict
// cookie; five failures from one address hold the sixth try back (even
// with the right password) until the bucket refills, and each failure is
// logged.
func TestLoginCookieAndLimit(t *testing.T) {
	b := setup(t, false)
	for i := range 5 {
		if resp := b.login(t, "wrong"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, resp.StatusCode)
		}
	}
	if n := strings.Count(b.logs.String(), "console: login failed"); n != 5 {
		t.Errorf("%d failed logins logged, want 5:\n%s", n, b.logs)
	}
	if strings.Contains(b.logs.String(), "wrong") {
		t.Errorf("a password reached the log:\n%s", b.logs)
	}
	if resp := b.login(t, "correct horse"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("sixth try: %d, want 429", resp.StatusCode)
	}
	b.advance(12 * time.Second)
	resp := b.login(t, "correct horse")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the bucket refilled: %d, want 303", resp.StatusCode)
	}
	c := resp.Cookies()
	if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteStrictMode || c[0].Secure {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP", c)
	}
	if resp, _ := b.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("overview after login: %d", resp.StatusCode)
	}
	// The session ends after its time to live.
	b.advance(time.Hour)
	if resp, _ := b.get(t, "/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("overview after the session expired: %d, want 303", resp.StatusCode)
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	b := setup(t, true)
	b.client.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
	resp := b.login(t, "correct horse")
	if c := resp.Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("over TLS the session cookie is %+v, want Secure", c)
	}
}

// TestCrossOriginPostRefused: with a valid session, a POST from another
// origin is refused and changes nothing; the same POST from the console's
// own page settles the step, audited with the user's name.
func TestCrossOriginPostRefused(t *testing.T) {
	b := setup(t, false)
	b.login(t, "correct horse")
	step := store.StepID("doubt.info", reporttest.Expiry(), scheduler.Reminder2)
	form := url.Values{"step": {step}, "action": {"sent"}, "note": {"relay log"}}
	for _, site := range []string{"cross-site", "same-site"} {
		if resp := b.post(t, "/resolve", form, site); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST from %s: %d, want 403", site, resp.StatusCode)
		}
	}
	assertState(t, b, step, scheduler.StateInDoubt)
	if resp := b.post(t, "/resolve", url.Values{"step": {step}, "action": {"sent"}}, "same-origin"); !strings.Contains(resp.Header.Get("Location"), "error=") {
		t.Errorf("an action without a note was not refused: %s", resp.Header.Get("Location"))
	}
	assertState(t, b, step, scheduler.StateInDoubt)
	if resp := b.post(t, "/resolve", form, "same-origin"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "done=") {
		t.Errorf("same-origin POST: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	assertState(t, b, step, scheduler.StateSent)
	var detail string
	b.db.DB.View(func(tx *store.Tx) error {
		return tx.Audit(0, func(r store.Record) error {
			if r.Step == step && r.To == scheduler.StateSent {
				detail = r.Detail
			}
			return nil
		})
	})
	if want := "marked delivered by operator (console user alice): relay log"; detail != want {
		t.Errorf("audit detail %q, want %q", detail, want)
	}
}

// TestReportDownload: the CSV is errpd report's, for the period chosen.
func TestReportDownload(t *testing.T) {
	b := setup(t, false)
	b.login(t, "correct horse")
	resp, body := b.get(t, "/report/download?format=csv&from=2025-01-01&to=2025-04-01")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var want bytes.Buffer
	f := report.Filter{From: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := report.Write(&want, b.db.DB, f, report.CSV, b.clock()); err != nil {
		t.Fatal(err)
	}
	if body != want.String() {
		t.Errorf("console CSV differs from errpd report's:\n%s\nwant:\n%s", body, want.String())
	}
	for _, q := range []string{"format=pdf", "format=csv&from=2025-13-01", "format=csv&from=2025-04-01&to=2025-01-01"} {
		if resp, _ := b.get(t, "/report/download?"+q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", q, resp.StatusCode)
		}
	}
}

// TestOverviewChart: each month's bar is report.Summary's rate for the
// notices whose deadline falls in it; a month that owed nothing has none.
func TestOverviewChart(t *testing.T) {
	b := setup(t, false)
	b.login(t, "correct horse")
	_, page := b.get(t, "/")
	for _, m := range []time.Month{time.February, time.March} {
		f := report.Filter{From: time.Date(2025, m, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, m+1, 1, 0, 0, 0, 0, time.UTC)}
		sum, err := report.Write(io.Discard, b.db.DB, f, report.CSV, b.clock())
		if err != nil {
			t.Fatal(err)
		}
		rate, ok := sum.Rate()
		if !ok {
			t.Fatalf("%s owed nothing in the seed", m)
		}
		want := fmt.Sprintf(">%.1f%%<", rate*100)
		if !strings.Contains(page, want) {
			t.Errorf("%s 2025: the chart lacks the rate %s", m, want)
		}
	}
	if !strings.Contains(page, `class="bar none"`) || !strings.Contains(page, "<svg") {
		t.Errorf("no SVG chart with empty months:\n%s", page)
	}
}

// TestSearch: a part of a name lists the matches a page at a time; a
// whole name, in either form, opens the domain.
func TestSearch(t *testing.T) {
	b := setup(t, false)
	b.login(t, "correct horse")
	err := b.db.DB.Update(func(tx *store.Tx) error {
		for i := range 120 {
			d := store.Domain{Name: fmt.Sprintf("many%03d.org", i), Mode: scheduler.ModeRenew, Expiry: reporttest.Expiry().AddDate(2, 0, 0),
				Registrant: store.Registrant{Name: "R", Email: "r@example.org"}}
			if _, err := tx.Upsert(d, store.PlanOptions{Policy: scheduler.DefaultPolicy(), InScope: func(string) bool { return true }}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := b.get(t, "/domains?q="+url.QueryEscape("bücher.com"))
	if loc := resp.Header.Get("Location"); loc != "/domains/xn--bcher-kva.com" {
		t.Errorf("exact U-label: %d %q, want its page", resp.StatusCode, loc)
	}
	seen := map[string]bool{}
	next := "/domains?q=many"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("more than 3 pages for 120 domains")
		}
		_, page := b.get(t, next)
		next = ""
		for _, line := range strings.Split(page, "\n") {
			if i := strings.Index(line, `href="/domains/many`); i >= 0 {
				seen[line[i+15:i+26]] = true
			}
			if i := strings.Index(line, `href="/domains?q=many&amp;after=`); i >= 0 {
				next = strings.ReplaceAll(line[i+6:strings.Index(line[i+6:], `"`)+i+6], "&amp;", "&")
			}
		}
	}
	if len(seen) != 120 || !seen["many000.org"] || !seen["many119.org"] {
		t.Errorf("pages listed %d distinct domains, want all 120", len(seen))
	}
	if _, page := b.get(t, "/domains?q=com"); !strings.Contains(page, "bücher.com") || !strings.Contains(page, "failed.com") || strings.Contains(page, "doubt.info") {
		t.Errorf("search com:\n%s", page)
	}
}

// TestDownloads: a notice's .eml is the stored message byte for byte; the
// evidence zip verifies with the public key.
func TestDownloads(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := evidence.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "ev.key"), priv, 0o600)
	os.WriteFile(filepath.Join(dir, "ev.pub"), pub, 0o644)
	b := setupKey(t, false, filepath.Join(dir, "ev.key"))
	b.login(t, "correct horse")
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder1)
	resp, body := b.get(t, "/message.eml?step="+url.QueryEscape(id))
	if resp.StatusCode != http.StatusOK || body != string(reporttest.Raw(id)) || resp.Header.Get("Content-Type") != "message/rfc822" {
		t.Errorf(".eml: %s %s\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := b.get(t, "/message.eml?step="+url.QueryEscape(store.StepID("missed.org", reporttest.Expiry(), scheduler.Reminder1))); resp.StatusCode != http.StatusNotFound {
		t.Errorf(".eml of a notice never sent: %s, want 404", resp.Status)
	}
	resp, body = b.get(t, "/domains/proved.com/evidence.zip")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("evidence: %s", resp.Status)
	}
	key, err := evidence.LoadPublicKey(filepath.Join(dir, "ev.pub"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := evidence.Verify(strings.NewReader(body), int64(len(body)), key)
	if err != nil {
		t.Fatalf("the console's evidence zip does not verify: %v", err)
	}
	if len(m.Domains) != 1 || m.Domains[0] != "proved.com" {
		t.Errorf("evidence of %v", m.Domains)
	}
}

// TestOverviewDoesNotWaitForTheScan: before the first scan the overview
// answers at once, with the counters and without the chart, and starts
// the scan; once it ends the chart is there.
func TestOverviewDoesNotWaitForTheScan(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	s := reporttest.Seed(t)
	h, err := console.New(console.Options{DB: s.DB, Users: map[string]string{"a": string(hash)}, SessionTTL: time.Hour,
		Log: slog.New(slog.DiscardHandler), Now: reporttest.End})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	// Not following the login's redirect: the first overview is the test's.
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if _, err := c.PostForm(srv.URL+"/login", url.Values{"user": {"a"}, "password": {"pw"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="counting"`) || !strings.Contains(string(page), `data-state="in_doubt">1<`) {
		t.Errorf("first overview: want the counters and a note that the scan runs:\n%s", page)
	}
	// Refresh scans now (the background scan may still run) and
	// publishes its figures.
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	resp, err = c.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `id="compliance-chart"`) {
		t.Errorf("after the scan, no chart:\n%s", page)
	}
}

// TestBouncesShown: a notice that came back is listed as needing an
// operator (from the next scan), and the domain page shows the bounce on
// its step and the contact flag a hard bounce raised.
func TestBouncesShown(t *testing.T) {
	b := setup(t, false)
	b.login(t, "correct horse")
	step := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder1)
	err := b.db.DB.Update(func(tx *store.Tx) error {
		_, err := tx.RecordBounce(step, store.Bounce{Kind: store.BounceHard, Status: "5.1.1",
			Diagnostic: "550 5.1.1 <holder@proved.com>: Recipient address rejected", At: b.clock()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, page := b.get(t, "/"); strings.Contains(page, "bounced hard") {
		t.Fatal("a bounce shown before any scan saw it")
	}
	if err := b.h.Refresh(); err != nil {
		t.Fatal(err)
	}
	_, page := b.get(t, "/")
	if !strings.Contains(page, "bounced hard") || !strings.Contains(page, store.ContactFailedReason) {
		t.Errorf("the overview does not list the hard bounce with the contact flag:\n%s", page)
	}
	_, page = b.get(t, "/domains/proved.com")
	if !strings.Contains(page, `id="contact-flag"`) || !strings.Contains(page, "bounced (hard 5.1.1)") {
		t.Errorf("the domain page does not show the bounce and the flag:\n%s", page)
	}
}
