package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// t0 is the clock at the start of every test.
var t0 = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

// clock is the store's injected clock; tests move it by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type bundle struct {
	db    *store.DB
	path  string
	clock *clock
	opts  store.PlanOptions
}

// setup opens a fresh store in a temporary folder, closed at the end of
// the test.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{
		path:  filepath.Join(t.TempDir(), "errpd.db"),
		clock: &clock{t: t0},
		opts:  store.PlanOptions{Policy: scheduler.DefaultPolicy(), Reason: "renewed"},
	}
	b.db = b.open(t)
	t.Cleanup(func() { b.db.Close() })
	return b
}

func (b *bundle) open(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(b.path, store.Options{Now: b.clock.Now, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func domain(name string, expiry time.Time, mode scheduler.Mode) store.Domain {
	return store.Domain{
		Name:       name,
		Mode:       mode,
		Expiry:     expiry,
		Registrant: store.Registrant{Name: "Ana Registrant", Email: "ana@mail.example", Language: "en"},
		Brand:      "example",
	}
}

func (b *bundle) upsert(t *testing.T, d store.Domain) store.Change {
	t.Helper()
	return b.upsertOpts(t, d, b.opts)
}

func (b *bundle) upsertOpts(t *testing.T, d store.Domain, o store.PlanOptions) store.Change {
	t.Helper()
	var ch store.Change
	err := b.db.Update(func(tx *store.Tx) error {
		var err error
		ch, err = tx.Upsert(d, o)
		return err
	})
	if err != nil {
		t.Fatalf("Upsert(%s): %v", d.Name, err)
	}
	return ch
}

// send takes a due step through sending to sent, as a worker does.
func (b *bundle) send(t *testing.T, id string, change func(*store.Step)) store.Step {
	t.Helper()
	b.transition(t, id, []scheduler.State{scheduler.StateDue}, scheduler.StateSending, nil)
	return b.transition(t, id, []scheduler.State{scheduler.StateSending}, scheduler.StateSent, change)
}

func (b *bundle) transition(t *testing.T, id string, from []scheduler.State, to scheduler.State, change func(*store.Step)) store.Step {
	t.Helper()
	var s store.Step
	err := b.db.Update(func(tx *store.Tx) error {
		var err error
		s, err = tx.Transition(id, from, to, "test", change)
		return err
	})
	if err != nil {
		t.Fatalf("Transition(%s -> %s): %v", id, to, err)
	}
	return s
}

func (b *bundle) domain(t *testing.T, name string) store.Domain {
	t.Helper()
	var d store.Domain
	err := b.db.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		d, ok, err = tx.Domain(name)
		if err == nil && !ok {
			err = errors.New("no such domain")
		}
		return err
	})
	if err != nil {
		t.Fatalf("Domain(%s): %v", name, err)
	}
	return d
}

func (b *bundle) cycle(t *testing.T, key string) store.Cycle {
	t.Helper()
	var c store.Cycle
	err := b.db.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		c, ok, err = tx.Cycle(key)
		if err == nil && !ok {
			err = errors.New("no such cycle")
		}
		return err
	})
	if err != nil {
		t.Fatalf("Cycle(%s): %v", key, err)
	}
	return c
}

func (b *bundle) step(t *testing.T, id string) store.Step {
	t.Helper()
	var s store.Step
	err := b.db.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		s, ok, err = tx.Step(id)
		if err == nil && !ok {
			err = errors.New("no such step")
		}
		return err
	})
	if err != nil {
		t.Fatalf("Step(%s): %v", id, err)
	}
	return s
}

