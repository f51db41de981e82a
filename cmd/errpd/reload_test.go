package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReloadsTemplates: a running serve picks up changed templates on
// SIGHUP for the next notice; a broken set is refused and the one in use
// stays.
func TestSIGHUPReloadsTemplates(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "tpl", "default", "en")
	if err := os.MkdirAll(tpl, 0o750); err != nil {
		t.Fatal(err)
	}
	writeTemplates := func(body string) {
		t.Helper()
		// Every fact a renewal notice must tell (templates.RequiredFacts).
		facts := " {{.Domain}} {{.ExpiryDate}} {{.RenewalURL}} {{.FeesURL}} {{.Support}}"
		for ext, text := range map[string]string{
			".subject": "Renewal of {{.DomainUnicode}}",
			".txt":     body + " {{.DomainUnicode}}" + facts + "\n",
			".html":    "<p>" + body + " {{.DomainUnicode}}" + facts + "</p>\n",
		} {
			if err := os.WriteFile(filepath.Join(tpl, "renew-reminder1"+ext), []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeTemplates("Version one for")
	cfg := filepath.Join(dir, "errpd.toml")
	config := `templates = "tpl"
[store]
path = "errpd.db"
[http]
listen = "127.0.0.1:0"
[smtp]
outbox_dir = "outbox"
`
	os.WriteFile(cfg, []byte(config), 0o600)

	logs := serveInProcess(t, cfg)

	// A domain expiring in 30 days: its first notice is due now.
	expiry := time.Now().UTC().Add(30 * 24 * time.Hour).Format(time.RFC3339)
	importDomain := func(name string) {
		t.Helper()
		csv := filepath.Join(t.TempDir(), "calendar.csv")
		os.WriteFile(csv, fmt.Appendf(nil, "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n%s,%s,renew,Ann,ann@example.org,en,,\n", name, expiry), 0o600)
		if out, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv); err != nil {
			t.Fatalf("import %s: %v %s", name, err, out)
		}
	}
	// sent is the outbox message for a domain, once it is there.
	sent := func(name string) string {
		entries, _ := os.ReadDir(filepath.Join(dir, "outbox"))
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, "outbox", e.Name()))
			if strings.Contains(string(b), "Subject: Renewal of "+name) {
				return string(b)
			}
		}
		return ""
	}
	hup := func(wantLog string) {
		t.Helper()
		before := strings.Count(logs.String(), wantLog)
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, wantLog, func() bool { return strings.Count(logs.String(), wantLog) > before })
	}

	importDomain("one.example")
	waitFor(t, "one.example's notice", func() bool { return sent("one.example") != "" })
	if m := sent("one.example"); !strings.Contains(m, "Version one for one.example") {
		t.Fatalf("first notice does not use the first templates:\n%s", m)
	}

	writeTemplates("Version two for")
	os.WriteFile(cfg, []byte(config+`[mail]
from = "Version Two <two@example.net>"
`), 0o600)
	hup("reloaded templates")
	// Commands the daemon runs see the reloaded [mail] too.
	if out, _, err := errpd(t, context.Background(), "preview", "--config", cfg, "--domain", "one.example", "--raw"); err != nil || !strings.Contains(out, "From: \"Version Two\" <two@example.net>") {
		t.Errorf("preview through the daemon after SIGHUP (%v):\n%s", err, out)
	}
	importDomain("two.example")
	waitFor(t, "two.example's notice", func() bool { return sent("two.example") != "" })
	if m := sent("two.example"); !strings.Contains(m, "Version two for two.example") {
		t.Fatalf("notice after SIGHUP does not use the new templates:\n%s", m)
	}

	// A broken set is refused, naming the file; the set in use stays.
	os.WriteFile(filepath.Join(tpl, "renew-reminder1.txt"), []byte("Broken {{.NoSuchVariable}}\n"), 0o600)
	hup("reload refused")
	if !strings.Contains(logs.String(), "renew-reminder1.txt") {
		t.Errorf("the refusal does not name the broken file:\n%s", logs)
	}
	// So is one that leaves out a fact ERRP requires (templates.lint =
	// "refuse", the default).
	writeTemplates("Version two for")
	os.WriteFile(filepath.Join(tpl, "renew-reminder1.txt"), []byte("No URL for {{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.FeesURL}} {{.Support}}\n"), 0o600)
	hup("reload refused")
	if !strings.Contains(logs.String(), "renew-reminder1.txt does not use the required fact: .RenewalURL") {
		t.Errorf("the refusal does not name the file and the missing fact:\n%s", logs)
	}
	importDomain("three.example")
	waitFor(t, "three.example's notice", func() bool { return sent("three.example") != "" })
	if m := sent("three.example"); !strings.Contains(m, "Version two for three.example") {
		t.Fatalf("after a refused reload the notice does not use the set in use:\n%s", m)
	}
}

// waitFor polls cond; it waits for goroutines and files, never for a day.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
