package store_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/errpd/errpd/store"
)

// TestReadAhead: ReadAhead takes bbolt's MADV_RANDOM off the store's map,
// on a writable store and on a read-only one. The kernel shows the advice
// in /proc/self/smaps: "rr" among a mapping's VmFlags while it is random.
func TestReadAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errpd.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if ro {
			db.Close()
			if db, err = store.Open(path, store.Options{ReadOnly: true}); err != nil {
				t.Fatal(err)
			}
		}
		if flags := mapFlags(t, path); !strings.Contains(flags, " rr") {
			t.Fatalf("read-only %v: the map's flags %q before ReadAhead lack bbolt's rr: the test cannot see the advice", ro, flags)
		}
		db.ReadAhead()
		if flags := mapFlags(t, path); strings.Contains(flags, " rr") {
			t.Errorf("read-only %v: the map's flags %q after ReadAhead still say random reads", ro, flags)
		}
	}
	db.Close()
}

// mapFlags is the VmFlags line of this process's map of path.
func mapFlags(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if fields := strings.Fields(line); len(fields) >= 6 && strings.Contains(fields[0], "-") {
			in = fields[len(fields)-1] == path
		} else if in && strings.HasPrefix(line, "VmFlags:") {
			return line
		}
	}
	t.Fatalf("no map of %s in /proc/self/smaps (%v)", path, s.Err())
	return ""
}
