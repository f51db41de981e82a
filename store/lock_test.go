package store_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/store"
)

// TestOpenNoWaitNamesHolder: with NoWait a held store fails at once, and
// the error names the process holding it (this one: flock locks belong to
// the open file, so a second Open in one process is refused too).
func TestOpenNoWaitNamesHolder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now()
	_, err := store.Open(b.path, store.Options{Timeout: time.Minute, NoWait: true})
	want := fmt.Sprintf("store is in use by another errpd process (pid %d)", os.Getpid())
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Errorf("NoWait on a held store: %v, want %q", err, want)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("NoWait took %s", took)
	}
}