// steps returns a cycle's steps by notice.
func (b *bundle) steps(t *testing.T, cycle string) map[scheduler.Notice]store.Step {
	t.Helper()
	out := map[scheduler.Notice]store.Step{}
	err := b.db.View(func(tx *store.Tx) error {
		steps, err := tx.Steps(cycle)
		for _, s := range steps {
			out[s.Notice] = s
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *bundle) allSteps(t *testing.T) []store.Step {
	t.Helper()
	var out []store.Step
	if err := b.db.View(func(tx *store.Tx) error {
		return tx.AllSteps(func(s store.Step) error { out = append(out, s); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *bundle) audit(t *testing.T) []store.Record {
	t.Helper()
	var out []store.Record
	if err := b.db.View(func(tx *store.Tx) error {
		return tx.Audit(0, func(r store.Record) error { out = append(out, r); return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *bundle) due(t *testing.T, at time.Time, limit int) []store.Step {
	t.Helper()
	var out []store.Step
	if err := b.db.View(func(tx *store.Tx) error {
		var err error
		out, err = tx.Due(at, limit)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// end is later than every send time a test plans.
var end = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

// checkInvariants checks what must hold after any sequence of operations:
// the due index holds exactly the waiting steps, the counts match the steps'
// states, every step's id is derived from its domain, expiry and notice,
// the audit records form an unbroken hash chain, and the deadline index
// holds every step at its deadline.
func (b *bundle) checkInvariants(t *testing.T) {
	t.Helper()
	steps := b.allSteps(t)
	var waiting []string
	tally := map[scheduler.State]uint64{}
	for _, s := range steps {
		tally[s.State]++
		if s.State.Waiting() {
			waiting = append(waiting, s.ID)
		}
		if want := store.StepID(s.Domain, s.Expiry, s.Notice); s.ID != want {
			t.Errorf("step id %s, want %s", s.ID, want)
		}
	}
	var due []string
	for _, s := range b.due(t, end, 1<<30) {
		due = append(due, s.ID)
	}
	slices.Sort(waiting)
	slices.Sort(due)
	if diff := cmp.Diff(waiting, due); diff != "" {
		t.Errorf("due index differs from the waiting steps (-waiting +due):\n%s", diff)
	}
	var counts map[scheduler.State]uint64
	b.db.View(func(tx *store.Tx) error { counts = tx.Counts(); return nil })
	for st, n := range counts {
		if n == 0 {
			delete(counts, st)
		}
	}
	if diff := cmp.Diff(tally, counts); diff != "" {
		t.Errorf("Counts differ from the steps' states (-steps +counts):\n%s", diff)
	}
	checkChain(t, b.audit(t))
	b.checkDeadlineIndex(t) // store/deadline_test.go
}

// checkChain: sequence numbers from 1 without a gap, each record's Prev
// the hash before it and its Hash its own. The steps of a cycle's planning
// record come as one record each, with the record's Seq, Prev and Hash.
func checkChain(t *testing.T, recs []store.Record) {
	t.Helper()
	prev, seq := "", uint64(0)
	for i, r := range recs {
		if i > 0 && r.Seq == seq && len(r.Planned) > 0 && r.Hash == recs[i-1].Hash {
			continue // another step of the same planning record
		}
		if r.Seq != seq+1 {
			t.Errorf("record %d follows record %d", r.Seq, seq)
		}
		if r.Prev != prev {
			t.Errorf("record %d: prev %q, want the hash before it, %q", r.Seq, r.Prev, prev)
		}
		if got := r.ComputeHash(); r.Hash != got {
			t.Errorf("record %d: hash %s, recomputed %s", r.Seq, r.Hash, got)
		}
		prev, seq = r.Hash, r.Seq
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day) // reminder1 due now
	b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire))
	b.upsert(t, domain("b.example", expiry.Add(90*scheduler.Day), scheduler.ModeRenew))
	b.send(t, store.StepID("a.example", expiry, scheduler.Reminder1),
		func(s *store.Step) {
			s.MessageID, s.SentAt, s.SMTPReply = "<x@example>", t0, "250 ok"
		})

	type snapshot struct {
		Domains []store.Domain
		Cycles  []store.Cycle
		Steps   []store.Step
		Audit   []store.Record
		Counts  map[scheduler.State]uint64
		Schema  uint64
	}
	take := func(db *store.DB) snapshot {
		var s snapshot
		err := db.View(func(tx *store.Tx) error {
			if err := tx.Domains(func(d store.Domain) error {
				s.Domains = append(s.Domains, d)
				c, _, err := tx.Cycle(d.Cycle)
				s.Cycles = append(s.Cycles, c)
				return err
			}); err != nil {
				return err
			}
			if err := tx.AllSteps(func(st store.Step) error { s.Steps = append(s.Steps, st); return nil }); err != nil {
				return err
			}
			s.Counts = tx.Counts()
			return tx.Audit(0, func(r store.Record) error { s.Audit = append(s.Audit, r); return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		db.Bolt().View(func(tx *bolt.Tx) error {
			s.Schema = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("schema_version")))
			return nil
		})
		return s
	}
	before := take(b.db)
	if len(before.Domains) != 2 || len(before.Steps) != 6 || len(before.Audit) != 8 {
		t.Fatalf("before reopening: %d domains, %d steps, %d audit records; want 2, 6, 8",
			len(before.Domains), len(before.Steps), len(before.Audit))
	}
	if before.Schema != store.SchemaVersion {
		t.Errorf("schema version %d, want %d", before.Schema, store.SchemaVersion)
	}
	if err := b.db.Close(); err != nil {
		t.Fatal(err)
	}
	b.db = b.open(t)
	if diff := cmp.Diff(before, take(b.db)); diff != "" {
		t.Errorf("reopened store differs (-before +after):\n%s", diff)
	}
	b.checkInvariants(t)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.db.Close()

	raw, err := bolt.Open(b.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, store.SchemaVersion+1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), v)
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}

	for _, ro := range []bool{false, true} {
		db, err := store.Open(b.path, store.Options{ReadOnly: ro, Timeout: 100 * time.Millisecond})
		if err == nil {
			db.Close()
			t.Fatalf("Open(ReadOnly: %v) of a newer schema succeeded", ro)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("schema version %d is newer", store.SchemaVersion+1)) || !strings.Contains(err.Error(), "upgrade errpd") {
			t.Errorf("Open(ReadOnly: %v): error %q does not say the schema is newer", ro, err)
		}
	}
}

func TestOpenRefusesForeignFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "other.db")
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, err = store.Open(path, store.Options{ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "not an errpd store") {
		t.Errorf("read-only Open of an empty bbolt file: %v, want 'not an errpd store'", err)
	}
}

func TestOpenLockedBySecondWriter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	start := time.Now()
	db, err := store.Open(b.path, store.Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		db.Close()
		t.Fatal("a second writer opened a store that is open")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("second writer: %v, want ErrLocked", err)
	}
	// bbolt gives up a retry interval (50ms) before the timeout; what
	// matters is that the short timeout is honoured, not the default 5s.
	if waited := time.Since(start); waited > 2*time.Second {
		t.Errorf("second writer waited %s despite its 100ms timeout", waited)
	}
	if !strings.Contains(err.Error(), "waited 100ms") {
		t.Errorf("error %q does not say how long it waited", err)
	}
	b.db.Close()
	b.db = b.open(t) // free again once the first one closed
}

func TestUpsertTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(60 * scheduler.Day)
	d := domain("a.example", expiry, scheduler.ModeExpire)
	if got := b.upsert(t, d); got != store.Added {
		t.Fatalf("first Upsert: %s, want %s", got, store.Added)
	}
	steps := b.allSteps(t)
	audit := b.audit(t)
	if len(steps) != 4 || len(audit) != 4 {
		t.Fatalf("first Upsert made %d steps and %d audit records, want 4 and 4", len(steps), len(audit))
	}
	for _, s := range steps {
		if want := store.StepID("a.example", expiry, s.Notice); s.ID != want {
			t.Errorf("step id %q, want %q", s.ID, want)
		}
		dom, exp, n, err := store.ParseStepID(s.ID)
		if err != nil || dom != "a.example" || !exp.Equal(expiry) || n != s.Notice {
			t.Errorf("ParseStepID(%q) = %s, %s, %s, %v", s.ID, dom, exp, n, err)
		}
	}
	if got, want := store.StepID("a.example", expiry, scheduler.Reminder1), "a.example/20270430T090000Z/reminder1"; got != want {
		t.Errorf("StepID = %q, want %q", got, want)
	}

	// Later, the same facts with the expiry in another zone and with
	// sub-second noise: still the same cycle, nothing changes.
	b.clock.Set(t0.Add(time.Hour))
	again := d
	again.Expiry = expiry.In(time.FixedZone("X", 5*3600)).Add(300 * time.Millisecond)
	if got := b.upsert(t, again); got != store.Unchanged {
		t.Errorf("second Upsert: %s, want %s", got, store.Unchanged)
	}
	if diff := cmp.Diff(steps, b.allSteps(t)); diff != "" {
		t.Errorf("second Upsert changed the steps (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(audit, b.audit(t)); diff != "" {
		t.Errorf("second Upsert changed the audit trail:\n%s", diff)
	}
	b.checkInvariants(t)
}

func TestUpsertKeepsOrderIDAndUpdatesFacts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(60 * scheduler.Day)
	d := domain("a.example", expiry, scheduler.ModeRenew)
	d.OrderID = "TEST-1"
	b.upsert(t, d)

	d.OrderID = "" // a calendar without order ids does not erase it
	if got := b.upsert(t, d); got != store.Unchanged {
		t.Errorf("Upsert without order id: %s, want %s", got, store.Unchanged)
	}
	d.Registrant.Email = "new@mail.example"
	if got := b.upsert(t, d); got != store.Updated {
		t.Errorf("Upsert with a new registrant: %s, want %s", got, store.Updated)
	}
	got := b.domain(t, "a.example")
	if got.OrderID != "TEST-1" || got.Registrant.Email != "new@mail.example" {
		t.Errorf("domain = order %q, e-mail %q; want TEST-1, new@mail.example", got.OrderID, got.Registrant.Email)
	}
	if c := b.cycle(t, got.Cycle); c.Registrant.Email != "new@mail.example" || c.OrderID != "TEST-1" {
		t.Errorf("cycle = order %q, e-mail %q; want TEST-1, new@mail.example", c.OrderID, c.Registrant.Email)
	}
	if n := len(b.allSteps(t)); n != 2 {
		t.Errorf("%d steps, want 2", n)
	}
	b.checkInvariants(t)
}

func TestRenewalClosesCycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := t0.Add(30 * scheduler.Day) // reminder1's window is open
	b.upsert(t, domain("a.example", old, scheduler.ModeExpire))
	oldCycle := store.CycleKey("a.example", old)
	r1 := store.StepID("a.example", old, scheduler.Reminder1)
	sent := b.send(t, r1, func(s *store.Step) {
		s.MessageID, s.SentAt, s.SMTPReply = "<r1@example>", t0, "250 2.0.0 ok"
	})

	b.clock.Set(t0.Add(2 * time.Hour))
	renewed := old.AddDate(1, 0, 0)
	if got := b.upsert(t, domain("a.example", renewed, scheduler.ModeExpire)); got != store.NewCycle {
		t.Fatalf("Upsert with a later expiry: %s, want %s", got, store.NewCycle)
	}

	c := b.cycle(t, oldCycle)
	if !c.Closed.Equal(t0.Add(2 * time.Hour)) {
		t.Errorf("old cycle closed at %s, want %s", c.Closed, t0.Add(2*time.Hour))
	}
	wantReason := "renewed: new expiry " + renewed.Format(time.RFC3339)
	if c.Reason != wantReason {
		t.Errorf("old cycle reason %q, want %q", c.Reason, wantReason)
	}
	oldSteps := b.steps(t, oldCycle)
	if diff := cmp.Diff(sent, oldSteps[scheduler.Reminder1]); diff != "" {
		t.Errorf("the sent step changed (-before +after):\n%s", diff)
	}
	for _, n := range []scheduler.Notice{scheduler.Reminder2, scheduler.Reminder3, scheduler.Suspension} {
		s := oldSteps[n]
		if s.State != scheduler.StateSkipped || s.Reason != wantReason {
			t.Errorf("old %s: %s (%q), want skipped (%q)", n, s.State, s.Reason, wantReason)
		}
	}

	d := b.domain(t, "a.example")
	newCycle := store.CycleKey("a.example", renewed)
	if d.Cycle != newCycle || !d.Expiry.Equal(renewed) {
		t.Errorf("domain cycle %s expiry %s, want %s and %s", d.Cycle, d.Expiry, newCycle, renewed)
	}
	if c := b.cycle(t, newCycle); !c.Closed.IsZero() || c.Mode != scheduler.ModeExpire {
		t.Errorf("new cycle: closed %s, mode %s; want open, expire", c.Closed, c.Mode)
	}
	newSteps := b.steps(t, newCycle)
	if len(newSteps) != 4 {
		t.Errorf("new cycle has %d steps, want 4", len(newSteps))
	}
	for n, s := range newSteps {
		if s.State != scheduler.StatePlanned {
			t.Errorf("new %s is %s, want planned", n, s.State)
		}
	}
	for _, s := range b.due(t, end, 100) {
		if s.Cycle == oldCycle {
			t.Errorf("step %s of the closed cycle is still in the due index", s.ID)
		}
	}
	b.checkInvariants(t)
}

func TestModeSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(60 * scheduler.Day)
	cycle := store.CycleKey("a.example", expiry)
	b.upsert(t, domain("a.example", expiry, scheduler.ModeRenew))
	if n := len(b.steps(t, cycle)); n != 2 {
		t.Fatalf("renew cycle has %d steps, want 2", n)
	}
	states := func() map[scheduler.Notice]string {
		out := map[scheduler.Notice]string{}
		for n, s := range b.steps(t, cycle) {
			out[n] = string(s.State) + " " + s.Reason
		}
		return out
	}
	planned := string(scheduler.StatePlanned) + " "

	if got := b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire)); got != store.Updated {
		t.Errorf("renew -> expire: %s, want %s", got, store.Updated)
	}
	want := map[scheduler.Notice]string{
		scheduler.Reminder1: planned, scheduler.Reminder2: planned,
		scheduler.Reminder3: planned, scheduler.Suspension: planned,
	}
	if diff := cmp.Diff(want, states()); diff != "" {
		t.Errorf("renew -> expire (-want +got):\n%s", diff)
	}

	if got := b.upsert(t, domain("a.example", expiry, scheduler.ModeRenew)); got != store.Updated {
		t.Errorf("expire -> renew: %s, want %s", got, store.Updated)
	}
	skipped := string(scheduler.StateSkipped) + " mode switched to renew"
	want[scheduler.Reminder3], want[scheduler.Suspension] = skipped, skipped
	if diff := cmp.Diff(want, states()); diff != "" {
		t.Errorf("expire -> renew (-want +got):\n%s", diff)
	}

	// Expire again (the registrant turned auto-renew off once more): the
	// notices of expire mode are owed again.
	if got := b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire)); got != store.Updated {
		t.Errorf("renew -> expire again: %s, want %s", got, store.Updated)
	}
	want[scheduler.Reminder3], want[scheduler.Suspension] = planned, planned
	if diff := cmp.Diff(want, states()); diff != "" {
		t.Errorf("renew -> expire again (-want +got):\n%s", diff)
	}
	b.checkInvariants(t)
}

func TestStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day)
	b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire))
	cycle := store.CycleKey("a.example", expiry)
	r1 := store.StepID("a.example", expiry, scheduler.Reminder1)
	sent := b.send(t, r1, nil)

	stop := func(name string) {
		t.Helper()
		if err := b.db.Update(func(tx *store.Tx) error { return tx.Stop(name, "transferred away") }); err != nil {
			t.Fatalf("Stop(%s): %v", name, err)
		}
	}
	stop("a.example")
	for n, s := range b.steps(t, cycle) {
		if n == scheduler.Reminder1 {
			if diff := cmp.Diff(sent, s); diff != "" {
				t.Errorf("Stop changed the sent step:\n%s", diff)
			}
			continue
		}
		if s.State != scheduler.StateSkipped || s.Reason != "transferred away" {
			t.Errorf("%s after Stop: %s (%q), want skipped (transferred away)", n, s.State, s.Reason)
		}
	}
	if d := b.domain(t, "a.example"); d.Stopped != "transferred away" {
		t.Errorf("domain stopped %q, want 'transferred away'", d.Stopped)
	}
	if c := b.cycle(t, cycle); c.Closed.IsZero() || c.Reason != "transferred away" {
		t.Errorf("cycle after Stop: closed %s, reason %q", c.Closed, c.Reason)
	}
	n := len(b.audit(t))
	stop("a.example")  // again: nothing more
	stop("nx.example") // unknown: nothing
	if got := len(b.audit(t)); got != n {
		t.Errorf("Stop of a stopped or unknown domain added %d audit records", got-n)
	}
	if due := b.due(t, end, 10); len(due) != 0 {
		t.Errorf("%d steps still due after Stop", len(due))
	}
	b.checkInvariants(t)
}

