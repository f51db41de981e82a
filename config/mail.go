package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SMTP is the relay errpd hands its notices to. With no host, each message
// is written, exactly as it would be sent, into OutboxDir instead.
type SMTP struct {
	Host           string        `toml:"host"`
	Port           int           `toml:"port"`
	TLS            string        `toml:"tls"` // none | starttls | tls
	Username       string        `toml:"username"`
	Password       Secret        `toml:"password"` // or "file:PATH", credential errpd-smtp-password, ERRPD_SMTP_PASSWORD
	EnvelopeFrom   string        `toml:"envelope_from"`
	OutboxDir      string        `toml:"outbox_dir"`
	Timeout        time.Duration `toml:"timeout"`
	MaxConnections int           `toml:"max_connections"`
	// Helo is the name errpd gives in EHLO; empty: the machine's host name.
	Helo string `toml:"helo"`

	// EgressIPs are the addresses the relay sends from, which the envelope
	// domain's SPF record must allow. Empty: SPF itself is not checked, only
	// alignment, DMARC and DKIM.
	EgressIPs []string `toml:"egress_ips"`
	// Resolver is a DNS server ("host:port") for the SPF, DMARC and DKIM
	// checks; empty: the system's.
	Resolver string `toml:"resolver"`
	// SPFCheck decides what a failing mail authentication check at start-up
	// does: "warn" (the default, also when empty) logs it, "refuse" stops
	// errpd, "off" skips the check (errpd check-spf still runs it).
	SPFCheck string `toml:"spf_check"`
}

// Mail is what the notices say about their sender: the identity of domains
// without a brand, and the defaults every brand falls back to.
type Mail struct {
	From     string `toml:"from"`
	ReplyTo  string `toml:"reply_to"`
	Language string `toml:"language"` // default language of the notices
	Zone     string `toml:"zone"`     // zone in which dates are written in notices

	Name       string `toml:"name"`        // shown to registrants; empty: From's display name
	RenewalURL string `toml:"renewal_url"` // where the registrant renews or restores
	FeesURL    string `toml:"fees_url"`    // published renewal and restore fees (ERRP 4.1)
	Support    string `toml:"support"`     // support contact; empty: the From address

	// DKIMKey is a PEM private key (RSA or Ed25519) that signs the notices
	// for From's domain under DKIMSelector; empty: no DKIM signature.
	DKIMKey      string `toml:"dkim_key"`
	DKIMSelector string `toml:"dkim_selector"`
}

// Brand is one of the partner's brands: its sender identity and the facts
// its notices quote. Brands are keyed by the name used in the calendar's
// brand column; a domain with no brand uses the [mail] section's sender.
// Every empty field falls back to the [mail] (or [smtp]) section's value.
type Brand struct {
	Name       string `toml:"name"`        // shown to registrants
	From       string `toml:"from"`        // header From; empty: mail.from
	ReplyTo    string `toml:"reply_to"`    // empty: mail.reply_to
	Language   string `toml:"language"`    // brand's default language; empty: mail.language
	RenewalURL string `toml:"renewal_url"` // where the registrant renews or restores
	FeesURL    string `toml:"fees_url"`    // published renewal and restore fees (ERRP 4.1)
	Support    string `toml:"support"`     // support contact, e.g. an address or phone

	// EnvelopeFrom is the brand's MAIL FROM; empty: smtp.envelope_from. A
	// brand on its own domain needs one on that domain for SPF to align.
	EnvelopeFrom string `toml:"envelope_from"`
	// DKIMKey and DKIMSelector sign for the brand's From domain; empty:
	// mail.dkim_key, but only when the brand sends from mail.from's domain
	// (a signature for another domain would not align).
	DKIMKey      string `toml:"dkim_key"`
	DKIMSelector string `toml:"dkim_selector"`
}

func (s SMTP) validate() error {
	var errs []error
	if !slices.Contains([]string{"none", "starttls", "tls"}, s.TLS) {
		errs = append(errs, fmt.Errorf("smtp.tls %q is not none, starttls or tls", s.TLS))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp.port %d is not a port", s.Port))
	}
	if _, err := mail.ParseAddress(s.EnvelopeFrom); err != nil {
		errs = append(errs, fmt.Errorf("smtp.envelope_from %q: %w", s.EnvelopeFrom, err))
	}
	if s.Host == "" && s.OutboxDir == "" {
		errs = append(errs, errors.New("smtp.outbox_dir is empty while smtp.host is empty"))
	}
	if s.Timeout <= 0 {
		errs = append(errs, errors.New("smtp.timeout must be positive"))
	}
	if s.MaxConnections < 1 {
		errs = append(errs, errors.New("smtp.max_connections must be at least 1"))
	}
	if strings.ContainsAny(s.Helo, " \r\n") {
		errs = append(errs, fmt.Errorf("smtp.helo %q is not a host name", s.Helo))
	}
	for _, ip := range s.EgressIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("smtp.egress_ips: %q is not an IP address", ip))
		}
	}
	if s.Resolver != "" {
		if _, _, err := net.SplitHostPort(s.Resolver); err != nil {
			errs = append(errs, fmt.Errorf("smtp.resolver %q is not host:port: %w", s.Resolver, err))
		}
	}
	if !slices.Contains([]string{"", "warn", "refuse", "off"}, s.SPFCheck) {
		errs = append(errs, fmt.Errorf("smtp.spf_check %q is not warn, refuse or off", s.SPFCheck))
	}
	return errors.Join(errs...)
}

