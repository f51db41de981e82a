package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "errpd.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExampleIsDefault holds config.example.toml and Default together: the
// example documents every default, so a running errpd with no config and
// one on the example behave alike.
func TestExampleIsDefault(t *testing.T) {
	got, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Dir = got.Dir
	if err := want.finish(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("config.example.toml differs from Default() (-default +example):\n%s", diff)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct{ text, want string }{
		{"[store]\npaht = \"x.db\"\n", "store.paht"},
		{"[smtp]\ntls = \"ssl\"\n", "smtp.tls"},
		{"[smtp]\nport = 0\n", "smtp.port"},
		{"[mail]\nfrom = \"not an address\"\n", "mail.from"},
		{"[http]\nallow_from = [\"10.0.0.300/8\"]\n", "http.allow_from"},
		{"[ascio]\npoll_every = \"1m\"\n", "ascio.poll_every"},
		{"[ascio]\nendpoint = \"ftp://x\"\naccount = \"a\"\n", "ascio.endpoint"},
		{"[ascio]\nendpoint = \"https://aws.demo.ascio.com/v3/aws.svc\"\naccount = \"a\"\n", "ascio.password is empty"},
		{"[policy]\nzone = \"Mars/Olympus\"\n", "policy.zone"},
		{"[policy.windows.reminder9]\nopens_days = -3\ndeadline_days = -1\n", "policy.windows.reminder9"},
		{"[policy.windows.reminder1]\nopens_days = -3\ndeadline_days = -5\n", "reminder1"},
		{"[log]\nformat = \"xml\"\n", "log.format"},
		{"[store]\npath = 5\n", "path"},
		{"[policy]\nrenew_url = \"https://x.example/\"\n", "policy.renew_url (how to renew and the fees are per brand: mail.renewal_url"},
		{"[mail]\nrenew_url = \"https://x.example/\"\n", "mail.renew_url (how to renew"},
	}
	for _, tc := range tests {
		_, err := Load(writeConfig(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %q: error %v, want one naming %q", tc.text, err, tc.want)
		}
	}
}

func TestRelativePathsAndPolicy(t *testing.T) {
	path := writeConfig(t, `
[store]
path = "data/errpd.db"
[policy]
send_hour = 9
zone = "Europe/Berlin"
[policy.windows.reminder2]
opens_days = -10
deadline_days = -4
`)
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(path), "data/errpd.db"); c.Store.Path != want {
		t.Errorf("store.path %q, want %q", c.Store.Path, want)
	}
	p, err := c.Policy.Scheduler()
	if err != nil {
		t.Fatal(err)
	}
	if p.SendHour != 9 || p.Zone.String() != "Europe/Berlin" {
		t.Errorf("send hour %d zone %s", p.SendHour, p.Zone)
	}
	if w := p.Windows[1]; w.Notice != "reminder2" || w.OpensDays != -10 || w.DeadlineDays != -4 || len(w.Modes) != 2 {
		t.Errorf("reminder2 window %+v", w)
	}
	if w := p.Windows[0]; w.OpensDays != -35 || w.DeadlineDays != -26 {
		t.Errorf("reminder1 window changed: %+v", w)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ascio.pw"), []byte("s3cr3t-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "errpd.toml")
	os.WriteFile(path, []byte("[smtp]\npassword = \"inline-pw\"\n[ascio]\npassword = \"file:ascio.pw\"\n"), 0o600)
	t.Setenv("ERRPD_SMTP_PASSWORD", "from-env")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Password.Reveal() != "from-env" {
		t.Errorf("smtp password %q, want the environment's", c.SMTP.Password.Reveal())
	}
	if c.Ascio.Password.Reveal() != "s3cr3t-file" {
		t.Errorf("ascio password %q, want the file's", c.Ascio.Password.Reveal())
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "password", c.Ascio.Password, "cfg", c)
	for _, out := range []string{
		fmt.Sprint(c.Ascio.Password), fmt.Sprintf("%v %+v %#v %q", c, c, c, c.SMTP.Password), logged.String(),
	} {
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "from-env") {
			t.Errorf("a secret leaked: %s", out)
		}
	}
}

func TestScope(t *testing.T) {
	s := Scope{Include: []string{"co"}, Exclude: []string{"xyz"}}
	for domain, want := range map[string]bool{
		"example.com": true, "example.de": false, "example.co": true, "example.xyz": false,
		"xn--bcher-kva.example": true, "example.co.uk": false,
	} {
		if got := s.InScope(domain); got != want {
			t.Errorf("InScope(%s) = %v, want %v", domain, got, want)
		}
	}
}

// The [templates] section, and the older top-level `templates = "DIR"`.
func TestTemplatesSection(t *testing.T) {
	c, err := Load(writeConfig(t, "templates = \"tpl\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(c.Templates.Dir) != "tpl" || !filepath.IsAbs(c.Templates.Dir) || c.Templates.Lint != "refuse" {
		t.Errorf("old shape: %+v", c.Templates)
	}
	c, err = Load(writeConfig(t, "[templates]\ndir = \"tpl\"\nlint = \"warn\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(c.Templates.Dir) != "tpl" || c.Templates.Lint != "warn" {
		t.Errorf("section: %+v", c.Templates)
	}
	for text, want := range map[string]string{
		"[templates]\nlint = \"off\"\n":   "templates.lint",
		"[templates]\ndri = \"x\"\n":      "templates.dri",
		"[templates]\ndir = 5\n":          "templates.dir",
		"[policy]\nredemption_days = 0\n": "policy.redemption_days",
		// suspension at +8, renewable only until +10: less than ERRP 2.2's 8 days
		"[policy]\nrenewal_grace_days = 10\n": "policy.renewal_grace_days",
	} {
		_, err := Load(writeConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: error %v, want one naming %q", text, err, want)
		}
	}
}
