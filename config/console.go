package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Console is the operator console, a web UI served by `errpd serve`.
type Console struct {
	// Listen is its address; empty turns it off. It is off too while
	// Users is empty (nobody could log in).
	Listen string `toml:"listen"`
	// Users maps a login name to its bcrypt hash (`errpd hash-password`).
	// The name goes into the audit record of every action taken.
	Users map[string]string `toml:"users"`
	// SessionTTL is how long a login lasts; sessions end with the daemon.
	SessionTTL time.Duration `toml:"session_ttl"`
	// CertFile and KeyFile serve it over TLS (both or neither); the
	// session cookie is then Secure. Relative to the config file's folder.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// userName is what a console login may be: it ends up in audit records.
var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func (c Console) validate() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(c.Users)) {
		if !userName.MatchString(name) {
			errs = append(errs, fmt.Errorf("console.users: user name %q must be letters, digits, '.', '_', '@', '-' (at most 64)", name))
		}
		// Only the cost is read: the hash itself is never shown.
		if _, err := bcrypt.Cost([]byte(c.Users[name])); err != nil {
			errs = append(errs, fmt.Errorf("console.users.%s is not a bcrypt hash (make one with errpd hash-password)", name))
		}
	}
	if c.SessionTTL <= 0 {
		errs = append(errs, errors.New("console.session_ttl must be positive"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("console.cert_file and console.key_file go together: set both, or neither"))
	}
	return errors.Join(errs...)
}