func TestOutOfScope(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := b.opts
	o.InScope = func(d string) bool { return !strings.HasSuffix(d, ".out") }
	expiry := t0.Add(30 * scheduler.Day)
	b.upsertOpts(t, domain("a.out", expiry, scheduler.ModeExpire), o)
	b.upsertOpts(t, domain("a.example", expiry, scheduler.ModeExpire), o)

	if c := b.cycle(t, store.CycleKey("a.out", expiry)); c.InScope {
		t.Error("cycle of a.out is in scope")
	}
	steps := b.steps(t, store.CycleKey("a.out", expiry))
	if len(steps) != 4 {
		t.Errorf("a.out has %d steps, want 4 (skipped, for the record)", len(steps))
	}
	for n, s := range steps {
		if s.State != scheduler.StateSkipped || !strings.Contains(s.Reason, "out of scope") || !s.SendAt.IsZero() {
			t.Errorf("a.out %s: %s (%q) send at %s; want skipped, out of scope, no send time", n, s.State, s.Reason, s.SendAt)
		}
	}
	for _, s := range b.due(t, end, 100) {
		if s.Domain != "a.example" {
			t.Errorf("out-of-scope step %s is in the due index", s.ID)
		}
	}
	b.checkInvariants(t)
}

func TestDue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// Expiries spread so that windows open at different times; b and c
	// share an expiry and d and e both have reminder1 due now, so that ties
	// order by step id.
	for _, d := range []struct {
		name string
		in   time.Duration
	}{
		{"a.example", 3*scheduler.Day + time.Minute},
		{"c.example", 20 * scheduler.Day},
		{"b.example", 20 * scheduler.Day},
		{"e.example", 30 * scheduler.Day},
		{"d.example", 31 * scheduler.Day},
		{"f.example", 40*scheduler.Day + time.Second},
		{"g.example", 100 * scheduler.Day},
		{"h.example", 200 * scheduler.Day},
	} {
		b.upsert(t, domain(d.name, t0.Add(d.in), scheduler.ModeExpire))
	}
	var waiting []store.Step
	for _, s := range b.allSteps(t) {
		if s.State.Waiting() {
			waiting = append(waiting, s)
		}
	}
	slices.SortFunc(waiting, func(x, y store.Step) int {
		if c := x.SendAt.Compare(y.SendAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	ids := func(steps []store.Step) []string {
		var out []string
		for _, s := range steps {
			out = append(out, s.ID)
		}
		return out
	}
	upTo := func(at time.Time) []store.Step {
		var out []store.Step
		for _, s := range waiting {
			if !s.SendAt.After(at) {
				out = append(out, s)
			}
		}
		return out
	}

	for _, at := range []time.Time{t0.Add(-time.Hour), t0, t0.Add(10 * scheduler.Day), t0.Add(60 * scheduler.Day), end} {
		want := upTo(at)
		if diff := cmp.Diff(ids(want), ids(b.due(t, at, 1000))); diff != "" {
			t.Errorf("Due(%s) (-want +got):\n%s", at, diff)
		}
		if len(want) > 2 {
			if diff := cmp.Diff(ids(want[:2]), ids(b.due(t, at, 2))); diff != "" {
				t.Errorf("Due(%s, 2) (-want +got):\n%s", at, diff)
			}
		}
	}
	// A step sent at exactly its send time is due at that second.
	if got := b.due(t, waiting[len(waiting)-1].SendAt, 1000); len(got) != len(waiting) {
		t.Errorf("Due at the last send time: %d steps, want %d", len(got), len(waiting))
	}

	var next time.Time
	var ok bool
	b.db.View(func(tx *store.Tx) error { next, ok = tx.NextDue(); return nil })
	if !ok || !next.Equal(waiting[0].SendAt) {
		t.Errorf("NextDue = %s, %v; want %s", next, ok, waiting[0].SendAt)
	}

	// Claiming the due steps takes them out of the due index.
	nowDue := upTo(t0)
	if len(nowDue) == 0 {
		t.Fatal("no step due at t0")
	}
	for _, s := range nowDue {
		b.transition(t, s.ID, []scheduler.State{scheduler.StateDue}, scheduler.StateSending, nil)
	}
	if got := b.due(t, t0, 1000); len(got) != 0 {
		t.Errorf("Due(t0) after claiming every due step: %v", ids(got))
	}
	b.db.View(func(tx *store.Tx) error { next, ok = tx.NextDue(); return nil })
	if want := waiting[len(nowDue)].SendAt; !ok || !next.Equal(want) {
		t.Errorf("NextDue after claiming = %s, %v; want %s", next, ok, want)
	}
	var active []store.Step
	b.db.View(func(tx *store.Tx) error { var err error; active, err = tx.Active(); return err })
	if len(active) != len(nowDue) {
		t.Errorf("Active has %d steps, want the %d claimed", len(active), len(nowDue))
	}

	// With nothing waiting, nothing is next.
	for _, s := range b.due(t, end, 1000) {
		b.transition(t, s.ID, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateSkipped, nil)
	}
	b.db.View(func(tx *store.Tx) error { next, ok = tx.NextDue(); return nil })
	if ok {
		t.Errorf("NextDue = %s with no waiting step", next)
	}
	b.checkInvariants(t)
}

func TestTransitionIsConditional(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day)
	b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire))
	r1 := store.StepID("a.example", expiry, scheduler.Reminder1)
	before := b.step(t, r1)
	audit := b.audit(t)

	err := b.db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(r1, []scheduler.State{scheduler.StateSending, scheduler.StatePlanned}, scheduler.StateSent,
			"", func(s *store.Step) { s.SMTPReply = "250 ok" })
		return err
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("Transition from the wrong state: %v, want ErrConflict", err)
	}
	if diff := cmp.Diff(before, b.step(t, r1)); diff != "" {
		t.Errorf("a refused Transition changed the step:\n%s", diff)
	}
	if got := len(b.audit(t)); got != len(audit) {
		t.Errorf("a refused Transition added %d audit records", got-len(audit))
	}
	err = b.db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition("nx.example/20270101T000000Z/reminder1", []scheduler.State{scheduler.StateDue}, scheduler.StateSending, "", nil)
		return err
	})
	if err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("Transition of an unknown step: %v, want a not-found error", err)
	}

	// Each state change appends one record, naming the step and both states.
	moves := []struct {
		from, to scheduler.State
		detail   string
	}{
		{scheduler.StateDue, scheduler.StateSending, "claimed"},
		{scheduler.StateSending, scheduler.StateSent, "250 2.0.0 queued"},
		{scheduler.StateSent, scheduler.StateUploading, "upload"},
		{scheduler.StateUploading, scheduler.StateProved, "200"},
	}
	for i, m := range moves {
		b.clock.Set(t0.Add(time.Duration(i+1) * time.Minute))
		err := b.db.Update(func(tx *store.Tx) error {
			_, err := tx.Transition(r1, []scheduler.State{m.from}, m.to, m.detail, nil)
			return err
		})
		if err != nil {
			t.Fatalf("%s -> %s: %v", m.from, m.to, err)
		}
		recs := b.audit(t)
		if len(recs) != len(audit)+i+1 {
			t.Fatalf("after %s -> %s: %d audit records, want %d", m.from, m.to, len(recs), len(audit)+i+1)
		}
		last := recs[len(recs)-1]
		want := store.Record{Seq: recs[len(recs)-2].Seq + 1, At: t0.Add(time.Duration(i+1) * time.Minute),
			Step: r1, From: m.from, To: m.to, Detail: m.detail, Prev: recs[len(recs)-2].Hash, Hash: last.Hash}
		if diff := cmp.Diff(want, last); diff != "" {
			t.Errorf("record of %s -> %s (-want +got):\n%s", m.from, m.to, diff)
		}
	}
	if s := b.step(t, r1); s.State != scheduler.StateProved || !s.Updated.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("step is %s updated %s, want proved at %s", s.State, s.Updated, t0.Add(4*time.Minute))
	}

	// A change that keeps the state (a retry later) adds no record.
	r2 := store.StepID("a.example", expiry, scheduler.Reminder2)
	n := len(b.audit(t))
	later := t0.Add(15 * scheduler.Day)
	b.transition(t, r2, []scheduler.State{scheduler.StatePlanned}, scheduler.StatePlanned, func(s *store.Step) { s.SendAt = later })
	if got := len(b.audit(t)); got != n {
		t.Errorf("a change without a new state added %d audit records", got-n)
	}
	if due := b.due(t, later, 100); len(due) == 0 || due[len(due)-1].ID != r2 || !due[len(due)-1].SendAt.Equal(later) {
		t.Errorf("the due index does not follow the new send time: %v", due)
	}

	recs := b.audit(t)
	checkChain(t, recs)
	// An edited record no longer matches its hash.
	edited := recs[2]
	edited.Detail = "something else"
	if edited.ComputeHash() == recs[2].Hash {
		t.Error("editing a record keeps its hash")
	}
	b.checkInvariants(t)
}

