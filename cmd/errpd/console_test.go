package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/errpd/errpd/internal/browsertest"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// consoleDaemon is errpd serve, in process, with the console on and a
// seeded store; stop ends it before the test does, to read the store.
type consoleDaemon struct {
	cfg, console string
	logs         *syncBuffer
	stop         func()
}

// startConsoleDaemon starts it; httpKeys go into [http], consoleKeys
// into [console], scheme is the console's (http or https).
func startConsoleDaemon(t *testing.T, httpKeys, consoleKeys, scheme string) *consoleDaemon {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeServeConfig(t, httpKeys+fmt.Sprintf("[console]\nlisten = \"127.0.0.1:0\"\nusers = { alice = %q }\n", hash)+consoleKeys)
	s := reporttest.SeedAt(t, filepath.Join(filepath.Dir(cfg), "errpd.db"))
	s.DB.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	d := &consoleDaemon{cfg: cfg, logs: &syncBuffer{}}
	go func() { done <- run(ctx, []string{"serve", "--config", cfg}, &bytes.Buffer{}, d.logs) }()
	stopped := false
	d.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v\n%s", err, d.logs)
		}
	}
	t.Cleanup(d.stop)
	waitFor(t, "serve to start", func() bool { return strings.Contains(d.logs.String(), "errpd serving") })
	for _, line := range strings.Split(d.logs.String(), "\n") {
		var rec struct{ Msg, Console string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "errpd serving" {
			d.console = scheme + "://" + rec.Console
		}
	}
	if d.console == scheme+"://" {
		t.Fatalf("serve logged no console address:\n%s", d.logs)
	}
	return d
}

// stepCounts counts `errpd steps --json` by state (forwarded to the
// running daemon, as an operator's shell would).
func stepCounts(t *testing.T, cfg string) map[string]int {
	t.Helper()
	out, errOut, err := errpd(t, context.Background(), "steps", "--config", cfg, "--json")
	if err != nil {
		t.Fatalf("errpd steps: %v\n%s", err, errOut)
	}
	counts := map[string]int{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var s store.Step
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		counts[string(s.State)]++
	}
	return counts
}

