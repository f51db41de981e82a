// Package config reads errpd's TOML configuration: every key has a default
// (the values in config.example.toml), unknown keys and bad values are errors
// that name the key, relative paths are taken from the config file's folder,
// and secrets may come from the environment, systemd's credentials or a
// file instead (read by ReadSecrets, for `errpd serve` only).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/errpd/errpd/scheduler"
)

// Config is the whole configuration.
type Config struct {
	Store  Store  `toml:"store"`
	HTTP   HTTP   `toml:"http"`
	SMTP   SMTP   `toml:"smtp"`
	Mail   Mail   `toml:"mail"`
	Ascio  Ascio  `toml:"ascio"`
	Policy Policy `toml:"policy"`
	Scope  Scope  `toml:"scope"`
	Log    Log    `toml:"log"`

	Dispatch Dispatch `toml:"dispatch"`
	Audit    Audit    `toml:"audit"`
	Bounces  Bounces  `toml:"bounces"`
	Console  Console  `toml:"console"`

	// Brands by the name the calendar's brand column uses.
	Brands map[string]Brand `toml:"brands"`
	// Templates are the partner's overrides and how they are linted.
	Templates Templates `toml:"templates"`

	// Dir is the folder relative paths are taken from: the config file's,
	// or the working folder when running on the embedded defaults.
	Dir string `toml:"-"`
}

// Store is the bbolt file.
type Store struct {
	Path        string        `toml:"path"`
	OpenTimeout time.Duration `toml:"open_timeout"` // how long to wait for the file lock
}

// Dispatch tunes the sending loop.
type Dispatch struct {
	// InDoubt decides what happens at start-up to a notice whose SMTP
	// transaction a crash interrupted: "hold" keeps it in doubt for an
	// operator (errpd resolve); "resend" sends it again.
	InDoubt string `toml:"in_doubt"`
	// RetryBase and RetryMax bound the backoff after a temporary failure:
	// the first retry comes after about RetryBase, doubling up to RetryMax.
	RetryBase time.Duration `toml:"retry_base"`
	RetryMax  time.Duration `toml:"retry_max"`
	// MaxPrepareAttempts is how many times a notice that cannot even be
	// prepared (its stored message is corrupt, its template fails to
	// render, its record cannot be written) is tried, on the retry
	// schedule, before it becomes failed with the reason. A template fixed
	// by SIGHUP in between lets it go out.
	MaxPrepareAttempts int `toml:"max_prepare_attempts"`
}

// Log is the operator's log (not the audit trail, which lives in the store).
type Log struct {
	Level  string `toml:"level"`  // debug | info | warn | error
	Format string `toml:"format"` // text | json
}

// Policy is the ERRP timeline as data; see scheduler.Policy. The day
// counts after expiry also give the notices their dates (templates'
// .RenewBy and .RedemptionEnd).
type Policy struct {
	SendHour int                     `toml:"send_hour"` // -1: send when the window opens
	Zone     string                  `toml:"zone"`      // IANA zone of send_hour
	Windows  map[string]PolicyWindow `toml:"windows"`   // by notice; absent notices keep their default
	// RenewalGraceDays: days after expiry during which the registrant at
	// expiration can still renew (Ascio deletes the domain at +30).
	RenewalGraceDays int `toml:"renewal_grace_days"`
	// RedemptionDays: the Redemption Grace Period, counted from deletion,
	// during which the domain can be restored (ERRP 3.1: 30 days).
	RedemptionDays int `toml:"redemption_days"`
	// RenewalCheckAfter: with Ascio configured, how long after a
	// renew-mode domain's expiry errpd asks GetDomain (GetDomains by name
	// when it knows no handle) whether it renewed (an unchanged expiry is
	// evidence it did not).
	RenewalCheckAfter time.Duration `toml:"renewal_check_after"`
}

// PolicyWindow overrides one notice's window.
type PolicyWindow struct {
	OpensDays    int      `toml:"opens_days"`
	DeadlineDays int      `toml:"deadline_days"`
	Modes        []string `toml:"modes"`
}

// Scope says which TLDs ERRP applies to. By default every gTLD is in and
// every ccTLD is out, because ccTLD registries run their own lifecycles:
// the two-letter ASCII TLDs and the IDN ccTLDs of the embedded table
// (idn_cctlds.txt, from IANA's root zone database).
type Scope struct {
	Include []string `toml:"include"` // ccTLDs in scope all the same (e.g. "co", "xn--p1ai" or "рф")
	Exclude []string `toml:"exclude"` // gTLDs kept out of scope
}