func TestSweep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(40 * scheduler.Day) // reminder1 opens in 5 days
	b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire))
	id := func(n scheduler.Notice) string { return store.StepID("a.example", expiry, n) }
	sweep := func(at time.Time) []store.Step {
		t.Helper()
		b.clock.Set(at)
		var missed []store.Step
		if err := b.db.Update(func(tx *store.Tx) error {
			var err error
			missed, _, err = tx.Sweep()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return missed
	}

	if missed := sweep(t0.Add(4 * scheduler.Day)); len(missed) != 0 {
		t.Errorf("early sweep missed %d steps", len(missed))
	}
	if s := b.step(t, id(scheduler.Reminder1)); s.State != scheduler.StatePlanned {
		t.Errorf("reminder1 before its window: %s, want planned", s.State)
	}

	n := len(b.audit(t))
	if missed := sweep(t0.Add(5 * scheduler.Day)); len(missed) != 0 {
		t.Errorf("sweep at reminder1's opening missed %d steps", len(missed))
	}
	if s := b.step(t, id(scheduler.Reminder1)); s.State != scheduler.StateDue {
		t.Errorf("reminder1 in its window: %s, want due", s.State)
	}
	if s := b.step(t, id(scheduler.Reminder2)); s.State != scheduler.StatePlanned {
		t.Errorf("reminder2: %s, want planned", s.State)
	}
	recs := b.audit(t)
	if len(recs) != n+1 || recs[n].To != scheduler.StateDue || recs[n].Detail != "window opened" {
		t.Errorf("sweep's records: %+v, want one planned -> due 'window opened'", recs[n:])
	}

	// Past reminder1's deadline (expiry - 26 days), still before reminder2's
	// opening: reminder1 is missed, with the reason.
	missed := sweep(expiry.Add(-26 * scheduler.Day))
	if len(missed) != 1 || missed[0].ID != id(scheduler.Reminder1) {
		t.Fatalf("sweep at reminder1's deadline missed %v, want reminder1", missed)
	}
	s := b.step(t, id(scheduler.Reminder1))
	if s.State != scheduler.StateMissed || !strings.Contains(s.Reason, "deadline passed") {
		t.Errorf("reminder1 after its deadline: %s (%q), want missed (deadline passed)", s.State, s.Reason)
	}
	if diff := cmp.Diff(s, missed[0]); diff != "" {
		t.Errorf("Sweep returned a step other than the stored one:\n%s", diff)
	}

	// Much later, without a sweep in between: a planned step whose whole
	// window went by is missed, not due.
	missed = sweep(expiry.Add(30 * scheduler.Day))
	if len(missed) != 3 {
		t.Errorf("late sweep missed %d steps, want 3", len(missed))
	}
	for _, n := range []scheduler.Notice{scheduler.Reminder2, scheduler.Reminder3, scheduler.Suspension} {
		if s := b.step(t, id(n)); s.State != scheduler.StateMissed {
			t.Errorf("%s after the late sweep: %s, want missed", n, s.State)
		}
	}
	b.checkInvariants(t)
}

func TestImportAfterDeadlineIsMissed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(2 * scheduler.Day) // reminder1 and reminder2 deadlines have passed
	b.upsert(t, domain("a.example", expiry, scheduler.ModeExpire))
	want := map[scheduler.Notice]scheduler.State{
		scheduler.Reminder1:  scheduler.StateMissed,
		scheduler.Reminder2:  scheduler.StateMissed,
		scheduler.Reminder3:  scheduler.StatePlanned,
		scheduler.Suspension: scheduler.StatePlanned,
	}
	got := map[scheduler.Notice]scheduler.State{}
	for n, s := range b.steps(t, store.CycleKey("a.example", expiry)) {
		got[n] = s.State
		if s.State == scheduler.StateMissed && (!strings.Contains(s.Reason, "deadline passed") || !s.SendAt.IsZero()) {
			t.Errorf("%s: missed with reason %q, send at %s; want 'deadline passed', no send time", n, s.Reason, s.SendAt)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps of an expiry two days away (-want +got):\n%s", diff)
	}
	// An expiry long past: every step missed, none due.
	b.upsert(t, domain("b.example", t0.AddDate(0, -2, 0), scheduler.ModeExpire))
	for n, s := range b.steps(t, store.CycleKey("b.example", t0.AddDate(0, -2, 0))) {
		if s.State != scheduler.StateMissed {
			t.Errorf("b.example %s: %s, want missed", n, s.State)
		}
	}
	for _, s := range b.due(t, end, 100) {
		if s.Domain == "b.example" || s.State == scheduler.StateMissed {
			t.Errorf("missed step %s is in the due index", s.ID)
		}
	}
	b.checkInvariants(t)
}

func TestMessage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	raw := []byte("From: a@example\r\nSubject: =?utf-8?q?Erinnerung?=\r\n\r\nbody \xff\x00 bytes\r\n.\r\n")
	const id = "a.example/20270430T090000Z/reminder1"
	var m store.Message
	if err := b.db.Update(func(tx *store.Tx) error {
		var err error
		m, err = tx.PutMessage(id, raw)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != len(raw) {
		t.Errorf("PutMessage = sha256 %s size %d, want %x %d", m.SHA256, m.Size, sum, len(raw))
	}
	read := func() ([]byte, store.Message, bool, error) {
		var got []byte
		var gm store.Message
		var ok bool
		err := b.db.View(func(tx *store.Tx) error {
			var err error
			got, gm, ok, err = tx.Message(id)
			return err
		})
		return got, gm, ok, err
	}
	got, gm, ok, err := read()
	if err != nil || !ok {
		t.Fatalf("Message: ok %v, %v", ok, err)
	}
	if diff := cmp.Diff(raw, got); diff != "" {
		t.Errorf("Message bytes differ:\n%s", diff)
	}
	if gm.SHA256 != m.SHA256 {
		t.Errorf("Message sha256 %s, want %s", gm.SHA256, m.SHA256)
	}
	b.db.View(func(tx *store.Tx) error {
		if _, _, ok, err := tx.Message("nx.example/20270430T090000Z/reminder1"); ok || err != nil {
			t.Errorf("Message of a step without one: ok %v, %v", ok, err)
		}
		return nil
	})

	// Flip one byte of the stored value: detected.
	stored := func() []byte {
		var v []byte
		b.db.Bolt().View(func(tx *bolt.Tx) error {
			v = slices.Clone(tx.Bucket([]byte("messages")).Get(store.Key(id)))
			return nil
		})
		return v
	}
	put := func(v []byte) {
		if err := b.db.Bolt().Update(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("messages")).Put(store.Key(id), v)
		}); err != nil {
			t.Fatal(err)
		}
	}
	orig := stored()
	// Inside the gzip stream, past the hash, the size and their tags.
	v := slices.Clone(orig)
	i := len(v) - 20
	v[i] ^= 0x01
	put(v)
	if _, _, _, err := read(); err == nil {
		t.Errorf("Message read the stored value with byte %d flipped without error", i)
	}

	// Valid gzip of other bytes under the original hash: the hash check catches it.
	var other store.Message
	b.db.Update(func(tx *store.Tx) error {
		var err error
		other, err = tx.PutMessage(id, []byte("forged"))
		return err
	})
	forged := stored()
	otherSum, _ := hex.DecodeString(other.SHA256)
	origSum, _ := hex.DecodeString(m.SHA256)
	forged = bytes.Replace(forged, otherSum, origSum, 1)
	put(forged)
	if _, _, _, err := read(); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("Message of forged bytes: %v, want a SHA-256 mismatch", err)
	}
}

