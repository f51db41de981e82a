package store_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// The fixture is a store written by errpd at 2a23107 (schema 1) with every
// kind of record that code writes, and its dump as that code read it
// (store/testdata/schema1/README.md says how both were made).
const (
	fixtureDB   = "testdata/schema1/errpd.db"
	fixtureDump = "testdata/schema1/dump.jsonl"
)

// fixtureCopy copies the fixture into a temporary directory: an upgrade
// renames files beside the store.
func fixtureCopy(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(fixtureDB)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "errpd.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(raw)
}

// dumpLine is one record of the dump, its value typed by its kind.
type dumpLine struct {
	Kind  string
	Key   string
	Value any
}

type messageDump struct {
	Raw  []byte        `json:"raw"`
	Meta store.Message `json:"meta"`
}

type coverageDump struct {
	Step     string    `json:"step"`
	Due      time.Time `json:"due"`
	Attempts int       `json:"attempts"`
}

// valueOf is the typed value a dump line of kind holds.
func valueOf(kind string) any {
	switch kind {
	case "domain":
		return new(store.Domain)
	case "step":
		return new(store.Step)
	case "cycle":
		return new(store.Cycle)
	case "message":
		return new(messageDump)
	case "audit":
		return new(store.Record)
	case "chain_head":
		return new(store.Head)
	case "inbox", "purged":
		return new(bool)
	case "verp":
		return new(string)
	case "due", "uploads", "active":
		return new([]string)
	case "counts":
		return new(map[scheduler.State]uint64)
	case "coverage":
		return new([]coverageDump)
	case "renewal":
		return new([]store.RenewalCheck)
	case "verp_key":
		return new([]byte)
	}
	return nil
}

