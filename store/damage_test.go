package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// damagePageSize is bbolt's page size on the machines errpd runs on; the
// tests read it back from the file's first meta page all the same.
const damagePageSize = 4096

var (
	healthyOnce sync.Once
	healthyRaw  []byte
	healthyErr  error
)

// healthyStore returns the bytes of a closed store holding 300 domains
// (some hundred pages), built once per test binary.
func healthyStore(t *testing.T) []byte {
	t.Helper()
	healthyOnce.Do(func() {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("errpd-damage-%d.db", os.Getpid()))
		defer os.Remove(path)
		db, err := store.Open(path, store.Options{Now: func() time.Time { return t0 }, NoSync: true})
		if err != nil {
			healthyErr = err
			return
		}
		o := store.PlanOptions{Policy: scheduler.DefaultPolicy()}
		healthyErr = db.Update(func(tx *store.Tx) error {
			for i := range 300 {
				d := domain(fmt.Sprintf("d%04d.example", i), t0.Add(60*scheduler.Day), scheduler.ModeRenew)
				if _, err := tx.Upsert(d, o); err != nil {
					return err
				}
			}
			return nil
		})
		if err := db.Close(); healthyErr == nil {
			healthyErr = err
		}
		if healthyErr == nil {
			healthyRaw, healthyErr = os.ReadFile(path)
		}
	})
	if healthyErr != nil {
		t.Fatal(healthyErr)
	}
	return bytes.Clone(healthyRaw)
}

// highWater is the number of pages the newest meta page says are in use.
func highWater(raw []byte) int {
	newest, pages := uint64(0), 0
	for i := range 2 {
		m := raw[i*damagePageSize+16:]
		if txid := binary.LittleEndian.Uint64(m[48:]); txid >= newest {
			newest, pages = txid, int(binary.LittleEndian.Uint64(m[40:]))
		}
	}
	return pages
}

// pageWith is the index of the leaf page whose bytes hold needle. A key
// followed by 0x08 (the tag of a value's first field, a step's state or a
// domain's mode) is found in its bucket's leaf, not in an index's.
func pageWith(t *testing.T, raw []byte, needle string) int {
	t.Helper()
	for p := 2; p < highWater(raw); p++ {
		page := raw[p*damagePageSize : (p+1)*damagePageSize]
		if binary.LittleEndian.Uint16(page[8:]) == 0x02 && bytes.Contains(page, []byte(needle)) {
			return p
		}
	}
	t.Fatalf("no leaf page holds %q", needle)
	return 0
}

// damage is one way a store file can be broken on disk.
type damage struct {
	name string
	// ruin turns a healthy store's bytes into the damaged file's.
	ruin func(t *testing.T, raw []byte) []byte
	// opens: the meta pages still hold, so Open cannot tell; the damage
	// shows on the first read of the page.
	opens bool
}

func flip(raw []byte, at int) []byte {
	for i := range 4 {
		raw[at+i] ^= 0xff
	}
	return raw
}

func randomPage(raw []byte, p int) []byte {
	r := rand.New(rand.NewPCG(uint64(p), 11))
	for i := p * damagePageSize; i < (p+1)*damagePageSize; i++ {
		raw[i] = byte(r.UintN(256))
	}
	return raw
}

// damages are the broken files of issue 11: truncated at several sizes, an
// empty file, a page of random bytes, flipped bytes in either meta page.
func damages() []damage {
	trunc := func(pages func(hw int) int) func(*testing.T, []byte) []byte {
		return func(_ *testing.T, raw []byte) []byte { return raw[:pages(highWater(raw))*damagePageSize] }
	}
	return []damage{
		{name: "empty", ruin: func(*testing.T, []byte) []byte { return nil }},
		{name: "truncated to 100 bytes", ruin: func(_ *testing.T, raw []byte) []byte { return raw[:100] }},
		{name: "truncated to one page", ruin: trunc(func(int) int { return 1 })},
		{name: "truncated to the meta pages", ruin: trunc(func(int) int { return 2 })},
		{name: "truncated to three pages", ruin: trunc(func(int) int { return 3 })},
		{name: "truncated to half", ruin: trunc(func(hw int) int { return hw / 2 })},
		{name: "truncated by one page", ruin: trunc(func(hw int) int { return hw - 1 })},
		{name: "meta page 0 flipped", ruin: func(_ *testing.T, raw []byte) []byte { return flip(raw, 16+24) }},
		{name: "meta page 1 flipped", ruin: func(_ *testing.T, raw []byte) []byte { return flip(raw, damagePageSize+16+24) }},
		{name: "meta magic flipped", ruin: func(_ *testing.T, raw []byte) []byte {
			return flip(flip(raw, 16), damagePageSize+16)
		}},
		{name: "random page among the steps", opens: true, ruin: func(t *testing.T, raw []byte) []byte {
			return randomPage(raw, pageWith(t, raw, string(store.Key(store.StepID("d0150.example", t0.Add(60*scheduler.Day), scheduler.Reminder1)))+"\x08"))
		}},
		{name: "random page among the domains", opens: true, ruin: func(t *testing.T, raw []byte) []byte {
			return randomPage(raw, pageWith(t, raw, "d0150.example\x08"))
		}},
	}
}