// TestExpiryBackReopensCycle: A, then B, then A again (a renewal reversed,
// a wrong import corrected) owes A's notices again; a sent one is not
// touched, so nothing goes out twice.
func TestExpiryBackReopensCycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := t0.Add(30 * scheduler.Day) // reminder1 open
	b.upsert(t, domain("a.example", a, scheduler.ModeExpire))
	r1 := store.StepID("a.example", a, scheduler.Reminder1)
	b.send(t, r1, nil)
	b.upsert(t, domain("a.example", a.AddDate(1, 0, 0), scheduler.ModeExpire))
	if got := b.upsert(t, domain("a.example", a, scheduler.ModeExpire)); got != store.NewCycle {
		t.Fatalf("back to A: %s, want %s", got, store.NewCycle)
	}
	steps := b.steps(t, store.CycleKey("a.example", a))
	if s := steps[scheduler.Reminder1]; s.State != scheduler.StateSent {
		t.Errorf("the sent reminder1 is %s, want it left sent", s.State)
	}
	for _, n := range []scheduler.Notice{scheduler.Reminder2, scheduler.Reminder3, scheduler.Suspension} {
		if s := steps[n]; s.State != scheduler.StatePlanned {
			t.Errorf("%s after the expiry came back: %s (%q), want planned", n, s.State, s.Reason)
		}
	}
	if c := b.cycle(t, store.CycleKey("a.example", a)); !c.Closed.IsZero() {
		t.Error("cycle A still closed")
	}
	audit := b.audit(t)
	if last := audit[len(audit)-1]; !strings.Contains(last.Detail, "cycle reopened") {
		t.Errorf("last audit record %q does not say the cycle reopened", last.Detail)
	}
	b.checkInvariants(t)
}

