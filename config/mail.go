package config

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"time"
)

// SMTP is the relay errpd hands its notices to. With no host, each message
// is written, exactly as it would be sent, into OutboxDir instead.
type SMTP struct {
	Host           string        `toml:"host"`
	Port           int           `toml:"port"`
	TLS            string        `toml:"tls"` // none | starttls | tls
	Username       string        `toml:"username"`
	Password       Secret        `toml:"password"` // or ERRPD_SMTP_PASSWORD, or "file:PATH"
	EnvelopeFrom   string        `toml:"envelope_from"`
	OutboxDir      string        `toml:"outbox_dir"`
	Timeout        time.Duration `toml:"timeout"`
	MaxConnections int           `toml:"max_connections"`
}

// Mail is what the notices say about their sender.
type Mail struct {
	From     string `toml:"from"`
	ReplyTo  string `toml:"reply_to"`
	Language string `toml:"language"` // default language of the notices
	Zone     string `toml:"zone"`     // zone in which dates are written in notices
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
	return errors.Join(errs...)
}

// Brand is one of the partner's brands: its sender identity and the facts
// its notices quote. Brands are keyed by the name used in the calendar's
// brand column; a domain with no brand uses the [mail] section's sender.
type Brand struct {
	Name       string `toml:"name"`        // shown to registrants
	From       string `toml:"from"`        // header From; empty: mail.from
	ReplyTo    string `toml:"reply_to"`    // empty: mail.reply_to
	Language   string `toml:"language"`    // brand's default language; empty: mail.language
	RenewalURL string `toml:"renewal_url"` // where the registrant renews or restores
	FeesURL    string `toml:"fees_url"`    // published renewal and restore fees (ERRP 4.1)
	Support    string `toml:"support"`     // support contact, e.g. an address or phone
}