func (m Mail) validate() error {
	var errs []error
	if _, err := mail.ParseAddress(m.From); err != nil {
		errs = append(errs, fmt.Errorf("mail.from %q: %w", m.From, err))
	}
	if m.ReplyTo != "" {
		if _, err := mail.ParseAddress(m.ReplyTo); err != nil {
			errs = append(errs, fmt.Errorf("mail.reply_to %q: %w", m.ReplyTo, err))
		}
	}
	if _, err := time.LoadLocation(m.Zone); err != nil {
		errs = append(errs, fmt.Errorf("mail.zone %q: %w", m.Zone, err))
	}
	errs = append(errs, checkURL("mail.renewal_url", m.RenewalURL), checkURL("mail.fees_url", m.FeesURL))
	if (m.DKIMKey == "") != (m.DKIMSelector == "") {
		errs = append(errs, errors.New("mail.dkim_key and mail.dkim_selector go together"))
	}
	return errors.Join(errs...)
}

func (b Brand) validate(name string) error {
	var errs []error
	key := func(k string) string { return "brands." + name + "." + k }
	for k, v := range map[string]string{"from": b.From, "reply_to": b.ReplyTo, "envelope_from": b.EnvelopeFrom} {
		if v == "" {
			continue
		}
		if _, err := mail.ParseAddress(v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", key(k), v, err))
		}
	}
	errs = append(errs, checkURL(key("renewal_url"), b.RenewalURL), checkURL(key("fees_url"), b.FeesURL))
	if b.DKIMKey != "" && b.DKIMSelector == "" {
		errs = append(errs, fmt.Errorf("%s is set without %s", key("dkim_key"), key("dkim_selector")))
	}
	return errors.Join(errs...)
}

// ValidateMail checks what only the whole configuration can: every brand,
// and that every sender errpd may use has what ERRP wants a notice to
// quote (a renewal URL and the fees URL). Config.finish should call it.
func (c Config) ValidateMail() error {
	var errs []error
	names := []string{""}
	for name, b := range c.Brands {
		errs = append(errs, b.validate(name))
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := c.ResolveBrand(name)
		where := "mail"
		if name != "" {
			where = "brands." + name
		}
		if r.RenewalURL == "" {
			errs = append(errs, fmt.Errorf("%s.renewal_url is empty (and so is mail.renewal_url): a notice must say how to renew", where))
		}
		if r.FeesURL == "" {
			errs = append(errs, fmt.Errorf("%s.fees_url is empty (and so is mail.fees_url): ERRP 4.1 wants the fees published", where))
		}
	}
	return errors.Join(errs...)
}

// ResolvedBrand is a brand with every fallback applied: what a notice of
// that brand is sent as.
type ResolvedBrand struct {
	Key          string // the calendar's brand name; "" for the [mail] sender
	Name         string
	From         string // as configured, e.g. "Example Domains <renewals@example.net>"
	ReplyTo      string
	EnvelopeFrom string
	Language     string
	RenewalURL   string
	FeesURL      string
	Support      string
	DKIMKey      string // absolute path; empty: do not sign
	DKIMSelector string
}

// ResolveBrand returns the brand the calendar calls name, falling back
// field by field to the [mail] and [smtp] sections. An unknown or empty
// name gives the [mail] sender.
func (c Config) ResolveBrand(name string) ResolvedBrand {
	b, ok := c.Brands[name]
	if !ok {
		name = ""
	}
	r := ResolvedBrand{
		Key:          name,
		Name:         first(b.Name, c.Mail.Name),
		From:         first(b.From, c.Mail.From),
		ReplyTo:      first(b.ReplyTo, c.Mail.ReplyTo),
		EnvelopeFrom: first(b.EnvelopeFrom, c.SMTP.EnvelopeFrom),
		Language:     first(b.Language, c.Mail.Language),
		RenewalURL:   first(b.RenewalURL, c.Mail.RenewalURL),
		FeesURL:      first(b.FeesURL, c.Mail.FeesURL),
		Support:      b.Support,
	}
	from, err := mail.ParseAddress(r.From)
	if err == nil {
		r.Name = first(r.Name, from.Name, from.Address)
		r.Support = first(r.Support, c.Mail.Support, from.Address)
	}
	switch {
	case b.DKIMKey != "":
		r.DKIMKey, r.DKIMSelector = b.DKIMKey, b.DKIMSelector
	case c.Mail.DKIMKey != "" && sameDomain(r.From, c.Mail.From):
		r.DKIMKey, r.DKIMSelector = c.Mail.DKIMKey, c.Mail.DKIMSelector
	}
	r.DKIMKey = c.Path(r.DKIMKey)
	return r
}

func sameDomain(a, b string) bool {
	x, err1 := mail.ParseAddress(a)
	y, err2 := mail.ParseAddress(b)
	if err1 != nil || err2 != nil {
		return false
	}
	dx := x.Address[strings.LastIndexByte(x.Address, '@')+1:]
	dy := y.Address[strings.LastIndexByte(y.Address, '@')+1:]
	return strings.EqualFold(dx, dy)
}

func checkURL(key, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL", key, v)
	}
	return nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
