package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"
)

// Bounces is how notices that come back are told apart and taken in.
type Bounces struct {
	// VERP gives each notice its own signed envelope sender,
	// local+TOKEN@domain of its envelope_from, so a bounce names its step.
	VERP bool `toml:"verp"`
	// Listen is the address of the SMTP listener the partner's MX
	// forwards bounce mail to; empty: none (errpd bounce reads a pipe).
	Listen string `toml:"listen"`
	// Domains are the domains whose recipients the listener accepts;
	// empty: those of smtp.envelope_from and the brands' envelope_from.
	Domains         []string      `toml:"domains"`
	MaxMessageBytes int           `toml:"max_message_bytes"`
	Timeout         time.Duration `toml:"timeout"` // per SMTP command on the listener
}

// maxVERPBase is the longest envelope local part whose VERP form (with
// "+" and a 32-character token) fits RFC 5321's 64 octets; bounce.MaxBase.
const maxVERPBase = 64 - 1 - 32

func (b Bounces) validate() error {
	var errs []error
	if b.Listen != "" {
		if _, _, err := net.SplitHostPort(b.Listen); err != nil {
			errs = append(errs, fmt.Errorf("bounces.listen %q is not host:port: %w", b.Listen, err))
		}
	}
	for _, d := range b.Domains {
		if d == "" || strings.ContainsAny(d, "@ \r\n") {
			errs = append(errs, fmt.Errorf("bounces.domains: %q is not a domain", d))
		}
	}
	if b.MaxMessageBytes < 1024 {
		errs = append(errs, fmt.Errorf("bounces.max_message_bytes %d is below 1024", b.MaxMessageBytes))
	}
	if b.Timeout <= 0 {
		errs = append(errs, errors.New("bounces.timeout must be positive"))
	}
	return errors.Join(errs...)
}

// validateVERP checks that every envelope sender's VERP form fits.
func (c Config) validateVERP() error {
	if !c.Bounces.VERP {
		return nil
	}
	var errs []error
	check := func(key, addr string) {
		local, _, _ := strings.Cut(addr, "@")
		if len(local) > maxVERPBase {
			errs = append(errs, fmt.Errorf("%s %q: with bounces.verp its local part may have %d octets at most (RFC 5321's 64, less a bounce token)", key, addr, maxVERPBase))
		}
	}
	check("smtp.envelope_from", c.SMTP.EnvelopeFrom)
	for _, name := range slices.Sorted(maps.Keys(c.Brands)) {
		if e := c.Brands[name].EnvelopeFrom; e != "" {
			check("brands."+name+".envelope_from", e)
		}
	}
	return errors.Join(errs...)
}

// BounceDomains are the domains the bounce listener accepts recipients
// under, lower-case.
func (c Config) BounceDomains() []string {
	var out []string
	add := func(d string) {
		d = strings.ToLower(strings.TrimSpace(d))
		if d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	if len(c.Bounces.Domains) > 0 {
		for _, d := range c.Bounces.Domains {
			add(d)
		}
		return out
	}
	domainOf := func(a string) string { return a[strings.LastIndexByte(a, '@')+1:] }
	add(domainOf(c.SMTP.EnvelopeFrom))
	for _, name := range slices.Sorted(maps.Keys(c.Brands)) {
		if e := c.Brands[name].EnvelopeFrom; e != "" {
			add(domainOf(e))
		}
	}
	return out
}