// TestStoppedDomainStaysQuiet: a domain Ascio said was deleted is not
// owed notices again because a calendar still lists it.
func TestStoppedDomainStaysQuiet(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := t0.Add(30 * scheduler.Day)
	b.upsert(t, domain("gone.example", a, scheduler.ModeExpire))
	if err := b.db.Update(func(tx *store.Tx) error { return tx.Stop("gone.example", "deleted") }); err != nil {
		t.Fatal(err)
	}
	b.upsert(t, domain("gone.example", a, scheduler.ModeExpire))
	for n, s := range b.steps(t, store.CycleKey("gone.example", a)) {
		if s.State != scheduler.StateSkipped {
			t.Errorf("%s of a deleted domain: %s, want still skipped", n, s.State)
		}
	}
	b.checkInvariants(t)
}

// TestScopeChangeReplans: when the scope config changes, the next import
// of an otherwise unchanged domain plans it anew, both ways.
func TestScopeChangeReplans(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out, in := b.opts, b.opts
	out.InScope = func(string) bool { return false }
	a := t0.Add(30 * scheduler.Day)
	d := domain("a.example", a, scheduler.ModeRenew)
	b.upsertOpts(t, d, out)
	if got := b.upsertOpts(t, d, out); got != store.Unchanged {
		t.Fatalf("same domain, same scope: %s, want unchanged", got)
	}
	if got := b.upsertOpts(t, d, in); got != store.Updated {
		t.Fatalf("same domain, scope now includes it: %s, want updated", got)
	}
	steps := b.steps(t, store.CycleKey("a.example", a))
	if s := steps[scheduler.Reminder1]; s.State != scheduler.StateDue {
		t.Errorf("reminder1 once in scope: %s (%q), want due", s.State, s.Reason)
	}
	if got := b.upsertOpts(t, d, out); got != store.Updated {
		t.Fatalf("scope excludes it again: %s, want updated", got)
	}
	for n, s := range b.steps(t, store.CycleKey("a.example", a)) {
		if s.State != scheduler.StateSkipped || !strings.Contains(s.Reason, "out of scope") {
			t.Errorf("%s out of scope again: %s (%q)", n, s.State, s.Reason)
		}
	}
	b.checkInvariants(t)
}