// TestConsoleInBrowser drives the console of a running errpd serve in
// headless Chromium: refused without a session, log in, overview counts
// equal to `errpd steps`, find and open a domain, resolve its in-doubt
// notice with a note, a cross-origin POST refused; then the audit
// record of the action names the console user.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 90*time.Second)
	d := startConsoleDaemon(t, "", "", "http")
	doubt := store.StepID("doubt.info", reporttest.Expiry(), scheduler.Reminder2)
	failed := store.StepID("failed.com", reporttest.Expiry(), scheduler.Reminder1)

	// Without a session every page leads to the login form.
	browsertest.Do(t, ctx, chromedp.Navigate(d.console+"/domains/doubt.info"), chromedp.WaitVisible("#login-user"))
	loc := browsertest.Get(t, ctx, chromedp.Location())
	if u, _ := url.Parse(loc); u.Path != "/login" || u.Query().Get("next") != "/domains/doubt.info" {
		t.Errorf("without a session: at %s, want the login form", loc)
	}
	browsertest.Screenshot(t, ctx, "console-login")

	// Log in; the form sends us to the page asked for.
	browsertest.Do(t, ctx,
		chromedp.SendKeys("#login-user", "alice"),
		chromedp.SendKeys("#login-password", "correct horse"))
	browsertest.Follow(t, ctx, "#login-submit")
	browsertest.Do(t, ctx, chromedp.WaitVisible("#step-reminder2"))
	user := browsertest.Get(t, ctx, chromedp.Text("#user"))
	if user != "alice" {
		t.Errorf("logged in as %q, want alice", user)
	}

	// The overview's counts are `errpd steps`'s. The daemon's first
	// sweep may still move steps: read until two CLI counts agree around
	// the page's.
	for try := 0; ; try++ {
		before := stepCounts(t, d.cfg)
		browsertest.Do(t, ctx, chromedp.Navigate(d.console+"/"), chromedp.WaitVisible("#states"))
		shown := browsertest.Get(t, ctx, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll("#states td[data-state]")].map(td => [td.dataset.state, td.textContent]))`))
		after := stepCounts(t, d.cfg)
		if fmt.Sprint(before) != fmt.Sprint(after) && try < 5 {
			continue
		}
		for _, st := range scheduler.States {
			if want := fmt.Sprint(after[string(st)]); shown[string(st)] != want {
				t.Errorf("overview shows %s = %q, errpd steps counts %s", st, shown[string(st)], want)
			}
		}
		if after["in_doubt"] != 1 || after["failed"] != 1 {
			t.Errorf("seeded store: %v, want one in doubt and one failed", after)
		}
		break
	}
	attention := browsertest.Get(t, ctx, chromedp.Text("#attention"))
	if !strings.Contains(attention, "doubt.info") || !strings.Contains(attention, "failed.com") {
		t.Errorf("needs an operator lacks doubt.info or failed.com:\n%s", attention)
	}
	browsertest.Screenshot(t, ctx, "console-overview")

	// Find the domain through the search, open it.
	browsertest.Do(t, ctx, chromedp.Navigate(d.console+"/domains"), chromedp.SendKeys("#domain-q", "doubt"))
	browsertest.Follow(t, ctx, "#domain-search")
	browsertest.Follow(t, ctx, `#domains a[href="/domains/doubt.info"]`)
	browsertest.Do(t, ctx, chromedp.WaitVisible("#step-reminder2"))
	state := browsertest.Get(t, ctx, chromedp.AttributeValue("#step-reminder2 .badge", "data-state")).Value
	if state != "in_doubt" {
		t.Fatalf("doubt.info reminder2 shows %q, want in_doubt", state)
	}
	browsertest.Screenshot(t, ctx, "console-domain")

	// The preview is errpd preview's, rendered by the daemon's templates.
	browsertest.Follow(t, ctx, "#preview")
	browsertest.Do(t, ctx, chromedp.WaitVisible("#preview-text"))
	if text := browsertest.Get(t, ctx, chromedp.Text("#preview-text")); !strings.Contains(text, "Subject: ") || !strings.Contains(text, "doubt.info") {
		t.Errorf("preview of doubt.info reminder1:\n%s", text)
	}
	browsertest.Screenshot(t, ctx, "console-preview")
	browsertest.Do(t, ctx, chromedp.Navigate(d.console+"/domains/doubt.info"), chromedp.WaitVisible("#step-reminder2"))

	// Resolve it: mark it sent, with a note.
	browsertest.Do(t, ctx, chromedp.SendKeys("#step-reminder2 input[name=note]", "relay log shows 250 for it"))
	browsertest.Follow(t, ctx, "#step-reminder2 button.action-sent")
	browsertest.Do(t, ctx, chromedp.WaitVisible("#flash"))
	flash := browsertest.Get(t, ctx, chromedp.Text("#flash"))
	state = browsertest.Get(t, ctx, chromedp.AttributeValue("#step-reminder2 .badge", "data-state")).Value
	if state != "sent" || !strings.Contains(flash, "Mark sent recorded") {
		t.Errorf("after mark sent: state %q, flash %q", state, flash)
	}
	browsertest.Screenshot(t, ctx, "console-resolved")

	// A page of another origin posts to the console with alice's cookie
	// (same site, so SameSite=Strict sends it): refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/resolve"><input type="hidden" name="step" value="%s">
