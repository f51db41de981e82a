package config

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// idnCCTLDsText is the embedded table of IDN ccTLDs; its header names the
// source.
//
//go:embed idn_cctlds.txt
var idnCCTLDsText string

// IDNCCTLD is one row of the embedded table.
type IDNCCTLD struct {
	ALabel  string // e.g. xn--p1ai
	Country string // ISO 3166 alpha-2 code, or EU
	ULabel  string // e.g. рф
}

// IDNCCTLDs parses the embedded table. The file is part of the binary, so
// a malformed row is a programming error that the package's tests catch.
func IDNCCTLDs() []IDNCCTLD {
	var out []IDNCCTLD
	for line := range strings.Lines(idnCCTLDsText) {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 3 {
			panic(fmt.Sprintf("config: idn_cctlds.txt: bad row %q", line))
		}
		out = append(out, IDNCCTLD{ALabel: f[0], Country: f[1], ULabel: f[2]})
	}
	return out
}

// idnCCTLDs is the set of A-labels, read once.
var idnCCTLDs = func() map[string]bool {
	m := map[string]bool{}
	for _, r := range IDNCCTLDs() {
		m[r.ALabel] = true
	}
	return m
}()

// IsCCTLD reports whether tld (an A-label, any case) is a country-code
// TLD: a two-letter ASCII TLD, or an IDN ccTLD from the embedded table.
func IsCCTLD(tld string) bool {
	tld = strings.ToLower(tld)
	return len(tld) == 2 || idnCCTLDs[tld]
}

// normalizeTLDs turns a scope list into lower-case A-labels (a partner may
// write "рф" or ".RF"), naming the key of an entry that is not a TLD.
func normalizeTLDs(key string, tlds []string) ([]string, error) {
	out := make([]string, 0, len(tlds))
	for _, t := range tlds {
		a, err := idna.Lookup.ToASCII(strings.TrimPrefix(strings.TrimSpace(t), "."))
		if err != nil || a == "" || strings.Contains(a, ".") {
			return nil, fmt.Errorf("%s: %q is not a top-level domain", key, t)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}
