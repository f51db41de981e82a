package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestResolveBrand(t *testing.T) {
	c := Default()
	c.Dir = "/etc/errpd"
	c.Mail.RenewalURL, c.Mail.FeesURL = "https://example.net/renew", "https://example.net/fees"
	c.Mail.DKIMKey, c.Mail.DKIMSelector = "dkim.pem", "s1"
	c.Brands = map[string]Brand{
		"same":  {Name: "Same", Support: "+1 555"},
		"other": {From: "Other <hello@other.example>", FeesURL: "https://other.example/fees", EnvelopeFrom: "b@bounces.other.example"},
	}
	got := c.ResolveBrand("same")
	want := ResolvedBrand{Key: "same", Name: "Same", From: c.Mail.From, EnvelopeFrom: c.SMTP.EnvelopeFrom, Language: "en",
		RenewalURL: c.Mail.RenewalURL, FeesURL: c.Mail.FeesURL, Support: "+1 555", DKIMKey: "/etc/errpd/dkim.pem", DKIMSelector: "s1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("same domain (-want +got):\n%s", diff)
	}
	// A brand on another domain does not inherit [mail]'s DKIM key: its
	// signature would not align.
	got = c.ResolveBrand("other")
	want = ResolvedBrand{Key: "other", Name: "Other", From: "Other <hello@other.example>", EnvelopeFrom: "b@bounces.other.example",
		Language: "en", RenewalURL: c.Mail.RenewalURL, FeesURL: "https://other.example/fees", Support: "hello@other.example"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("other domain (-want +got):\n%s", diff)
	}
	if got := c.ResolveBrand("unknown"); got.Key != "" || got.Name != "Example Domains" {
		t.Errorf("unknown brand: %+v", got)
	}
}

func TestValidateMail(t *testing.T) {
	c := Default()
	c.Mail.RenewalURL, c.Mail.FeesURL = "https://example.net/renew", ""
	c.Brands = map[string]Brand{"acme": {From: "not an address", FeesURL: "ftp://x", DKIMKey: "k.pem"}}
	err := c.ValidateMail()
	for _, want := range []string{"brands.acme.from", "brands.acme.fees_url", "brands.acme.dkim_key", "mail.fees_url is empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	c.Mail.FeesURL = "https://example.net/fees"
	c.Brands = map[string]Brand{"acme": {From: "ACME <a@acme.example>"}}
	if err := c.ValidateMail(); err != nil {
		t.Errorf("valid: %v", err)
	}
	for _, text := range []string{"[smtp]\nspf_check = \"maybe\"\n", "[smtp]\negress_ips = [\"300.1.1.1\"]\n", "[smtp]\nresolver = \"8.8.8.8\"\n", "[mail]\ndkim_key = \"k.pem\"\n"} {
		if _, err := Load(writeConfig(t, text)); err == nil {
			t.Errorf("config %q loaded", text)
		}
	}
}