<input type="hidden" name="action" value="retry"><input type="hidden" name="note" value="evil"><button id="go">go</button></form>`, d.console, failed)
	}))
	defer evil.Close()
	// The refusal is plain text, which Chromium shows in a <pre>.
	browsertest.Do(t, ctx, chromedp.Navigate(evil.URL))
	browsertest.Follow(t, ctx, "#go")
	browsertest.Do(t, ctx, chromedp.WaitVisible("pre"))
	loc = browsertest.Get(t, ctx, chromedp.Location())
	body := browsertest.Get(t, ctx, chromedp.Text("body"))
	if !strings.Contains(body, "cross-origin request refused") {
		t.Errorf("cross-origin POST: at %s, page says %q", loc, body)
	}

	// A fresh browser profile has no session: refused too.
	fresh, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	browsertest.Do(t, fresh, chromedp.Navigate(d.console+"/"), chromedp.WaitVisible("#login-user"))
	loc = browsertest.Get(t, fresh, chromedp.Location())
	if !strings.Contains(loc, "/login") {
		t.Errorf("a new browser context reached %s", loc)
	}

	// The store's audit trail records the action with alice's name; the
	// cross-origin retry left failed.com alone.
	d.stop()
	db, err := store.Open(filepath.Join(filepath.Dir(d.cfg), "errpd.db"), store.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var found bool
	db.View(func(tx *store.Tx) error {
		if s, _, _ := tx.Step(failed); s.State != scheduler.StateFailed {
			t.Errorf("%s is %s after the cross-origin POST, want failed", failed, s.State)
		}
		return tx.Audit(0, func(r store.Record) error {
			if r.Step == doubt && r.To == scheduler.StateSent {
				found = true
				if want := "marked delivered by operator (console user alice): relay log shows 250 for it"; r.Detail != want {
					t.Errorf("audit detail %q, want %q", r.Detail, want)
				}
			}
			return nil
		})
	})
	if !found {
		t.Errorf("no audit record of %s becoming sent", doubt)
	}
}

// TestHashPassword: the printed hash is bcrypt's of the line on stdin,
// and a config with it loads.
func TestHashPassword(t *testing.T) {
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut, nil, nil, nil)
	root.SetIn(strings.NewReader("correct horse\n"))
	root.SetArgs([]string{"hash-password"})
	if err := root.Execute(); err != nil {
		t.Fatalf("hash-password: %v\n%s", err, errOut.String())
	}
	hash := strings.TrimSpace(out.String())
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse")); err != nil {
		t.Fatalf("%q is not the password's hash: %v", hash, err)
	}
	cfg := writeServeConfig(t, fmt.Sprintf("[console]\nusers = { alice = %q, bob = \"plain text\" }\n", hash))
	_, errOut2, err := errpd(t, context.Background(), "steps", "--config", cfg)
	if err == nil || !strings.Contains(err.Error()+errOut2, "console.users.bob is not a bcrypt hash") || strings.Contains(err.Error(), "plain text") {
		t.Errorf("a config with a clear-text password: %v", err)
	}

	root = newRootCmd(&out, &errOut, nil, nil, nil)
	root.SetIn(strings.NewReader(""))
	root.SetArgs([]string{"hash-password"})
	if err := root.Execute(); err == nil {
		t.Error("an empty stdin gave a hash")
	}
}

// TestConsoleListener: over TLS (console.cert_file, key_file) the session
// cookie is Secure; the console's listener has http.max_header_bytes; a
// console without users stays off.
func TestConsoleListener(t *testing.T) {
	dir := t.TempDir()
	writeSelfSigned(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	d := startConsoleDaemon(t, "max_header_bytes = 4096\n",
		fmt.Sprintf("cert_file = %q\nkey_file = %q\n", filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")), "https")
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the test's own certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, _ := http.NewRequest("POST", d.console+"/login", strings.NewReader("user=alice&password=correct+horse"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if c := resp.Cookies(); resp.StatusCode != http.StatusSeeOther || len(c) != 1 || !c[0].Secure {
		t.Errorf("login over TLS: %s, cookies %+v; want 303 and a Secure cookie", resp.Status, c)
	}
	// On a new connection: net/http checks the header cap on a
	// connection's first request only (a keep-alive connection's next
	// request with the same header got 200).
	client.CloseIdleConnections()
	req, _ = http.NewRequest("GET", d.console+"/login", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 8192))
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an 8 KiB header on the console: %s %s, want 431", resp.Proto, resp.Status)
	}

	cfg := writeServeConfig(t, "[console]\nlisten = \"127.0.0.1:0\"\n")
	logs := serveInProcess(t, cfg).String()
	if !strings.Contains(logs, "console off: no [console] users") || !strings.Contains(logs, `"console":""`) {
		t.Errorf("a console without users:\n%s", logs)
	}
}

func writeSelfSigned(t *testing.T, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}
