package store_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/internal/boltdump"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// randomStore writes a store with every kind of record (reporttest.Seed
// and seedMore) and n more domains imported in random name order, in
// transactions of 50 as an import commits them, and closes it: its pages
// are about as full as a real store's.
func randomStore(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "errpd.db")
	s := reporttest.SeedAt(t, path)
	seedMore(t, s)
	rnd := rand.New(rand.NewPCG(14, 1))
	exp := s.Now().AddDate(1, 0, 0)
	for i := 0; i < n; i += 50 {
		err := s.DB.Update(func(tx *store.Tx) error {
			for j := i; j < min(i+50, n); j++ {
				name := fmt.Sprintf("d%08x.com", rnd.Uint32())
				d := store.Domain{Name: name, Mode: scheduler.ModeRenew, Expiry: exp.Add(time.Duration(rnd.IntN(300*24)) * time.Hour),
					Registrant: store.Registrant{Name: "R", Email: "r@" + name}}
				if _, err := tx.Upsert(d, store.PlanOptions{Policy: scheduler.DefaultPolicy()}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DB.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// dumpFile reads every bucket of the file at path, with its sequence.
func dumpFile(t *testing.T, path string) map[string]boltdump.Bucket {
	t.Helper()
	d, err := boltdump.File(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sameRecords holds every bucket, key, value and sequence of got to want.
func sameRecords(t *testing.T, want, got map[string]boltdump.Bucket) {
	t.Helper()
	for _, d := range boltdump.Diff(want, got) {
		t.Error(d)
	}
}

// verified is what Verify finds in the store at path.
func verified(t *testing.T, path string) store.Verified {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Verify()
	if err != nil {
		t.Fatalf("verify %s: %v", path, err)
	}
	return v
}

// checkCompacted verifies the store at path (the audit chain, messages,
// bbolt's check), holds what it found to want (the store before), and
// checks the schema.
func checkCompacted(t *testing.T, path string, want store.Verified) {
	t.Helper()
	if v := schemaOf(t, path); v != store.SchemaVersion {
		t.Errorf("schema after compaction: %d, want %d", v, store.SchemaVersion)
	}
	v := verified(t, path)
	if v.Records != want.Records || v.Head != want.Head || v.Messages != want.Messages || v.Purged != want.Purged || v.Purged == 0 {
		t.Errorf("verify after compaction: %+v, before: %+v", v, want)
	}
	if _, err := os.Stat(path + ".compacting"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new file is still beside the store under its compacting name: %v", err)
	}
}

// inUse is the bytes of the file's pages up to its last one in use
// (the file itself grows ahead of them, in steps).
func inUse(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

func schemaOf(t *testing.T, path string) uint64 {
	t.Helper()
	v, err := store.SchemaOf(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestCompact(t *testing.T) {
	path := randomStore(t, 3000)
	before, size, used, v := dumpFile(t, path), fileSize(t, path), inUse(t, path), verified(t, path)
	var calls []store.UpgradeProgress
	res, err := store.Compact(path, store.CompactOptions{UpgradeOptions: store.UpgradeOptions{
		Chunk: 500, Progress: func(p store.UpgradeProgress) { calls = append(calls, p) }}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Schema != store.SchemaVersion || res.Resumed || res.Copied != res.Total || res.Total < 3000*5 || res.Kept != "" {
		t.Errorf("Compact = %+v, want every record copied, nothing resumed or kept", res)
	}
	if res.OldSize != size || res.NewSize != fileSize(t, path) {
		t.Errorf("sizes %d -> %d, the files are %d -> %d", res.OldSize, res.NewSize, size, fileSize(t, path))
	}
	// Pages about 70% full become full ones: at least a fifth fewer.
	usedAfter := inUse(t, path)
	if res.NewSize >= size || usedAfter > used*4/5 {
		t.Errorf("compacted a file of %d bytes (%d in use) into %d (%d), want a smaller file, at most 80%% of the pages",
			size, used, res.NewSize, usedAfter)
	}
	t.Logf("%d records: file %d -> %d bytes, in use %d -> %d (%.0f%%)", res.Total, size, res.NewSize, used, usedAfter,
		100*float64(usedAfter)/float64(used))
	if n := int(res.Total)/500 + 1; len(calls) != n || calls[n-1].Done != res.Total {
		t.Errorf("progress called %d times, want %d, the last at %d", len(calls), n, res.Total)
	}
	sameRecords(t, before, dumpFile(t, path))
	checkCompacted(t, path, v)
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("files beside the store after compaction: %v, want only the store (the old file removed)", entries)
	}
}

func TestCompactKeepsOldFile(t *testing.T) {
	path := randomStore(t, 200)
	sum, v := fileSum(t, path), verified(t, path)
	keep := filepath.Join(filepath.Dir(path), "before-compact.db")
	res, err := store.Compact(path, store.CompactOptions{Keep: keep})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != keep || fileSum(t, keep) != sum {
		t.Errorf("Compact = %+v; want the old file as it was at %s", res, keep)
	}
	checkCompacted(t, path, v)

	// A name taken is refused before any work: the old file is never
	// kept over another.
	sum = fileSum(t, path)
	_, err = store.Compact(path, store.CompactOptions{Keep: keep})
	if err == nil || !strings.Contains(err.Error(), keep) || !strings.Contains(err.Error(), "exists there already") {
		t.Errorf("--keep over an existing file: %v, want a refusal naming it", err)
	}
	if fileSum(t, path) != sum {
		t.Error("a refused compaction changed the store")
	}
	if _, err := os.Stat(path + ".compacting"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused compaction left a new file: %v", err)
	}
}

func TestCompactResumesAfterKill(t *testing.T) {
	path := randomStore(t, 500)
	before, sum, v := dumpFile(t, path), fileSum(t, path), verified(t, path)
	const killAfter = 12 // chunks of 100 records committed
	killRewrite(t, "compact", path, ".compacting", killAfter)
	if fileSum(t, path) != sum {
		t.Fatal("the killed compaction changed the store")
	}
	res, err := store.Compact(path, store.CompactOptions{UpgradeOptions: store.UpgradeOptions{Chunk: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Copied != res.Total-killAfter*100 {
		t.Errorf("resumed compaction = %+v; want it resumed, copying the %d records after the %d done before the kill",
			res, res.Total-killAfter*100, killAfter*100)
	}
	sameRecords(t, before, dumpFile(t, path))
	checkCompacted(t, path, v)
}

// A store written to after a kill (a daemon ran on it meanwhile) is
// compacted again from the start: the half copy is of an older state.
// (Carried on, the result lacked the new domain and broke the chain.)
func TestCompactStartsAgainAfterWrite(t *testing.T) {
	path := randomStore(t, 500)
	killRewrite(t, "compact", path, ".compacting", 12)
	db, err := store.Open(path, store.Options{Now: func() time.Time { return far }})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(store.Domain{Name: "written.example", Mode: scheduler.ModeRenew, Expiry: far.AddDate(0, 2, 0)},
			store.PlanOptions{Policy: scheduler.DefaultPolicy()})
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before, v := dumpFile(t, path), verified(t, path)
	res, err := store.Compact(path, store.CompactOptions{UpgradeOptions: store.UpgradeOptions{Chunk: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || res.Copied != res.Total {
		t.Errorf("Compact after a write = %+v; want it started again, copying every record", res)
	}
	sameRecords(t, before, dumpFile(t, path))
	checkCompacted(t, path, v)
}

// A finished copy found beside the store (a kill between its last commit
// and the swap) is not swapped in: the store may have been written since.
func TestCompactRedoesFinishedCopy(t *testing.T) {
	path := randomStore(t, 100)
	stale := filepath.Join(t.TempDir(), "errpd.db")
	raw, _ := os.ReadFile(path)
	os.WriteFile(stale, raw, 0o600)
	if _, err := store.Compact(stale, store.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(stale)
	os.WriteFile(path+".compacting", raw, 0o600)
	db, err := store.Open(path, store.Options{Now: func() time.Time { return far }})
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *store.Tx) error { return tx.MarkMessage("after-the-copy") })
	db.Close()
	before := dumpFile(t, path)
	res, err := store.Compact(path, store.CompactOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed || res.Copied != res.Total {
		t.Errorf("Compact with a finished copy beside = %+v; want it written again", res)
	}
	sameRecords(t, before, dumpFile(t, path))
}

// Env of the child that holds a store for writing, as the daemon does.
const envHoldStore = "ERRPD_TEST_HOLD_STORE"

// TestHoldStoreChild is the child: it opens the store named in its
// environment for writing, says so on stdout, and holds it until its
// stdin closes. Without that environment it does nothing.
func TestHoldStoreChild(t *testing.T) {
	path := os.Getenv(envHoldStore)
	if path == "" {
		return
	}
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fmt.Println("holding")
	io.Copy(io.Discard, os.Stdin)
}

// The daemon holds the store for writing while it runs: compaction is
// refused at once, naming the lock's holder, and writes nothing.
func TestCompactRefusesHeldStore(t *testing.T) {
	path := randomStore(t, 10)
	child := exec.Command(os.Args[0], "-test.run=^TestHoldStoreChild$")
	child.Env = append(os.Environ(), envHoldStore+"="+path)
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "holding\n" {
		t.Fatalf("the child holding the store said %q, %v", line, err)
	}
	start := time.Now()
	_, err := store.Compact(path, store.CompactOptions{UpgradeOptions: store.UpgradeOptions{Timeout: time.Minute, NoWait: true}})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", child.Process.Pid)) {
		t.Errorf("Compact of a held store: %v, want ErrLocked naming the holder, pid %d", err, child.Process.Pid)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the refusal took %s", took)
	}
	if _, err := os.Stat(path + ".compacting"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused compaction left a new file: %v", err)
	}
}

func TestCompactRefusesOldSchema(t *testing.T) {
	path := fixtureCopy(t)
	sum := fileSum(t, path)
	_, err := store.Compact(path, store.CompactOptions{})
	var old *store.OldSchemaError
	if !errors.As(err, &old) || old.Version != 1 || !strings.Contains(err.Error(), "errpd migrate") {
		t.Errorf("Compact of a schema-1 store: %v, want a refusal naming errpd migrate", err)
	}
	if fileSum(t, path) != sum {
		t.Error("the refused compaction changed the schema-1 file")
	}
	if _, err := os.Stat(path + ".compacting"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused compaction left a new file: %v", err)
	}
}

func TestCompactRefusesFullDisk(t *testing.T) {
	path := randomStore(t, 10)
	_, err := store.Compact(path, store.CompactOptions{UpgradeOptions: store.UpgradeOptions{
		FreeSpace: func(string) (uint64, error) { return 4096, nil }}})
	if err == nil || !strings.Contains(err.Error(), "compacting it needs") || !strings.Contains(err.Error(), "MB free") ||
		!strings.Contains(err.Error(), filepath.Dir(path)) {
		t.Fatalf("Compact on a full disk = %v, want a refusal naming the room needed and the directory", err)
	}
	if _, err := os.Stat(path + ".compacting"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused compaction left a new file: %v", err)
	}
}

func TestCompactMissingStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errpd.db")
	res, err := store.Compact(path, store.CompactOptions{})
	if err != nil || res.Schema != 0 {
		t.Errorf("Compact without a store = %+v, %v; want nothing done", res, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("Compact created a store")
	}
}

// A daemon started while a compaction runs waits for the store's lock;
// the compaction's swap then puts another file at the store's name. Open
// opens that one, not the old file it waited on, whose writes nobody
// would see. (Before: the write below went to the old, unlinked file.)
func TestOpenAfterSwapWhileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errpd.db")
	for _, p := range []string{path, path + ".new"} {
		db, err := store.Open(p, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	reader, err := store.Open(path, store.Options{ReadOnly: true}) // the compaction's shared lock
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *store.DB, 1)
	go func() {
		db, err := store.Open(path, store.Options{Timeout: time.Minute})
		if err != nil {
			t.Error(err)
		}
		opened <- db
	}()
	waitForWriter(t, path)
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	reader.Close()
	db := <-opened
	if db == nil {
		return
	}
	if err := db.Update(func(tx *store.Tx) error { return tx.MarkMessage("after-the-swap") }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *store.Tx) error {
		if !tx.SeenMessage("after-the-swap") {
			t.Error("the write of the daemon that waited went to the file replaced, not to the store")
		}
		return nil
	})
}

// waitForWriter waits until this process holds path open for writing
// (bbolt's open, before its lock): the file a waiting Open will lock.
func waitForWriter(t *testing.T, path string) {
	t.Helper()
	want, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); runtime.Gosched() {
		fds, _ := os.ReadDir("/proc/self/fd")
		for _, fd := range fds {
			fi, err := os.Stat("/proc/self/fd/" + fd.Name())
			info, _ := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
			var flags int
			if i := bytes.Index(info, []byte("flags:")); i >= 0 {
				fmt.Sscanf(string(info[i+len("flags:"):]), "%o", &flags)
			}
			if err == nil && os.SameFile(fi, want) && flags&syscall.O_ACCMODE == syscall.O_RDWR {
				return
			}
		}
	}
	t.Fatal("Open did not open the store for writing in 10 s")
}