func readDump(t *testing.T) []dumpLine {
	t.Helper()
	f, err := os.Open(fixtureDump)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dumpLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l struct {
			Kind  string          `json:"kind"`
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s:%d: %v", fixtureDump, n, err)
		}
		v := valueOf(l.Kind)
		if v == nil {
			t.Fatalf("%s:%d: unknown kind %q", fixtureDump, n, l.Kind)
		}
		if err := json.Unmarshal(l.Value, v); err != nil {
			t.Fatalf("%s:%d: %s: %v", fixtureDump, n, l.Kind, err)
		}
		out = append(out, dumpLine{l.Kind, l.Key, deref(v)})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func deref(v any) any {
	switch p := v.(type) {
	case *store.Domain:
		return *p
	case *store.Step:
		return *p
	case *store.Cycle:
		return *p
	case *messageDump:
		return *p
	case *store.Record:
		return *p
	case *store.Head:
		return *p
	case *bool:
		return *p
	case *string:
		return *p
	case *[]string:
		return *p
	case *map[scheduler.State]uint64:
		return *p
	case *[]coverageDump:
		return *p
	case *[]store.RenewalCheck:
		return *p
	case *[]byte:
		return *p
	}
	panic(fmt.Sprintf("no kind for %T", v))
}

// far is after every time in the fixture.
var far = time.Date(2126, 1, 1, 0, 0, 0, 0, time.UTC)

// snapshot reads the store through this errpd's API as the generator read
// the old one through its own (store/testdata/schema1/gen).
func snapshot(t *testing.T, db *store.DB) []dumpLine {
	t.Helper()
	var lines []dumpLine
	add := func(kind, key string, v any) { lines = append(lines, dumpLine{kind, key, v}) }
	err := db.View(func(tx *store.Tx) error {
		var ids, cycles []string
		seen := map[string]bool{}
		if err := tx.Domains(func(d store.Domain) error { add("domain", d.Name, d); return nil }); err != nil {
			return err
		}
		if err := tx.AllSteps(func(s store.Step) error {
			add("step", s.ID, s)
			ids = append(ids, s.ID)
			if !seen[s.Cycle] {
				seen[s.Cycle] = true
				cycles = append(cycles, s.Cycle)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range slices.Sorted(slices.Values(cycles)) {
			c, _, err := tx.Cycle(k)
			if err != nil {
				return err
			}
			add("cycle", k, c)
		}
		for _, id := range ids {
			raw, m, ok, err := tx.Message(id)
			if err != nil {
				return err
			}
			if ok {
				add("message", id, messageDump{raw, m})
			}
			if tx.Purged(id) {
				add("purged", id, true)
			}
			s, ok, err := tx.StepByShortID(store.ShortID(id))
			if err != nil {
				return err
			}
			if ok {
				add("verp", id, s.ID)
			}
		}
		err := tx.Audit(0, func(r store.Record) error {
			// Every record here was written by schema 1: it keeps the
			// hash over its JSON, and says so.
			if !r.Schema1 {
				t.Errorf("audit record %d, upgraded from schema 1, is not marked Schema1", r.Seq)
			}
			r.Schema1 = false
			add("audit", strconv.FormatUint(r.Seq, 10), r)
			return nil
		})
		if err != nil {
			return err
		}
		head, err := tx.ChainHead()
		if err != nil {
			return err
		}
		add("chain_head", "", head)
		for _, id := range []string{"ascio-msg-1001", "ascio-msg-1002", "ascio-msg-9999"} {
			add("inbox", id, tx.SeenMessage(id))
		}
		add("due", "", tx.DueIDs(far, 1<<30))
		add("uploads", "", tx.UploadIDs(far, 1<<30))
		active, err := tx.Active()
		if err != nil {
			return err
		}
		var activeIDs []string
		for _, s := range active {
			activeIDs = append(activeIDs, s.ID)
		}
		add("active", "", activeIDs)
		add("counts", "", tx.Counts())
		checks, err := tx.CoverageDue(far, 1<<30)
		if err != nil {
			return err
		}
		var cov []coverageDump
		for _, c := range checks {
			cov = append(cov, coverageDump{c.Step.ID, c.Due, c.Attempts})
		}
		add("coverage", "", cov)
		add("renewal", "", tx.RenewalChecksDue(far, 1<<30))
		key, err := tx.VERPKey()
		add("verp_key", "", key)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// compareWithDump holds every record of the upgraded store, read through
// today's API, against the dump, field by field. The gzip bytes of a
// message are its form, not its content: the raw bytes and their hash are
// compared instead.
func compareWithDump(t *testing.T, db *store.DB) {
	t.Helper()
	want, got := walkedCoverage(readDump(t)), snapshot(t, db)
	opts := cmp.Options{
		cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
		cmpopts.IgnoreFields(store.Message{}, "Gzip"),
		cmpopts.EquateEmpty(),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("upgraded store differs from the schema-1 dump (-dump +upgraded):\n%s", diff)
	}
	kinds := map[string]int{}
	for _, l := range got {
		kinds[l.Kind]++
	}
	if kinds["step"] < 40 || kinds["audit"] < 70 || kinds["message"] < 7 || kinds["purged"] != 1 {
		t.Errorf("the snapshot read too little of the store: %v", kinds)
	}
}

// walkedCoverage is what the schema-1 dump's coverage checks become in
// schema 2, which keeps no entry per step but walks the deadline index from
// an empty cursor (store/coverage.go): the checks put off after a failed
// attempt, with their count, and every step not answered yet and not
// skipped at its deadline + CoverageDelay, earliest first (then by key).
// Schema 1's entries of skipped steps, which its check would have dropped,
// are gone; a step with a check put off is walked once more as well.
func walkedCoverage(lines []dumpLine) []dumpLine {
	var cov []coverageDump
	for _, l := range lines {
		if s, ok := l.Value.(store.Step); ok && s.CoveredByAscio == "" && s.State != scheduler.StateSkipped {
			cov = append(cov, coverageDump{s.ID, s.Deadline.Add(store.CoverageDelay), 0})
		}
	}
	i := slices.IndexFunc(lines, func(l dumpLine) bool { return l.Kind == "coverage" })
	for _, c := range lines[i].Value.([]coverageDump) {
		if c.Attempts > 0 {
			cov = append(cov, c)
		}
	}
	slices.SortStableFunc(cov, func(a, b coverageDump) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return bytes.Compare(store.Key(a.Step), store.Key(b.Step))
	})
	lines[i].Value = cov
	return lines
}

// checkUpgraded opens the upgraded store with today's errpd, compares it
// with the dump, verifies it, and writes to it: the audit trail goes on
// from the old sequence.
func checkUpgraded(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path, store.Options{Now: func() time.Time { return far }})
	if err != nil {
		t.Fatalf("opening the upgraded store: %v", err)
	}
	defer db.Close()
	compareWithDump(t, db)
	v, err := db.Verify()
	if err != nil {
		t.Fatalf("verify on the upgraded store: %v", err)
	}
	if v.Records < 70 || v.Purged != 1 {
		t.Errorf("verify walked %d records and %d purged messages, want the fixture's (>= 70, 1)", v.Records, v.Purged)
	}
	id := "due.com/20261230T120000Z/reminder1"
	if err := db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateMissed, "", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	v2, err := db.Verify()
	if err != nil {
		t.Fatalf("verify after a write to the upgraded store: %v", err)
	}
	if v2.Head.Seq != v.Head.Seq+1 {
		t.Errorf("audit sequence after a write: %d, want %d (the old bucket's sequence carried over)", v2.Head.Seq, v.Head.Seq+1)
	}
}

func TestUpgradeFixture(t *testing.T) {
	path := fixtureCopy(t)
	before := fileSum(t, path)
	var calls []store.UpgradeProgress
	res, err := store.Upgrade(path, store.UpgradeOptions{Chunk: 25, Progress: func(p store.UpgradeProgress) { calls = append(calls, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.From != 1 || res.Resumed || res.Converted != res.Total || res.Total == 0 {
		t.Errorf("Upgrade = %+v, want from 1, not resumed, every record converted", res)
	}
	if want := path + ".schema1-backup"; res.Backup != want {
		t.Errorf("backup %q, want %q", res.Backup, want)
	}
	if fileSum(t, res.Backup) != before {
		t.Error("the old file, kept as the backup, was changed")
	}
	if _, err := os.Stat(path + ".upgrading"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the new file is still beside the store under its upgrading name: %v", err)
	}
	// A call after each full chunk, and one at the end with the rest.
	if n := int(res.Total)/25 + 1; len(calls) != n || calls[len(calls)-1].Done != res.Total {
		t.Errorf("progress called %d times, last %+v; want %d and the end at %d", len(calls), calls[len(calls)-1], n, res.Total)
	}
	checkUpgraded(t, path)

	again, err := store.Upgrade(path, store.UpgradeOptions{})
	if err != nil || again.From != 0 {
		t.Errorf("a second Upgrade = %+v, %v; want nothing to do", again, err)
	}
}

func TestOpenRefusesOldSchema(t *testing.T) {
	path := fixtureCopy(t)
	before := fileSum(t, path)
	for _, ro := range []bool{false, true} {
		_, err := store.Open(path, store.Options{ReadOnly: ro})
		var old *store.OldSchemaError
		if !errors.As(err, &old) || old.Version != 1 || !strings.Contains(err.Error(), "errpd migrate") {
			t.Errorf("Open(read-only %v) = %v, want an OldSchemaError saying how to upgrade", ro, err)
		}
	}
	if fileSum(t, path) != before {
		t.Error("Open changed the schema-1 file it refused")
	}
}

func TestUpgradeRefusesFullDisk(t *testing.T) {
	path := fixtureCopy(t)
	_, err := store.Upgrade(path, store.UpgradeOptions{FreeSpace: func(string) (uint64, error) { return 4096, nil }})
	if err == nil || !strings.Contains(err.Error(), "MB free") || !strings.Contains(err.Error(), filepath.Dir(path)) {
		t.Fatalf("Upgrade on a full disk = %v, want a refusal naming the room needed and the directory", err)
	}
	if _, err := os.Stat(path + ".upgrading"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused upgrade left a new file: %v", err)
	}
}

func TestUpgradeKeepsEarlierBackup(t *testing.T) {
	path := fixtureCopy(t)
	earlier := []byte("an earlier backup, to keep")
	if err := os.WriteFile(path+".schema1-backup", earlier, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := store.Upgrade(path, store.UpgradeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Backup != path+".schema1-backup.2" {
		t.Errorf("backup %q, want the next free name", res.Backup)
	}
	if raw, _ := os.ReadFile(path + ".schema1-backup"); !bytes.Equal(raw, earlier) {
		t.Error("the earlier backup was overwritten")
	}
}

func TestUpgradeCurrentStoreIsLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errpd.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	res, err := store.Upgrade(path, store.UpgradeOptions{})
	if err != nil || res.From != 0 {
		t.Errorf("Upgrade of a current store = %+v, %v; want nothing done", res, err)
	}
	if _, err := os.Stat(path + ".schema2-backup"); !errors.Is(err, os.ErrNotExist) {
		t.Error("a backup was made of a current store")
	}
}

// Env of the child that the resume tests kill mid-rewrite.
const (
	envKillRewrite = "ERRPD_TEST_KILL_REWRITE" // upgrade or compact
	envKillStore   = "ERRPD_TEST_KILL_STORE"
	envKillAfter   = "ERRPD_TEST_KILL_AFTER"
)

// killChunk is the chunk of records of each rewrite that the child runs.
var killChunk = map[string]int{"upgrade": 10, "compact": 100}

// TestRewriteKilledChild is the child: it upgrades or compacts the store
// named in its environment, in chunks of killChunk records, and kills
// itself with SIGKILL once the given number of chunks is committed.
// Without that environment it does nothing.
func TestRewriteKilledChild(t *testing.T) {
	kind, path := os.Getenv(envKillRewrite), os.Getenv(envKillStore)
	if path == "" {
		return
	}
	after, _ := strconv.Atoi(os.Getenv(envKillAfter))
	chunks := 0
	o := store.UpgradeOptions{Chunk: killChunk[kind], Progress: func(store.UpgradeProgress) {
		if chunks++; chunks == after {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}}
	if kind == "compact" {
		store.Compact(path, store.CompactOptions{UpgradeOptions: o})
	} else {
		store.Upgrade(path, o)
	}
	t.Fatalf("the %s finished: it was to be killed", kind)
}

// killRewrite runs a child that upgrades or compacts (kind) path and dies
// of SIGKILL after chunks chunks of killChunk[kind] records, leaving its
// new file beside path (suffix) to resume.
func killRewrite(t *testing.T, kind, path, suffix string, chunks int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRewriteKilledChild$")
	cmd.Env = append(os.Environ(), envKillRewrite+"="+kind, envKillStore+"="+path, envKillAfter+"="+strconv.Itoa(chunks))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child was to die of SIGKILL mid-%s; got %v:\n%s", kind, err, out)
	}
	if _, err := os.Stat(path + suffix); err != nil {
		t.Fatalf("the killed %s left no new file to resume: %v", kind, err)
	}
}

func TestUpgradeResumesAfterKill(t *testing.T) {
	path := fixtureCopy(t)
	before := fileSum(t, path)
	const killAfter = 7 // chunks of 10 records committed
	killRewrite(t, "upgrade", path, ".upgrading", killAfter)
	if fileSum(t, path) != before {
		t.Fatal("the killed upgrade changed the old file")
	}
	if _, err := store.Open(path, store.Options{ReadOnly: true}); !errors.As(err, new(*store.OldSchemaError)) {
		t.Fatalf("after the kill the store is to be still schema 1; Open = %v", err)
	}

	res, err := store.Upgrade(path, store.UpgradeOptions{Chunk: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Converted != res.Total-killAfter*10 {
		t.Errorf("resumed upgrade = %+v; want it resumed, converting the %d records after the %d done before the kill",
			res, res.Total-killAfter*10, killAfter*10)
	}
	if fileSum(t, res.Backup) != before {
		t.Error("the backup is not the old file as it was")
	}
	checkUpgraded(t, path)
}

// A kill between the backup's link and the rename leaves the old file
// under both names and the finished new file beside them: the next
// Upgrade only swaps, keeping that backup (not a second one).
func TestUpgradeAfterKillInSwap(t *testing.T) {
	done := fixtureCopy(t)
	if _, err := store.Upgrade(done, store.UpgradeOptions{}); err != nil {
		t.Fatal(err)
	}
	path := fixtureCopy(t)
	before := fileSum(t, path)
	raw, err := os.ReadFile(done)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".upgrading", raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, path+".schema1-backup"); err != nil {
		t.Fatal(err)
	}
	res, err := store.Upgrade(path, store.UpgradeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Converted != 0 || res.Backup != path+".schema1-backup" {
		t.Errorf("Upgrade after a kill in the swap = %+v; want it resumed, nothing converted, the backup already linked", res)
	}
	if _, err := os.Stat(path + ".schema1-backup.2"); !errors.Is(err, os.ErrNotExist) {
		t.Error("a second backup was made of the same old file")
	}
	if fileSum(t, res.Backup) != before {
		t.Error("the backup is not the old file")
	}
	checkUpgraded(t, path)
}
