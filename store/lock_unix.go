//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockShared takes a shared lock on f, as a bbolt reader does, waiting up
// to timeout for a writer to let go; bbolt polls its lock the same way.
// The lock goes with f's Close.
func lockShared(f *os.File, timeout time.Duration) error {
	return flockWait(f, syscall.LOCK_SH, timeout)
}

// lockExclusive takes an exclusive lock on f, waiting up to timeout.
func lockExclusive(f *os.File, timeout time.Duration) error {
	return flockWait(f, syscall.LOCK_EX, timeout)
}

func flockWait(f *os.File, how int, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(end) {
			return ErrLocked
		}
		time.Sleep(50 * time.Millisecond)
	}
}