// writeDamaged writes the damaged store into a new folder and returns its
// path.
func writeDamaged(t *testing.T, d damage) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "errpd.db")
	if err := os.WriteFile(path, d.ruin(t, healthyStore(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantDamaged asserts that err is the store's damage error: it names the
// file and points to the copies errpd backup writes.
func wantDamaged(t *testing.T, what string, err error, path string) {
	t.Helper()
	var d *store.DamagedError
	if !errors.As(err, &d) {
		t.Fatalf("%s: %v, want a damaged-store error", what, err)
	}
	for _, want := range []string{path, "errpd backup"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %q does not mention %q", what, err, want)
		}
	}
}

// walk reads every domain and every step, as `errpd domains` does.
func walk(db *store.DB) error {
	return db.View(func(tx *store.Tx) error {
		return tx.Domains(func(d store.Domain) error {
			_, err := tx.Steps(d.Cycle)
			return err
		})
	})
}

// TestDamagedStoreIsRefused: every damaged file is refused with an error
// naming it, by Open (read-write and read-only) or, where the meta pages
// hold, by the first read of the bad page and by Verify; never a crash,
// never a fresh empty store in its place.
func TestDamagedStoreIsRefused(t *testing.T) {
	t.Parallel()
	for _, d := range damages() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			for _, ro := range []bool{false, true} {
				path := writeDamaged(t, d)
				before, _ := os.Stat(path)
				db, err := store.Open(path, store.Options{ReadOnly: ro, Timeout: time.Second})
				what := fmt.Sprintf("Open(read-only %t)", ro)
				if !d.opens {
					if err == nil {
						db.Close()
					}
					wantDamaged(t, what, err, path)
					if after, _ := os.Stat(path); after.Size() != before.Size() {
						t.Errorf("%s changed the file's size from %d to %d", what, before.Size(), after.Size())
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v (its meta pages hold)", what, err)
				}
				wantDamaged(t, "reading every domain's steps", walk(db), path)
				_, err = db.Verify()
				wantDamaged(t, "Verify", err, path)
				db.Close()
			}
		})
	}
}

// TestMissingStoreIsCreated: a new install starts from no file at all.
func TestMissingStoreIsCreated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new", "errpd.db")
	db, err := store.Open(path, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := walk(db); err != nil {
		t.Error(err)
	}
	if _, err := db.Verify(); err != nil {
		t.Errorf("Verify of a new store: %v", err)
	}
}

// openHealthy opens a copy of the healthy store read-only, closed at the
// test's end.
func openHealthy(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "errpd.db")
	if err := os.WriteFile(path, healthyStore(t), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// TestVerifyChecksStructure: a healthy store passes bbolt's structural
// check too.
func TestVerifyChecksStructure(t *testing.T) {
	t.Parallel()
	db, _ := openHealthy(t)
	v, err := db.Verify()
	if err != nil || v.Pages == 0 {
		t.Errorf("Verify: %+v %v, want the pages checked and no error", v, err)
	}
}

// TestTruncatedWhileOpen: a file cut short under an open store (another
// process, a full disk's repair) faults on the next read of a page past
// its end; debug.SetPanicOnFault makes that a DamagedError, not SIGBUS.
func TestTruncatedWhileOpen(t *testing.T) {
	t.Parallel()
	db, path := openHealthy(t)
	if err := os.Truncate(path, 2*damagePageSize); err != nil {
		t.Fatal(err)
	}
	wantDamaged(t, "reading every domain's steps", walk(db), path)
	_, err := db.Verify()
	wantDamaged(t, "Verify", err, path)
}

// TestBugIsNotDamage: a panic of errpd's own code inside a transaction is
// a bug and goes on as a panic, not dressed up as a damaged file.
func TestBugIsNotDamage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	defer func() {
		if r := recover(); r != "a bug" {
			t.Errorf("recovered %v, want the bug's own panic", r)
		}
	}()
	b.db.View(func(*store.Tx) error { panic("a bug") })
	t.Error("View returned after its function panicked")
}