// A notice waiting out a retry's backoff keeps its retry time and last
// error when the calendar is planned again with new facts.
func TestReplanKeepsRetryBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day) // reminder 1's window is open
	d := domain("a.example", expiry, scheduler.ModeRenew)
	b.upsert(t, d)
	id := store.StepID("a.example", expiry, scheduler.Reminder1)
	retryAt := t0.Add(2 * time.Hour)
	b.transition(t, id, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateSending, func(s *store.Step) { s.Attempts++ })
	b.transition(t, id, []scheduler.State{scheduler.StateSending}, scheduler.StateDue, func(s *store.Step) {
		s.SendAt, s.Reason = retryAt, "temporary failure: 451 4.3.0 try later"
	})
	d.Registrant.Email = "new@mail.example"
	if got := b.upsert(t, d); got != store.Updated {
		t.Fatalf("Upsert with a new registrant: %s", got)
	}
	s := b.step(t, id)
	if s.State != scheduler.StateDue || !s.SendAt.Equal(retryAt) || !strings.Contains(s.Reason, "451") {
		t.Errorf("after planning again: %s, send at %s, reason %q; want due at %s with the 451", s.State, s.SendAt, s.Reason, retryAt)
	}

	// A retry time past a deadline moved forward is not kept: the notice
	// goes out before its window closes.
	o := b.opts
	o.Policy.Windows = slices.Clone(o.Policy.Windows)
	o.Policy.Windows[0].DeadlineDays = -29 // reminder 1 now closes a day after t0
	late := t0.Add(30 * time.Hour)
	b.transition(t, id, []scheduler.State{scheduler.StateDue}, scheduler.StateDue, func(s *store.Step) { s.SendAt = late })
	d.Registrant.Email = "newer@mail.example"
	b.upsertOpts(t, d, o)
	if s := b.step(t, id); s.State != scheduler.StateDue || !s.Deadline.Equal(t0.Add(24*time.Hour)) || !s.SendAt.Before(s.Deadline) {
		t.Errorf("%s, send at %s, deadline %s: want due before the new deadline", s.State, s.SendAt, s.Deadline)
	}
}

