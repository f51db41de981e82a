//go:build linux

package dispatcher

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// smallTmpfs mounts a tmpfs of size bytes for the test, or skips when it
// cannot (not root, no CAP_SYS_ADMIN), except under CI, where it fails.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mounting a tmpfs for the full-disk test: %v", err)
		}
		t.Skipf("cannot mount a tmpfs (%v): run as root to test a real full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// fill writes a file until the file system is full, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return name
		}
	}
}

// A real full disk: the store on a small tmpfs, filled up while notices
// are due. The dispatcher does not spin, /healthz answers 503 naming the
// store, and once space is freed every notice goes out exactly once, none
// in doubt.
func TestFullDiskTmpfs(t *testing.T) {
	dir := smallTmpfs(t, "4m")
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, dir, 200)
		defer b.stop()
		exp := time.Now().Add(30 * scheduler.Day)
		const n = 200
		for i := range n {
			b.add(t, domainN(i)+".x", "r@example.org", "O", scheduler.ModeRenew, exp)
		}
		filler := fill(t, dir)
		b.start()
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		b.spun(t)
		sent, begun := b.send.count("r@example.org"), b.begun()
		t.Logf("disk full for 20 min: %d SMTP transactions begun, %d delivered, %d errors logged", begun, sent, b.log.count())
		if sent == n {
			t.Fatal("every notice went out on a full disk: the test did not fill it")
		}
		if begun-sent > b.d.Workers {
			t.Errorf("%d SMTP transactions begun and not completed on a full disk, want at most %d (the first sends that found the full disk)", begun-sent, b.d.Workers)
		}
		if h, code := health(t, b.d); code != 503 || h.Store == "ok" {
			t.Errorf("/healthz %d %+v on a full disk, want 503 naming the store", code, h)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		b.spun(t)
		if got := b.send.count("r@example.org"); got != n {
			t.Errorf("%d delivered once the disk had room, want %d", got, n)
		}
		b.halt()
		var states map[scheduler.State]uint64
		b.db.View(func(tx *store.Tx) error { states = tx.Counts(); return nil })
		if inDoubt, err := b.d.Recover(); err != nil || len(inDoubt) != 0 || states[scheduler.StateInDoubt] != 0 {
			t.Errorf("after the full disk: %d in doubt at restart (%v), states %v; want none", len(inDoubt), err, states)
		}
	})
}
