package config

import (
	"errors"
	"fmt"
	"time"
)

// Audit is what errpd keeps for auditors and how it signs what it gives
// them.
type Audit struct {
	// Retention is how long after a notice its raw message is kept; older
	// messages are purged (each purge leaves an audit record). The default,
	// three years, covers the RAA's two years after sponsorship for most
	// domains. Zero keeps messages forever.
	Retention time.Duration `toml:"retention"`
	// SigningKey is the PEM (PKCS #8) Ed25519 private key that signs
	// evidence manifests (`errpd keygen` makes one); empty disables
	// `errpd evidence`. Relative to the config file's folder.
	SigningKey string `toml:"signing_key"`
}

// DefaultRetention is three years of 365 days.
const DefaultRetention = 3 * 365 * 24 * time.Hour

// minRetention is the RAA's two years: a shorter retention would purge
// evidence a registrar must still be able to show.
const minRetention = 2 * 365 * 24 * time.Hour

func (a Audit) validate() error {
	switch {
	case a.Retention < 0:
		return errors.New("audit.retention must not be negative (0 keeps messages forever)")
	case a.Retention > 0 && a.Retention < minRetention:
		return fmt.Errorf("audit.retention %s is shorter than the RAA's two years (%s)", a.Retention, minRetention)
	}
	return nil
}
