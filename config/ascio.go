package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// HTTP is errpd's listener: Ascio's callbacks, /healthz and /metrics.
type HTTP struct {
	Listen        string `toml:"listen"`
	CallbackPath  string `toml:"callback_path"`
	CallbackToken Secret `toml:"callback_token"` // when set, callbacks must carry ?token=...
	// AllowFrom lists the networks allowed to connect to Listen at all
	// (callbacks, and /healthz and /metrics when they are served there);
	// empty allows any.
	AllowFrom []string `toml:"allow_from"`
	// MetricsListen, when set, serves /healthz and /metrics on an address
	// of their own (loopback or a monitoring network) instead of Listen,
	// out of reach of whatever floods the public listener.
	MetricsListen string `toml:"metrics_listen"`
	// MaxConnections caps the connections open at once on each listener,
	// so that a flood cannot take the file descriptors the store, the
	// relay and the admin socket need; more wait in the kernel's backlog.
	MaxConnections int `toml:"max_connections"`
	// ReadTimeout bounds reading a request (its header within at most
	// 10s of it), WriteTimeout writing the answer, IdleTimeout how long a
	// keep-alive connection may wait for its next request.
	ReadTimeout    time.Duration `toml:"read_timeout"`
	WriteTimeout   time.Duration `toml:"write_timeout"`
	IdleTimeout    time.Duration `toml:"idle_timeout"`
	MaxHeaderBytes int           `toml:"max_header_bytes"`
}

// Ascio is the registrar's SOAP API (AWS v3). With no endpoint, proof
// uploads wait until one is configured.
type Ascio struct {
	Endpoint  string        `toml:"endpoint"`
	Account   string        `toml:"account"`
	Password  Secret        `toml:"password"` // or "file:PATH", credential errpd-ascio-password, ERRPD_ASCIO_PASSWORD
	PollEvery time.Duration `toml:"poll_every"`
	// PollSchedule, when set, is a cron spec ("*/10 * * * *", "@every
	// 15m") used instead of PollEvery, e.g. to poll on the wall clock.
	PollSchedule string        `toml:"poll_schedule"`
	Timeout      time.Duration `toml:"timeout"`
}

// minPollGap is Ascio's etiquette: no more than one poll every 5 minutes.
const minPollGap = 5 * time.Minute

// Schedule is when to poll Ascio's queue: PollSchedule when set (in UTC),
// every PollEvery otherwise.
func (a Ascio) Schedule() (cron.Schedule, error) {
	if a.PollSchedule == "" {
		if a.PollEvery < minPollGap {
			return nil, fmt.Errorf("ascio.poll_every %s is shorter than Ascio's 5m minimum", a.PollEvery)
		}
		return cron.Every(a.PollEvery), nil
	}
	s, err := cron.ParseStandard(a.PollSchedule)
	if err != nil {
		return nil, fmt.Errorf("ascio.poll_schedule %q: %w", a.PollSchedule, err)
	}
	// Look at a day's worth of activations for one closer than the minimum.
	t := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	for range 300 {
		next := s.Next(t)
		if next.IsZero() {
			break
		}
		if next.Sub(t) < minPollGap {
			return nil, fmt.Errorf("ascio.poll_schedule %q polls %s apart; Ascio asks for at least 5m", a.PollSchedule, next.Sub(t))
		}
		t = next
	}
	return s, nil
}

// AllowPrefixes returns AllowFrom parsed; validate has checked it.
func (h HTTP) AllowPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, c := range h.AllowFrom {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
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
	if h.MaxConnections < 1 {
		errs = append(errs, errors.New("http.max_connections must be at least 1"))
	}
	for _, t := range []struct {
		key string
		d   time.Duration
	}{{"read_timeout", h.ReadTimeout}, {"write_timeout", h.WriteTimeout}, {"idle_timeout", h.IdleTimeout}} {
		if t.d <= 0 {
			errs = append(errs, fmt.Errorf("http.%s must be positive", t.key))
		}
	}
	if h.MaxHeaderBytes < 1024 {
		errs = append(errs, fmt.Errorf("http.max_header_bytes %d is below 1024", h.MaxHeaderBytes))
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
	if a.PollEvery < minPollGap {
		errs = append(errs, fmt.Errorf("ascio.poll_every %s is shorter than Ascio's 5m minimum", a.PollEvery))
	}
	if _, err := a.Schedule(); err != nil && a.PollSchedule != "" {
		errs = append(errs, err)
	}
	if a.Timeout <= 0 {
		errs = append(errs, errors.New("ascio.timeout must be positive"))
	}
	return errors.Join(errs...)
}