// Default is the configuration errpd runs on when no file is given; it is
// the same as config.example.toml (a test holds them together).
func Default() Config {
	return Config{
		Store:     Store{Path: "var/errpd.db", OpenTimeout: 5 * time.Second},
		Templates: Templates{Lint: "refuse"},
		HTTP: HTTP{
			Listen:       "127.0.0.1:8025",
			CallbackPath: "/ascio/callback",
			AllowFrom:    []string{},
			// Ascio calls back now and then; 256 leaves most of even a
			// 1024-descriptor limit to the store, the relay and the socket.
			MaxConnections: 256,
			ReadTimeout:    30 * time.Second,
			WriteTimeout:   30 * time.Second,
			IdleTimeout:    60 * time.Second,
			MaxHeaderBytes: 16 << 10,
		},
		SMTP: SMTP{
			Port:           25,
			TLS:            "none",
			EnvelopeFrom:   "bounces@errp.example.net",
			OutboxDir:      "var/outbox",
			Timeout:        30 * time.Second,
			MaxConnections: 4,
			SPFCheck:       "warn",
			EgressIPs:      []string{},
		},
		Mail: Mail{
			From:       "Example Domains <renewals@example.net>",
			Language:   "en",
			Zone:       "UTC",
			RenewalURL: "https://example.net/renew",
			FeesURL:    "https://example.net/fees",
		},
		Ascio: Ascio{
			PollEvery: 10 * time.Minute,
			Timeout:   30 * time.Second,
		},
		Policy: Policy{SendHour: -1, Zone: "UTC", Windows: map[string]PolicyWindow{}, RenewalGraceDays: 30, RedemptionDays: 30,
			RenewalCheckAfter: 2 * time.Hour},
		Scope:    Scope{Include: []string{}, Exclude: []string{}},
		Log:      Log{Level: "info", Format: "text"},
		Dispatch: Dispatch{InDoubt: "hold", RetryBase: time.Minute, RetryMax: time.Hour, MaxPrepareAttempts: 5},
		Brands:   map[string]Brand{},
		Audit:    Audit{Retention: DefaultRetention},
		Bounces:  Bounces{VERP: true, Domains: []string{}, MaxMessageBytes: 1 << 20, Timeout: time.Minute},
		Console:  Console{Listen: "127.0.0.1:8026", Users: map[string]string{}, SessionTTL: 12 * time.Hour},
	}
}

// Load reads a config file over the defaults and checks it. An empty path
// gives the defaults, with paths relative to the working folder.
func Load(path string) (Config, error) {
	c := Default()
	if path == "" {
		wd, err := os.Getwd()
		if err != nil {
			return c, err
		}
		c.Dir = wd
		return c, c.finish()
	}
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return c, fmt.Errorf("config %s: unknown key %s%s", path, strings.Join(keys, ", "), keyHint(keys))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return c, err
	}
	c.Dir = filepath.Dir(abs)
	if err := c.finish(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// keyHint points a key written by another name to errpd's: the facts a
// notice quotes about renewing are per brand, the day counts in [policy].
func keyHint(keys []string) string {
	for _, k := range keys {
		last := k[strings.LastIndexByte(k, '.')+1:]
		if last == "renew_url" || strings.HasPrefix(k, "policy.") && (last == "renewal_url" || last == "fees_url") {
			return " (how to renew and the fees are per brand: mail.renewal_url, mail.fees_url, brands.NAME.renewal_url, brands.NAME.fees_url)"
		}
	}
	return ""
}

// finish makes paths absolute and validates every section. Secrets are
// left for ReadSecrets, which only serve calls.
func (c *Config) finish() error {
	c.Store.Path = c.Path(c.Store.Path)
	c.SMTP.OutboxDir = c.Path(c.SMTP.OutboxDir)
	c.Templates.Dir = c.Path(c.Templates.Dir)
	c.Audit.SigningKey = c.Path(c.Audit.SigningKey)
	c.Console.CertFile = c.Path(c.Console.CertFile)
	c.Console.KeyFile = c.Path(c.Console.KeyFile)
	return errors.Join(
		c.Scope.normalize(),
		c.Store.validate(),
		c.HTTP.validate(),
		c.SMTP.validate(),
		c.Mail.validate(),
		c.Ascio.validate(),
		c.Policy.validate(),
		c.Templates.validate(),
		c.Log.validate(),
		c.Dispatch.validate(),
		c.Audit.validate(),
		c.Console.validate(),
		c.ValidateMail(),
		c.Bounces.validate(),
		c.validateVERP(),
	)
}

// Path resolves p against the config file's folder.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

func (s Store) validate() error {
	if s.Path == "" {
		return errors.New("store.path is empty")
	}
	if s.OpenTimeout <= 0 {
		return errors.New("store.open_timeout must be positive")
	}
	return nil
}

func (d Dispatch) validate() error {
	if d.InDoubt != "hold" && d.InDoubt != "resend" {
		return fmt.Errorf("dispatch.in_doubt %q is not hold or resend", d.InDoubt)
	}
	if d.RetryBase <= 0 || d.RetryMax < d.RetryBase {
		return fmt.Errorf("dispatch.retry_base %s and retry_max %s: want 0 < retry_base <= retry_max", d.RetryBase, d.RetryMax)
	}
	if d.MaxPrepareAttempts < 1 {
		return fmt.Errorf("dispatch.max_prepare_attempts %d: want at least 1", d.MaxPrepareAttempts)
	}
	return nil
}

func (l Log) validate() error {
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, l.Level) {
		return fmt.Errorf("log.level %q is not debug, info, warn or error", l.Level)
	}
	if l.Format != "text" && l.Format != "json" {
		return fmt.Errorf("log.format %q is not text or json", l.Format)
	}
	return nil
}

