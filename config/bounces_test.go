package config

import (
	"slices"
	"strings"
	"testing"
)

func TestBounces(t *testing.T) {
	long := strings.Repeat("b", maxVERPBase+1)
	_, err := Load(writeConfig(t, "[smtp]\nenvelope_from = \""+long+"@errp.example.net\"\n"))
	if err == nil || !strings.Contains(err.Error(), "smtp.envelope_from") || !strings.Contains(err.Error(), "31 octets") {
		t.Errorf("a local part of %d octets with verp: %v", len(long), err)
	}
	if _, err := Load(writeConfig(t, "[smtp]\nenvelope_from = \""+long+"@errp.example.net\"\n[bounces]\nverp = false\n")); err != nil {
		t.Errorf("the same without verp: %v", err)
	}
	_, err = Load(writeConfig(t, "[bounces]\nlisten = \"nowhere\"\nmax_message_bytes = 10\ntimeout = \"0s\"\ndomains = [\"a@b\"]\n"))
	for _, key := range []string{"bounces.listen", "bounces.max_message_bytes", "bounces.timeout", "bounces.domains"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
	c, err := Load(writeConfig(t, `
[smtp]
envelope_from = "bounces@Errp.Example.net"
[brands.acme]
from = "Acme <renew@acme.example>"
envelope_from = "b@bounce.acme.example"
renewal_url = "https://acme.example/renew"
fees_url = "https://acme.example/fees"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.BounceDomains(); !slices.Equal(got, []string{"errp.example.net", "bounce.acme.example"}) {
		t.Errorf("bounce domains %q", got)
	}
	c.Bounces.Domains = []string{"Mx.Example"}
	if got := c.BounceDomains(); !slices.Equal(got, []string{"mx.example"}) {
		t.Errorf("bounce domains as configured: %q", got)
	}
}
