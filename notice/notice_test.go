package notice

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jordan-wright/email"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func renderer(t *testing.T, dir string) *Renderer {
	t.Helper()
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &Renderer{
		Set:  set,
		Mail: config.Mail{From: "Example Domains <renewals@example.net>", Language: "en", Zone: "Europe/Berlin"},
		Brands: map[string]config.Brand{"acme": {Name: "ACME Names", From: "ACME <notices@acme.example>",
			Language: "de", RenewalURL: "https://acme.example/renew", FeesURL: "https://acme.example/fees", Support: "+49 30 1234"}},
		EnvelopeFrom: "bounces@errp.example.net",
		Now:          func() time.Time { return now },
	}
}

func step(domain string, n scheduler.Notice, mode scheduler.Mode, brand, lang string) (store.Step, store.Cycle) {
	exp := now.Add(30 * scheduler.Day)
	return store.Step{ID: store.StepID(domain, exp, n), Domain: domain, Expiry: exp, Notice: n},
		store.Cycle{Mode: mode, Brand: brand, Registrant: store.Registrant{Name: "Bea Beispiel", Email: "bea@example.org", Language: lang}}
}

func TestRenderIDNAndModes(t *testing.T) {
	r := renderer(t, "")
	for _, tc := range []struct {
		notice  scheduler.Notice
		mode    scheduler.Mode
		subject string
		body    string
	}{
		{scheduler.Reminder1, scheduler.ModeRenew, "bücher.example renews automatically on 22 December 2026", "set to renew automatically"},
		{scheduler.Reminder2, scheduler.ModeExpire, "bücher.example expires on 22 December 2026", "NOT set to renew"},
		{scheduler.Reminder3, scheduler.ModeExpire, "bücher.example has expired", "You can still renew it"},
		{scheduler.Suspension, scheduler.ModeExpire, "bücher.example has been suspended", "suspended"},
	} {
		s, c := step("xn--bcher-kva.example", tc.notice, tc.mode, "", "")
		m, err := r.Render(s, c)
		if err != nil {
			t.Fatal(err)
		}
		e, err := email.NewEmailFromReader(strings.NewReader(string(m.Raw)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.Subject, tc.subject) {
			t.Errorf("%s/%s subject %q lacks %q", tc.mode, tc.notice, e.Subject, tc.subject)
		}
		if !strings.Contains(string(e.Text), tc.body) || !strings.Contains(string(e.HTML), "<html>") {
			t.Errorf("%s/%s: text or HTML part missing", tc.mode, tc.notice)
		}
		msg, _ := mail.ReadMessage(strings.NewReader(string(m.Raw)))
		if raw := msg.Header.Get("Subject"); !strings.Contains(raw, "=?UTF-8?") {
			t.Errorf("non-ASCII subject not RFC 2047 encoded: %q", raw)
		}
		if msg.Header.Get("Message-ID") != m.MessageID || !strings.HasSuffix(m.MessageID, "@example.net>") {
			t.Errorf("Message-ID %q / %q", msg.Header.Get("Message-ID"), m.MessageID)
		}
		if !strings.Contains(string(m.Raw), "\r\n") || strings.Contains(strings.ReplaceAll(string(m.Raw), "\r\n", ""), "\n") {
			t.Error("message lines do not all end in CRLF")
		}
	}
	// The same step always gets the same Message-ID.
	s, c := step("example.com", scheduler.Reminder1, scheduler.ModeRenew, "", "")
	a, _ := r.Render(s, c)
	b, _ := r.Render(s, c)
	if a.MessageID != b.MessageID {
		t.Error("Message-ID is not derived from the step")
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOverridesPerBrandAndLanguage(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "acme", "de", "renew-reminder1.subject"), "{{.Brand}}: {{.DomainUnicode}} wird am {{.ExpiryDate}} verlängert")
	write(t, filepath.Join(dir, "acme", "de", "renew-reminder1.txt"), "Hallo {{.RegistrantName}}, {{.Support}}\n")
	r := renderer(t, dir)
	// A registrant in French of brand acme falls back to the brand's German.
	s, c := step("example.com", scheduler.Reminder1, scheduler.ModeRenew, "acme", "fr")
	m, err := r.Render(s, c)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := email.NewEmailFromReader(strings.NewReader(string(m.Raw)))
	if !strings.HasPrefix(e.Subject, "ACME Names: example.com wird am") || !strings.Contains(string(e.Text), "+49 30 1234") {
		t.Errorf("override not used: %q / %q", e.Subject, e.Text)
	}
	if m.From != "notices@acme.example" {
		t.Errorf("From %q, want the brand's", m.From)
	}
	// Another notice of the same brand falls back to the embedded set.
	s, c = step("example.com", scheduler.Reminder2, scheduler.ModeRenew, "acme", "de")
	m, _ = r.Render(s, c)
	e, _ = email.NewEmailFromReader(strings.NewReader(string(m.Raw)))
	if !strings.Contains(e.Subject, "renews automatically") {
		t.Errorf("fallback to embedded failed: %q", e.Subject)
	}
}

func TestBrokenTemplatesStopStartUp(t *testing.T) {
	for name, files := range map[string][2]string{
		"parse error":      {"{{.Brand", ":1:"},
		"unknown variable": {"{{.Nope}}", "Nope"},
		"header injection": {"{{.Brand}}\nBcc: x@evil.example", "CR or LF"},
	} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "default", "en", "renew-reminder1.subject"), files[0])
		write(t, filepath.Join(dir, "default", "en", "renew-reminder1.txt"), "text\n")
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "renew-reminder1.subject") || !strings.Contains(err.Error(), files[1]) {
			t.Errorf("%s: error %v, want one naming the file and %q", name, err, files[1])
		}
	}
}
