package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `errpd templates check` passes the built-in set and names a partner
// file that leaves out a required fact.
func TestTemplatesCheck(t *testing.T) {
	out, _, err := errpd(t, context.Background(), "templates", "check")
	if err != nil || !strings.Contains(out, "templates ok") {
		t.Fatalf("built-in set: %v\n%s", err, out)
	}

	dir := t.TempDir()
	tpl := filepath.Join(dir, "tpl", "default", "fr")
	os.MkdirAll(tpl, 0o750)
	for ext, text := range map[string]string{
		".subject": "Avis {{.DomainUnicode}}\n",
		".txt":     "{{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.RenewalURL}} {{.Support}}\n",
		".html":    "<p>{{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.RenewalURL}} {{.FeesURL}} {{.Support}}</p>\n",
	} {
		os.WriteFile(filepath.Join(tpl, "renew-reminder1"+ext), []byte(text), 0o600)
	}
	cfg := filepath.Join(dir, "errpd.toml")
	os.WriteFile(cfg, []byte("[templates]\ndir = \"tpl\"\nlint = \"warn\"\n"), 0o600)
	out, _, err = errpd(t, context.Background(), "templates", "check", "--config", cfg)
	want := filepath.Join(tpl, "renew-reminder1.txt") + " does not use the required fact: .FeesURL"
	if err == nil || exitCode(err) != 1 || !strings.Contains(out, want) {
		t.Errorf("check (exit %d, %v), want %q in:\n%s", exitCode(err), err, want, out)
	}
	if strings.Contains(out, "renew-reminder1.html") {
		t.Errorf("the HTML, which uses every fact, is named:\n%s", out)
	}
}
