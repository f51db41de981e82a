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
		{"[http]\nmax_connections = 0\n", "http.max_connections"},
		{"[http]\nidle_timeout = \"0s\"\n", "http.idle_timeout"},
		{"[http]\nmax_header_bytes = 100\n", "http.max_header_bytes"},
		{"[ascio]\npoll_every = \"1m\"\n", "ascio.poll_every"},
		{"[ascio]\nendpoint = \"ftp://x\"\naccount = \"a\"\n", "ascio.endpoint"},
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

// TestSecrets: Load leaves the passwords alone (a command run from an
// operator's shell needs none); ReadSecrets, which serve calls, takes each
// from the environment, else systemd's credential, else the config's
// "file:PATH" or value, and refuses a peer without its password. A
// secret never prints.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	creds := t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "ascio.pw"), "s3cr3t-file\n")
	write(filepath.Join(creds, "errpd-smtp-password"), "s3cr3t-credential\n")
	path := filepath.Join(dir, "errpd.toml")
	write(path, `[smtp]
host = "relay.example.net"
username = "errpd"
password = "inline-pw"
[ascio]
endpoint = "https://aws.demo.ascio.com/v3/AscioService.svc"
account = "a"
password = ""
`)
	t.Setenv("ERRPD_SMTP_PASSWORD", "")
	t.Setenv("ERRPD_ASCIO_PASSWORD", "")
	t.Setenv(CredentialsEnv, creds)

	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load needs no password: %v", err)
	}
	_, err = c.ReadSecrets()
	if err == nil || !strings.Contains(err.Error(), "ascio.password is empty") || !strings.Contains(err.Error(), "errpd-ascio-password") {
		t.Errorf("ascio endpoint without a password: %v, want an error naming the key and the credential", err)
	}
	if c.SMTP.Password.Reveal() != "s3cr3t-credential" {
		t.Errorf("smtp password %q, want the credential's over the config's", c.SMTP.Password.Reveal())
	}

	write(path, "[smtp]\npassword = \"inline-pw\"\n[ascio]\npassword = \"file:ascio.pw\"\n")
	t.Setenv("ERRPD_SMTP_PASSWORD", "from-env")
	c, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	from, err := c.ReadSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Password.Reveal() != "from-env" || from["smtp.password"] != "environment ERRPD_SMTP_PASSWORD" {
		t.Errorf("smtp password %q from %q, want the environment's over the credential", c.SMTP.Password.Reveal(), from["smtp.password"])
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

	// A credential that exists but cannot be read (here a folder) is an
	// error naming it, not a silent fall back to the config's value.
	os.Remove(filepath.Join(creds, "errpd-smtp-password"))
	os.Mkdir(filepath.Join(creds, "errpd-smtp-password"), 0o700)
	t.Setenv("ERRPD_SMTP_PASSWORD", "")
	c, _ = Load(path)
	if _, err := c.ReadSecrets(); err == nil || !strings.Contains(err.Error(), "credential errpd-smtp-password") {
		t.Errorf("unreadable credential: %v", err)
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
