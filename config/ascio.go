package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// HTTP is errpd's listener: Ascio's callbacks, /healthz and /metrics.
type HTTP struct {
	Listen        string   `toml:"listen"`
	CallbackPath  string   `toml:"callback_path"`
	CallbackToken Secret   `toml:"callback_token"` // when set, callbacks must carry ?token=...
	AllowFrom     []string `toml:"allow_from"`     // CIDRs allowed to call back; empty allows any
}

// Ascio is the registrar's SOAP API (AWS v3). With no endpoint, proof
// uploads wait until one is configured.
type Ascio struct {
	Endpoint  string        `toml:"endpoint"`
	Account   string        `toml:"account"`
	Password  Secret        `toml:"password"` // or ERRPD_ASCIO_PASSWORD, or "file:PATH"
	PollEvery time.Duration `toml:"poll_every"`
	Timeout   time.Duration `toml:"timeout"`
}

func (h HTTP) validate() error {
	var errs []error
	if h.Listen == "" {
		errs = append(errs, errors.New("http.listen is empty"))
	}
	if !strings.HasPrefix(h.CallbackPath, "/") {
		errs = append(errs, fmt.Errorf("http.callback_path %q does not start with /", h.CallbackPath))
	}
	for _, c := range h.AllowFrom {
		if _, err := netip.ParsePrefix(c); err != nil {
			errs = append(errs, fmt.Errorf("http.allow_from %q: %w", c, err))
		}
	}
	return errors.Join(errs...)
}

func (a Ascio) validate() error {
	var errs []error
	if a.Endpoint != "" {
		u, err := url.Parse(a.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("ascio.endpoint %q is not an http(s) URL", a.Endpoint))
		}
		if a.Account == "" {
			errs = append(errs, errors.New("ascio.account is empty while ascio.endpoint is set"))
		}
	}
	// Ascio asks pollers to wait at least five minutes between polls.
	if a.PollEvery < 5*time.Minute {
		errs = append(errs, fmt.Errorf("ascio.poll_every %s is shorter than Ascio's 5m minimum", a.PollEvery))
	}
	if a.Timeout <= 0 {
		errs = append(errs, errors.New("ascio.timeout must be positive"))
	}
	return errors.Join(errs...)
}
