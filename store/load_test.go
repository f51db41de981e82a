package store_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// loadClock is the clock of the load tests' new records.
var loadClock = time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)

// newDomain is the i-th new domain of the load tests.
func newDomain(i int) store.Domain {
	name := fmt.Sprintf("n%05d.org", i)
	return store.Domain{Name: name, Mode: []scheduler.Mode{scheduler.ModeRenew, scheduler.ModeExpire}[i%2],
		Expiry:     loadClock.Add(time.Duration(i%400-20) * 24 * time.Hour),
		Registrant: store.Registrant{Name: "N", Email: "n@" + name}}
}

var loadPlan = store.PlanOptions{Policy: scheduler.DefaultPolicy(), RenewalCheck: time.Hour}

// loadNew loads domains 0..n-1 into the store at path.
func loadNew(path string, n int, o store.UpgradeOptions) (store.Loaded, error) {
	return store.Load(path, store.LoadOptions{UpgradeOptions: o, Now: func() time.Time { return loadClock }}, func(l *store.Loader) error {
		for i := range n {
			err := l.Add(newDomain(i).Name, func(tx *store.Tx) error {
				_, err := tx.Upsert(newDomain(i), loadPlan)
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// upsertNew writes domains 0..n-1 into the store at path one by one, as
// an import does: the reference a load is held to.
func upsertNew(t *testing.T, path string, n int) {
	t.Helper()
	db, err := store.Open(path, store.Options{Now: func() time.Time { return loadClock }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		for i := range n {
			if _, err := tx.Upsert(newDomain(i), loadPlan); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// copyStore copies the file at path to a new temporary one.
func copyStore(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := t.TempDir() + "/errpd.db"
	if err := os.WriteFile(cp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

// Loaded into a store with every kind of record (messages, bounces,
// retention, an audit chain), new domains make the records that writing
// them one by one makes, and the chain still verifies.
func TestLoad(t *testing.T) {
	path := randomStore(t, 300)
	want := copyStore(t, path)
	upsertNew(t, want, 400)
	// What a load killed while it planned leaves: a scratch file, of no
	// use to the next one.
	if err := os.WriteFile(path+".load-scratch", []byte("left by a kill"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := loadNew(path, 400, store.UpgradeOptions{Chunk: 77})
	if err != nil {
		t.Fatal(err)
	}
	if res.Domains != 400 || res.Added == 0 || res.NewSize == 0 || !res.Written {
		t.Errorf("Load = %+v; want 400 domains and their records", res)
	}
	sameRecords(t, dumpFile(t, want), dumpFile(t, path))
	checkCompacted(t, path, verified(t, want))
	for _, left := range []string{".loading", ".load-scratch"} {
		if _, err := os.Stat(path + left); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the load left %s: %v", left, err)
		}
	}
}

// A domain the store holds is refused, and so is a record the store holds
// already; either way the store is left as it was.
func TestLoadRefusesStored(t *testing.T) {
	path := randomStore(t, 20)
	if _, err := loadNew(path, 5, store.UpgradeOptions{}); err != nil {
		t.Fatal(err)
	}
	sum := fileSum(t, path)
	_, err := loadNew(path, 6, store.UpgradeOptions{})
	var stored *store.StoredError
	if !errors.As(err, &stored) || stored.Domain != newDomain(0).Name {
		t.Errorf("a load of a stored domain: %v, want a *StoredError naming %s", err, newDomain(0).Name)
	}
	if fileSum(t, path) != sum {
		t.Error("a refused load changed the store")
	}
	_, err = store.Load(path, store.LoadOptions{}, func(l *store.Loader) error {
		return l.Add("other.org", func(tx *store.Tx) error { return tx.MarkMessage("one") })
	})
	if err != nil {
		t.Fatal(err)
	}
	sum = fileSum(t, path)
	_, err = store.Load(path, store.LoadOptions{}, func(l *store.Loader) error {
		return l.Add("another.org", func(tx *store.Tx) error { return tx.MarkMessage("one") })
	})
	if err == nil || !strings.Contains(err.Error(), "in the store already, and among the records added") {
		t.Errorf("a load writing a stored key: %v, want a refusal", err)
	}
	if fileSum(t, path) != sum {
		t.Error("a refused load changed the store")
	}
	if _, err := os.Stat(path + ".loading"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused load left its half file: %v", err)
	}
}

// An error from the planning leaves the store as it was, and no file
// beside it; a store that is not there is an error, not a load of nothing.
func TestLoadFailsWhole(t *testing.T) {
	missing := t.TempDir() + "/none.db"
	if _, err := loadNew(missing, 3, store.UpgradeOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a load into no store: %v, want it refused", err)
	}
	path := randomStore(t, 20)
	sum := fileSum(t, path)
	boom := errors.New("boom")
	_, err := store.Load(path, store.LoadOptions{}, func(l *store.Loader) error {
		for i := range 50 {
			if err := l.Add(newDomain(i).Name, func(tx *store.Tx) error {
				_, err := tx.Upsert(newDomain(i), loadPlan)
				return err
			}); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("Load = %v, want the planning's error", err)
	}
	if fileSum(t, path) != sum {
		t.Error("a failed load changed the store")
	}
	for _, left := range []string{".loading", ".load-scratch"} {
		if _, err := os.Stat(path + left); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the failed load left %s: %v", left, err)
		}
	}
}

const envKillLoad = "ERRPD_TEST_KILL_LOAD"

// TestLoadKilledChild is the child of TestLoadKilled: it loads 400 new
// domains into the store named in its environment, in chunks of 50
// records, and kills itself after the fifth. Without that environment
// it does nothing.
func TestLoadKilledChild(t *testing.T) {
	path := os.Getenv(envKillLoad)
	if path == "" {
		return
	}
	chunks := 0
	loadNew(path, 400, store.UpgradeOptions{Chunk: 50, Progress: func(store.UpgradeProgress) {
		if chunks++; chunks == 5 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}})
	t.Fatal("the load finished: it was to be killed")
}

// Killed while it writes the new file, a load leaves the store as it was;
// run again, it starts over and ends as one that was not killed.
func TestLoadKilled(t *testing.T) {
	path := randomStore(t, 100)
	want := copyStore(t, path)
	sum := fileSum(t, path)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadKilledChild$")
	cmd.Env = append(os.Environ(), envKillLoad+"="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was to die of SIGKILL mid-load; got %v:\n%s", err, out)
	}
	if fileSum(t, path) != sum {
		t.Fatal("the killed load changed the store")
	}
	if _, err := os.Stat(path + ".loading"); err != nil {
		t.Fatalf("the killed load left no half file: %v", err)
	}
	if _, err := loadNew(want, 400, store.UpgradeOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := loadNew(path, 400, store.UpgradeOptions{Chunk: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Domains != 400 {
		t.Errorf("the second load planned %d domains, want 400", res.Domains)
	}
	sameRecords(t, dumpFile(t, want), dumpFile(t, path))
	if _, err := os.Stat(path + ".loading"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half file is still there: %v", err)
	}
}

// The half file a killed load leaves is dropped by the next rewrite of
// any kind: the schema check errpd serve does at start, a compaction.
func TestLoadKilledLeftoverDropped(t *testing.T) {
	path := randomStore(t, 100)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadKilledChild$")
	cmd.Env = append(os.Environ(), envKillLoad+"="+path)
	cmd.CombinedOutput()
	if _, err := os.Stat(path + ".loading"); err != nil {
		t.Fatalf("the killed load left no half file: %v", err)
	}
	if _, err := store.Upgrade(path, store.UpgradeOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".loading"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half file is still there after the schema check: %v", err)
	}
}

// One rewrite of a store runs at a time: a compaction asked for while a
// load plans is refused, and the load goes through. (Before, the
// compaction swapped its file in, and the load returned no error and lost
// every new domain.)
func TestLoadExcludesOtherRewrites(t *testing.T) {
	path := randomStore(t, 20)
	var compactErr error
	res, err := store.Load(path, store.LoadOptions{Now: func() time.Time { return loadClock }}, func(l *store.Loader) error {
		for i := range 40 {
			if err := l.Add(newDomain(i).Name, func(tx *store.Tx) error {
				_, err := tx.Upsert(newDomain(i), loadPlan)
				return err
			}); err != nil {
				return err
			}
		}
		_, compactErr = store.Compact(path, store.CompactOptions{UpgradeOptions: store.UpgradeOptions{NoWait: true}})
		return nil
	})
	if err != nil || res.Domains != 40 {
		t.Fatalf("Load = %+v, %v; want 40 domains", res, err)
	}
	if !errors.Is(compactErr, store.ErrLocked) || !strings.Contains(compactErr.Error(), "another errpd is rewriting it") {
		t.Errorf("a compaction during a load: %v, want it refused", compactErr)
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *store.Tx) error {
		for i := range 40 {
			if _, ok, err := tx.Domain(newDomain(i).Name); err != nil || !ok {
				return fmt.Errorf("%s not stored after the load: %v", newDomain(i).Name, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(path + ".rewrite.lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rewrite lock is left beside the store: %v", err)
	}
}

// A store replaced under a load by something that took no lock (an
// older errpd) fails the load, rather than have it swap its file over the
// new one, and leaves no half file.
func TestLoadRefusesReplacedStore(t *testing.T) {
	path := randomStore(t, 20)
	other := copyStore(t, path)
	_, err := store.Load(path, store.LoadOptions{}, func(l *store.Loader) error {
		if err := l.Add("n.org", func(tx *store.Tx) error {
			_, err := tx.Upsert(newDomain(1), loadPlan)
			return err
		}); err != nil {
			return err
		}
		return os.Rename(other, path)
	})
	if err == nil || !strings.Contains(err.Error(), "rewritten by another errpd meanwhile") {
		t.Errorf("a load whose store was replaced: %v, want a refusal", err)
	}
	if _, err := os.Stat(path + ".loading"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused load left its half file: %v", err)
	}
}

// A load that plans nothing leaves the store as it is: not written again.
func TestLoadNothing(t *testing.T) {
	path := randomStore(t, 20)
	before, _ := os.Stat(path)
	sum := fileSum(t, path)
	res, err := store.Load(path, store.LoadOptions{}, func(*store.Loader) error { return nil })
	if err != nil || res.Domains != 0 || res.Added != 0 || res.Written {
		t.Errorf("an empty load = %+v, %v", res, err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) || fileSum(t, path) != sum {
		t.Error("an empty load wrote the store again")
	}
}
