package config

import (
	"fmt"
	"log/slog"
	"os"
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

// fill takes the secret from the environment variable env when it is set,
// or from a file when the configured value is "file:PATH".
func (s *Secret) fill(key, env, dir string) error {
	if v, ok := os.LookupEnv(env); ok && v != "" {
		*s = Secret(v)
		return nil
	}
	if path, ok := strings.CutPrefix(string(*s), "file:"); ok {
		if !strings.HasPrefix(path, "/") {
			path = dir + "/" + path
		}
		b, err := os.ReadFile(path)
		if err != nil {
			// The path is no secret; the error names it and the key.
			return fmt.Errorf("%s: reading secret file: %w", key, err)
		}
		*s = Secret(strings.TrimSpace(string(b)))
	}
	return nil
}