// With a send hour, planning again must not put a scheduled retry off to
// the next day's send hour.
func TestReplanKeepsRetryWithSendHour(t *testing.T) {
	t.Parallel()
	b := setup(t)
	o := b.opts
	o.Policy.SendHour = 9
	b.clock.Set(t0.Add(30 * time.Minute)) // 09:30, after today's send hour
	expiry := t0.Add(30 * scheduler.Day)
	d := domain("a.example", expiry, scheduler.ModeRenew)
	b.upsertOpts(t, d, o)
	id := store.StepID("a.example", expiry, scheduler.Reminder1)
	retryAt := t0.Add(time.Hour) // 10:00 today
	b.transition(t, id, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateSending, func(s *store.Step) { s.Attempts++ })
	b.transition(t, id, []scheduler.State{scheduler.StateSending}, scheduler.StateDue, func(s *store.Step) { s.SendAt = retryAt })
	d.Registrant.Email = "new@mail.example"
	b.upsertOpts(t, d, o)
	if s := b.step(t, id); !s.SendAt.Equal(retryAt) {
		t.Errorf("retry at %s after planning again, want %s", s.SendAt, retryAt)
	}
}

// A notice whose earlier send may have been delivered is never called
// missed when its window closes before the resend: it is in doubt.
func TestSweepKeepsMayHaveGoneInDoubt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day)
	b.upsert(t, domain("a.example", expiry, scheduler.ModeRenew))
	b.upsert(t, domain("b.example", expiry, scheduler.ModeRenew))
	gone := store.StepID("a.example", expiry, scheduler.Reminder1)
	b.transition(t, gone, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateDue, func(s *store.Step) { s.MayHaveGone = true })
	b.clock.Set(expiry.Add(-25 * scheduler.Day)) // reminder 1's deadline has passed
	var missed, inDoubt []store.Step
	err := b.db.Update(func(tx *store.Tx) error {
		var err error
		missed, inDoubt, err = tx.Sweep()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inDoubt) != 1 || inDoubt[0].ID != gone {
		t.Errorf("sweep reports %+v in doubt, want %s", inDoubt, gone)
	}
	if s := b.step(t, gone); s.State != scheduler.StateInDoubt || !strings.Contains(s.Reason, "may have been delivered") {
		t.Errorf("%s: %s (%q), want in_doubt", gone, s.State, s.Reason)
	}
	if s := b.step(t, store.StepID("b.example", expiry, scheduler.Reminder1)); s.State != scheduler.StateMissed {
		t.Errorf("b.example's reminder 1 is %s, want missed", s.State)
	}
	for _, m := range missed {
		if m.ID == gone {
			t.Errorf("%s reported missed", gone)
		}
	}
}

// Planning again after the deadline says the same as the sweep for a
// notice whose earlier send may have been delivered.
func TestReplanAfterDeadlineKeepsMayHaveGoneInDoubt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day)
	d := domain("a.example", expiry, scheduler.ModeRenew)
	b.upsert(t, d)
	id := store.StepID("a.example", expiry, scheduler.Reminder1)
	b.transition(t, id, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateDue, func(s *store.Step) { s.MayHaveGone = true })
	b.clock.Set(expiry.Add(-25 * scheduler.Day)) // reminder 1's deadline has passed
	d.Registrant.Email = "new@mail.example"
	b.upsert(t, d)
	if s := b.step(t, id); s.State != scheduler.StateInDoubt || !strings.Contains(s.Reason, "may have been delivered") {
		t.Errorf("%s (%q), want in_doubt saying an earlier send may have been delivered", s.State, s.Reason)
	}
}

// A sweep a step per transaction (SweepAfter, as the daemon does it in
// chunks) decides as the sweep in one transaction: each Mark goes on after
// the entry before, whether that entry moved or left the due index.
func TestSweepAfterStepByStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	expiry := t0.Add(30 * scheduler.Day)
	names := []string{"a.example", "b.example", "c.example", "d.example"}
	for _, n := range names {
		b.upsert(t, domain(n, expiry, scheduler.ModeExpire))
	}
	gone := store.StepID("b.example", expiry, scheduler.Reminder1)
	b.transition(t, gone, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateDue, func(s *store.Step) { s.MayHaveGone = true })
	// reminder 1's deadline has passed, reminder 2's window opened.
	b.clock.Set(expiry.Add(-6 * scheduler.Day))
	var missed, inDoubt, chunks int
	for m, more := (store.Mark{}), true; more; chunks++ {
		err := b.db.Update(func(tx *store.Tx) error {
			var ms, ds []store.Step
			var err error
			m, more, ms, ds, err = tx.SweepAfter(m, 1)
			missed, inDoubt = missed+len(ms), inDoubt+len(ds)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if chunks != 2*len(names) {
		t.Errorf("%d chunks of one step, want %d (reminders 1 and 2 of each domain)", chunks, 2*len(names))
	}
	if missed != len(names)-1 || inDoubt != 1 {
		t.Errorf("%d missed and %d in doubt, want %d and 1", missed, inDoubt, len(names)-1)
	}
	for _, n := range names {
		want := scheduler.StateMissed
		if n == "b.example" {
			want = scheduler.StateInDoubt
		}
		if s := b.step(t, store.StepID(n, expiry, scheduler.Reminder1)); s.State != want {
			t.Errorf("%s reminder1: %s, want %s", n, s.State, want)
		}
		if s := b.step(t, store.StepID(n, expiry, scheduler.Reminder2)); s.State != scheduler.StateDue {
			t.Errorf("%s reminder2: %s, want due", n, s.State)
		}
	}
	b.checkInvariants(t)
}
