package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Secret is a password. It prints, logs and marshals as "[redacted]" so
// that it cannot leak through a log line, an error or a report; Reveal gives
// the value to the one place that needs it.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// Set reports whether a value was given.
func (s Secret) Set() bool { return s != "" }

func (s Secret) String() string               { return redacted }
func (s Secret) GoString() string             { return redacted }
func (s Secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Format keeps %v, %s, %q and %#v from printing the value.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, redacted) }

// CredentialsEnv is where systemd tells a service the folder of the
// credentials its unit loads (LoadCredential=).
const CredentialsEnv = "CREDENTIALS_DIRECTORY"

// secretSource is where one secret may come from, in order of precedence.
type secretSource struct {
	key        string // the config key, e.g. "smtp.password"
	env        string // the environment variable
	credential string // the systemd credential's name
}

// The systemd credentials errpd reads its passwords from (the names in
// dist/errpd.service's LoadCredential=).
const (
	SMTPPasswordCredential  = "errpd-smtp-password"
	AscioPasswordCredential = "errpd-ascio-password"
)

var (
	smtpPassword  = secretSource{"smtp.password", "ERRPD_SMTP_PASSWORD", SMTPPasswordCredential}
	ascioPassword = secretSource{"ascio.password", "ERRPD_ASCIO_PASSWORD", AscioPasswordCredential}
)

// where lists the places the secret may come from, for an error.
func (src secretSource) where() string {
	return fmt.Sprintf("set %s (\"file:PATH\" reads a file), %s, or the systemd credential %s", src.key, src.env, src.credential)
}

// fill takes the secret, first found first: from the environment
// variable, from the systemd credential in $CREDENTIALS_DIRECTORY, from
// the file when the configured value is "file:PATH" (relative to dir), or
// as configured. It says where it took it from ("" when it is empty).
func (s *Secret) fill(src secretSource, dir string) (from string, err error) {
	if v, ok := os.LookupEnv(src.env); ok && v != "" {
		*s = Secret(v)
		return "environment " + src.env, nil
	}
	if creds := os.Getenv(CredentialsEnv); creds != "" {
		b, err := os.ReadFile(filepath.Join(creds, src.credential))
		switch {
		case err == nil:
			*s = Secret(strings.TrimSpace(string(b)))
			return "credential " + src.credential, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%s: reading credential %s: %w", src.key, src.credential, err)
		}
	}
	if path, ok := strings.CutPrefix(string(*s), "file:"); ok {
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is no secret; the error names it and the key.
			return "", fmt.Errorf("%s: reading secret file: %w", src.key, err)
		}
		*s = Secret(strings.TrimSpace(string(b)))
		return "file " + path, nil
	}
	if s.Set() {
		return "config file", nil
	}
	return "", nil
}

// ReadSecrets fills the passwords from where they are kept (see fill)
// and checks that every peer configured has the one it needs. Only
// `errpd serve` calls it: the other commands either run inside the daemon,
// which has read them, or need none, so an operator's shell needs no
// password. It returns where each secret set came from, by key, to log.
func (c *Config) ReadSecrets() (map[string]string, error) {
	from := map[string]string{}
	for _, x := range []struct {
		s   *Secret
		src secretSource
	}{{&c.SMTP.Password, smtpPassword}, {&c.Ascio.Password, ascioPassword}} {
		where, err := x.s.fill(x.src, c.Dir)
		if err != nil {
			return nil, err
		}
		if where != "" {
			from[x.src.key] = where
		}
	}
	var errs []error
	if c.SMTP.Host != "" && c.SMTP.Username != "" && !c.SMTP.Password.Set() {
		// Every AUTH would fail: say so at start, not once per notice.
		errs = append(errs, fmt.Errorf("smtp.password is empty while smtp.username is set: %s", smtpPassword.where()))
	}
	if c.Ascio.Endpoint != "" && !c.Ascio.Password.Set() {
		errs = append(errs, fmt.Errorf("ascio.password is empty while ascio.endpoint is set: %s", ascioPassword.where()))
	}
	return from, errors.Join(errs...)
}