func (p Policy) validate() error {
	sp, err := p.Scheduler()
	if err != nil {
		return err
	}
	if p.RenewalCheckAfter <= 0 {
		return fmt.Errorf("policy.renewal_check_after %s: want a positive duration (default 2h)", p.RenewalCheckAfter)
	}
	if p.RedemptionDays < 1 {
		return fmt.Errorf("policy.redemption_days %d: the Redemption Grace Period must be at least a day (ERRP 3.1: 30)", p.RedemptionDays)
	}
	// ERRP 2.2: DNS resolution is interrupted for at least the last eight
	// days the domain can still be renewed.
	if susp := suspensionDays(sp); p.RenewalGraceDays < susp+8 {
		return fmt.Errorf("policy.renewal_grace_days %d: the domain must stay renewable for at least 8 days after its suspension at day %d (ERRP 2.2)",
			p.RenewalGraceDays, susp)
	}
	return nil
}

// suspensionDays is the day after expiry on which DNS resolution stops:
// the suspension notice's window opens then.
func suspensionDays(sp scheduler.Policy) int {
	for _, w := range sp.Windows {
		if w.Notice == scheduler.Suspension {
			return w.OpensDays
		}
	}
	return 0
}

// Lifecycle is what a notice says about the days after expiry, in whole
// days (24 h) from the expiry instant.
type Lifecycle struct {
	SuspensionDays int // DNS resolution is interrupted from here (ERRP 2.2)
	DeletionDays   int // the last day the domain can be renewed; deleted then
	RedemptionDays int // restorable for this long after deletion (ERRP 3.1)
}

// Lifecycle gives the policy's days after expiry; call it on a validated
// policy.
func (p Policy) Lifecycle() Lifecycle {
	sp, _ := p.Scheduler()
	return Lifecycle{SuspensionDays: suspensionDays(sp), DeletionDays: p.RenewalGraceDays, RedemptionDays: p.RedemptionDays}
}

// Scheduler turns the policy section into the planner's policy.
func (p Policy) Scheduler() (scheduler.Policy, error) {
	sp := scheduler.DefaultPolicy()
	sp.SendHour = p.SendHour
	zone, err := time.LoadLocation(p.Zone)
	if err != nil {
		return sp, fmt.Errorf("policy.zone %q: %w", p.Zone, err)
	}
	sp.Zone = zone
	for name, w := range p.Windows {
		n, err := scheduler.ParseNotice(name)
		if err != nil {
			return sp, fmt.Errorf("policy.windows.%s: %w", name, err)
		}
		i := slices.IndexFunc(sp.Windows, func(x scheduler.Window) bool { return x.Notice == n })
		sw := sp.Windows[i]
		sw.OpensDays, sw.DeadlineDays = w.OpensDays, w.DeadlineDays
		if len(w.Modes) > 0 {
			sw.Modes = nil
			for _, m := range w.Modes {
				mode, err := scheduler.ParseMode(m)
				if err != nil {
					return sp, fmt.Errorf("policy.windows.%s.modes: %w", name, err)
				}
				sw.Modes = append(sw.Modes, mode)
			}
		}
		sp.Windows[i] = sw
	}
	if err := sp.Validate(); err != nil {
		return sp, fmt.Errorf("policy: %w", err)
	}
	return sp, nil
}

// InScope reports whether ERRP applies to a domain's TLD (domain in A-label
// form): an excluded TLD is out, an included one in, and otherwise every
// TLD but a ccTLD (IsCCTLD).
func (s Scope) InScope(domain string) bool {
	tld := strings.ToLower(domain[strings.LastIndexByte(domain, '.')+1:])
	if slices.Contains(s.Exclude, tld) {
		return false
	}
	if slices.Contains(s.Include, tld) {
		return true
	}
	return !IsCCTLD(tld)
}

// normalize writes the scope's TLDs as lower-case A-labels, so that "рф"
// and "xn--p1ai" mean the same.
func (s *Scope) normalize() error {
	var err1, err2 error
	s.Include, err1 = normalizeTLDs("scope.include", s.Include)
	s.Exclude, err2 = normalizeTLDs("scope.exclude", s.Exclude)
	return errors.Join(err1, err2)
}
