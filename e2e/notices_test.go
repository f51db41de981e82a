package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noticeConfig is a config for serve against the sink, without Ascio
// (uploads wait), with extra appended.
func noticeConfig(t *testing.T, dir, smtpAddr, extra string) string {
	t.Helper()
	host, port, _ := strings.Cut(smtpAddr, ":")
	cfg := fmt.Sprintf(`
[store]
path = "errpd.db"
[http]
listen = "127.0.0.1:%d"
[smtp]
host = %q
port = %s
[mail]
from = "Example Domains <renewals@example.net>"
zone = "Europe/Berlin"
renewal_url = "https://example.net/renew"
fees_url = "https://example.net/fees"
support = "support@example.net"
[log]
format = "json"
%s
`, freePort(t), host, port, extra)
	path := filepath.Join(dir, "errpd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// plainText is a message's decoded text/plain part and its headers.
func plainText(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := r.NextRawPart()
		if err != nil {
			t.Fatalf("no text/plain part: %v", err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			b, err := io.ReadAll(quotedprintable.NewReader(p))
			if err != nil {
				t.Fatal(err)
			}
			return m.Header, string(b)
		}
	}
}

// TestGermanNotice: a German registrant gets the German notice, with
// Content-Language: de and every fact ERRP wants in it; a registrant in a
// language without templates gets the brand's default language, and the
// step says so; an IDN ccTLD is out of scope.
func TestGermanNotice(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin := errpdBinary(t)
	sk := startSink(t)
	dir := t.TempDir()
	cfg := noticeConfig(t, dir, sk.addr, "")
	d := startErrpd(t, bin, cfg)

	cal := calendarCSV(t, dir, []string{
		"xn--bcher-kva.example," + day(5) + ",expire,Jürgen Müller,jm@example.org,de,,", // reminder2 due
		"ciao.example.com," + day(5) + ",expire,Giulia Rossi,giulia@example.org,it,,",   // no Italian: English
		"xn--80aswg.xn--p1ai," + day(5) + ",expire,Ivan,ivan@example.org,ru,,",          // .рф: a ccTLD
	})
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, cal); err != nil {
		t.Fatal(err)
	}
	// The relay answers once a message is whole: wait for both to be sent.
	for end := time.Now().Add(30 * time.Second); byState(steps(t, bin, cfg))["sent"] < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the notices were not sent\n%s", d.logs)
		}
	}
	byRcpt := map[string][]byte{}
	for _, m := range sk.messages(t) {
		byRcpt[m.rcpt] = m.body
	}

	h, text := plainText(t, byRcpt["jm@example.org"])
	if got := h.Get("Content-Language"); got != "de" {
		t.Errorf("Content-Language %q, want de", got)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if !strings.HasPrefix(subject, "Zweiter Ablaufhinweis: bücher.example läuft am ") {
		t.Errorf("subject %q", subject)
	}
	for _, want := range []string{
		"Guten Tag Jürgen Müller,", "Ihr Domainname bücher.example läuft",
		"xn--bcher-kva.example",              // A-label
		"Europe/Berlin",                      // the zone of every date
		"DNS-Auflösung", "Verlängerbar bis:", // .SuspensionDate, .RenewBy
		"https://example.net/renew", "https://example.net/fees", // how to renew, the fees (ERRP 4.1)
		"support@example.net", "Mit freundlichen Grüßen",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("German notice lacks %q:\n%s", want, text)
		}
	}

	h, text = plainText(t, byRcpt["giulia@example.org"])
	if got := h.Get("Content-Language"); got != "en" || !strings.Contains(text, "Dear Giulia Rossi,") {
		t.Errorf("Italian registrant: Content-Language %q, text:\n%s", got, text)
	}

	// The steps record the language, the fallback and the scope.
	out, err := errpdCmd(t, bin, "steps", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s struct {
			Domain           string `json:"domain"`
			Notice           string `json:"notice"`
			State            string `json:"state"`
			Reason           string `json:"reason"`
			Language         string `json:"language"`
			LanguageFallback string `json:"language_fallback"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatal(err)
		}
		if s.Notice != "reminder2" {
			continue
		}
		seen[s.Domain] = true
		switch s.Domain {
		case "xn--bcher-kva.example":
			if s.Language != "de" || s.LanguageFallback != "" {
				t.Errorf("German step: %+v", s)
			}
		case "ciao.example.com":
			if s.Language != "en" || s.LanguageFallback != "it" {
				t.Errorf("Italian step: %+v", s)
			}
		case "xn--80aswg.xn--p1ai":
			if s.State != "skipped" || !strings.Contains(s.Reason, "out of scope") {
				t.Errorf(".рф step: %+v", s)
			}
		}
	}
	if len(seen) != 3 {
		t.Errorf("reminder2 steps for %v, want three domains:\n%s", seen, out)
	}
	// The report shows the fallback.
	rep, err := errpdCmd(t, bin, "report", "--config", cfg, "--format", "csv", "--domain", "ciao.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep, "language,language_fallback") || !strings.Contains(rep, ",en,it,") {
		t.Errorf("report lacks the language fallback:\n%s", rep)
	}
	d.stop(t)
}

// TestServeRefusesTemplateWithoutRenewURL: a partner template that does
// not use .RenewalURL stops `errpd serve`, naming the file and the fact;
// `errpd templates check` says the same; with templates.lint = "warn"
// serve starts and logs it.
func TestServeRefusesTemplateWithoutRenewURL(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin := errpdBinary(t)
	dir := t.TempDir()
	tpl := filepath.Join(dir, "tpl", "default", "de")
	if err := os.MkdirAll(tpl, 0o750); err != nil {
		t.Fatal(err)
	}
	body := "{{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.FeesURL}} {{.Support}} {{.SuspensionDate}} {{.RenewBy}}\n"
	for ext, text := range map[string]string{
		".subject": "Ablaufhinweis {{.DomainUnicode}}\n",
		".txt":     "Verlängern Sie hier: https://example.net/hardcoded\n" + body,
		".html":    "<p>{{.RenewalURL}} " + body + "</p>\n",
	} {
		if err := os.WriteFile(filepath.Join(tpl, "expire-reminder1"+ext), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := noticeConfig(t, dir, "127.0.0.1:25", "[templates]\ndir = \"tpl\"\n")
	file := filepath.Join(dir, "tpl", "default", "de", "expire-reminder1.txt")

	out, err := combined(t, bin, "serve", "--config", cfg)
	if err == nil {
		t.Fatalf("serve started with a template without the renew URL:\n%s", out)
	}
	for _, want := range []string{file + " does not use the required fact: .RenewalURL", "templates.lint"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's error lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "expire-reminder1.html") {
		t.Errorf("the HTML, which has the URL, is named too:\n%s", out)
	}
	out, err = combined(t, bin, "templates", "check", "--config", cfg)
	if err == nil || !strings.Contains(out, file) || !strings.Contains(out, ".RenewalURL") {
		t.Errorf("templates check (%v):\n%s", err, out)
	}

	// lint = "warn": serve runs and says what is missing.
	cfg = noticeConfig(t, dir, "127.0.0.1:25", "[templates]\ndir = \"tpl\"\nlint = \"warn\"\n")
	d := startErrpd(t, bin, cfg)
	if !strings.Contains(d.logs.String(), "expire-reminder1.txt does not use the required fact: .RenewalURL") {
		t.Errorf("no warning in the log:\n%s", d.logs)
	}
	d.stop(t)
}

// combined runs a command of the binary that should end by itself and
// returns what it wrote to stdout and stderr.
func combined(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return string(out), err
}
