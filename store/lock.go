package store

import "fmt"

// lockedError says who holds the store, when Linux tells.
func lockedError(path string, waited string) error {
	who := ""
	if pid := lockHolder(path); pid > 0 {
		who = fmt.Sprintf(" (pid %d)", pid)
	}
	return fmt.Errorf("store %s: %w%s%s", path, ErrLocked, who, waited)
}
