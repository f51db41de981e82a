//go:build !unix

package store

import (
	"os"
	"time"
)

// lockShared does nothing where flock does not exist: the meta pages are
// read without a lock, and bbolt takes its own.
func lockShared(*os.File, time.Duration) error { return nil }

// lockExclusive does nothing where flock does not exist.
func lockExclusive(*os.File, time.Duration) error { return nil }
