package config

import (
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

// Every row of the embedded table is a real IDN ccTLD entry: its U-label
// converts to its A-label, and the country is a two-letter code.
func TestIDNCCTLDTable(t *testing.T) {
	rows := IDNCCTLDs()
	if len(rows) < 60 {
		t.Fatalf("only %d IDN ccTLDs in the table", len(rows))
	}
	seen := map[string]bool{}
	for _, r := range rows {
		a, err := idna.Lookup.ToASCII(r.ULabel)
		if err != nil || a != r.ALabel {
			t.Errorf("%s: U-label %s converts to %q (%v)", r.ALabel, r.ULabel, a, err)
		}
		if len(r.Country) != 2 || strings.ToUpper(r.Country) != r.Country {
			t.Errorf("%s: country %q", r.ALabel, r.Country)
		}
		if seen[r.ALabel] {
			t.Errorf("%s listed twice", r.ALabel)
		}
		seen[r.ALabel] = true
	}
	if !strings.Contains(idnCCTLDsText, "IANA Root Zone Database") {
		t.Error("the table does not name its source")
	}
}

func TestScopeDefaultsAndInclude(t *testing.T) {
	def := Default().Scope
	for domain, want := range map[string]bool{
		"example.com":          true,
		"xn--bcher-kva.shop":   true,
		"example.xn--80asehdb": true, // .онлайн is a gTLD
		"example.de":           false,
		"example.xn--p1ai":     false, // .рф, Russia
		"example.xn--fiqs8s":   false, // .中国, China
		"example.XN--P1AI":     false,
	} {
		if got := def.InScope(domain); got != want {
			t.Errorf("default scope: InScope(%s) = %v, want %v", domain, got, want)
		}
	}

	c, err := Load(writeConfig(t, "[scope]\ninclude = [\"рф\", \"co\"]\nexclude = [\".XN--80ASEHDB\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for domain, want := range map[string]bool{
		"example.xn--p1ai":     true, // included by its U-label
		"example.co":           true,
		"example.xn--fiqs8s":   false, // not included: still out
		"example.xn--80asehdb": false,
	} {
		if got := c.Scope.InScope(domain); got != want {
			t.Errorf("InScope(%s) = %v, want %v", domain, got, want)
		}
	}

	_, err = Load(writeConfig(t, "[scope]\ninclude = [\"a.b\"]\n"))
	if err == nil || !strings.Contains(err.Error(), `scope.include: "a.b"`) {
		t.Errorf("a name that is not a TLD: %v", err)
	}
}
