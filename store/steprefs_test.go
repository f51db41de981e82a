package store_test

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestStepsByRefInIDOrder: the deadline index's refs, sorted, read the
// same steps in the same order as the ids sorted (a.com.com's steps sort
// before a.com's), and a ref without a step is an error naming it.
func TestStepsByRefInIDOrder(t *testing.T) {
	b := setup(t)
	exp := t0.Add(90 * scheduler.Day)
	for i, name := range []string{"a.com", "b.org", "a.com.com", "a-b.com", "z.co"} {
		b.upsert(t, domain(name, exp.Add(time.Duration(i)*scheduler.Day), scheduler.ModeRenew))
	}
	var want []string
	for _, s := range b.allSteps(t) {
		want = append(want, s.ID)
	}
	slices.Sort(want)
	var got []string
	err := b.db.View(func(tx *store.Tx) error {
		var refs []store.StepRef
		if _, err := tx.DeadlineRefsAfter(time.Time{}, time.Time{}, "", math.MaxInt, func(k []byte) error {
			r := store.StepRef(k)
			if d, _, _ := strings.Cut(string(r), "/"); d != r.Domain() {
				t.Errorf("ref %q: Domain() = %q", r, r.Domain())
			}
			refs = append(refs, r)
			return nil
		}); err != nil {
			return err
		}
		slices.Sort(refs)
		if err := tx.StepsByRef(refs, "test", func(s store.Step) error { got = append(got, s.ID); return nil }); err != nil {
			return err
		}
		gone := store.StepRef(store.Key(store.StepID("gone.com", exp, scheduler.Reminder1)))
		err := tx.StepsByRef(append(refs[:1:1], gone), "the test index", func(store.Step) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "the test index names step gone.com/") {
			t.Errorf("a ref without a step: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatal("no steps")
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("StepsByRef (-ids sorted +refs sorted):\n%s", diff)
	}
}

// TestStepCursorFirstOpen: one StepCursor asked for domain after domain,
// forward and backward, finds what a scan of each cycle's steps finds:
// the first step not final, past final ones and past an old cycle's.
func TestStepCursorFirstOpen(t *testing.T) {
	b := setup(t)
	exp := t0.Add(40 * scheduler.Day)
	names := []string{"a.com", "a.com.com", "a-b.com", "b.org", "c.org", "d.org"}
	for i, name := range names {
		b.upsert(t, domain(name, exp.Add(time.Duration(i)*scheduler.Day), scheduler.ModeRenew))
	}
	// a.com: its first step missed; b.org: all steps final (a renewal
	// to a later expiry skips the old cycle's and plans a new one, whose
	// first step goes too); c.org: a new cycle after the old one.
	first := func(name string) store.Step {
		for _, s := range b.allSteps(t) {
			if s.Domain == name && s.Cycle == b.domain(t, name).Cycle {
				return s
			}
		}
		t.Fatalf("%s has no step", name)
		return store.Step{}
	}
	s := first("a.com")
	b.transition(t, s.ID, []scheduler.State{s.State}, scheduler.StateMissed, nil)
	b.upsert(t, domain("c.org", exp.Add(400*scheduler.Day), scheduler.ModeRenew))
	for _, st := range b.allSteps(t) {
		if st.Domain == "b.org" && !st.State.Final() {
			b.transition(t, st.ID, []scheduler.State{st.State}, scheduler.StateMissed, nil)
		}
	}
	want := map[string]string{}
	err := b.db.View(func(tx *store.Tx) error {
		for _, name := range names {
			d, _, _ := tx.Domain(name)
			want[name] = "none"
			_, err := tx.StepsAfter(d.Cycle+"/", "", math.MaxInt, func(s store.Step) error {
				if !s.State.Final() {
					want[name] = s.ID
					return errDone
				}
				return nil
			})
			if err != nil && err != errDone {
				return err
			}
		}
		for _, order := range [][]string{names, reversed(names)} {
			sc := tx.StepCursor()
			for _, name := range order {
				d, _, _ := tx.Domain(name)
				s, ok, err := sc.FirstOpen(d.Cycle)
				if err != nil {
					return err
				}
				got := "none"
				if ok {
					got = s.ID
				}
				if got != want[name] {
					t.Errorf("FirstOpen(%s) = %s, want %s", d.Cycle, got, want[name])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want["b.org"] != "none" || want["a.com"] == first("a.com").ID || strings.HasPrefix(want["c.org"], "c.org/"+exp.Format("20060102")) {
		t.Errorf("the setup is not what the test means: %v", want)
	}
}

func reversed(s []string) []string {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}

// errDone ends a scan that found what it looked for.
var errDone = errors.New("done")

// TestLookupsAreTxReads: Lookups, asked in and out of key order, gives
// what Tx.Cycle and Tx.Domain give, absent ones included; CycleFacts the
// mode and closing reason of the cycle (b.org's first one closed when its
// expiry moved).
func TestLookupsAreTxReads(t *testing.T) {
	b := setup(t)
	exp := t0.Add(90 * scheduler.Day)
	names := []string{"a.com", "a.com.com", "b.org"}
	for _, name := range names {
		b.upsert(t, domain(name, exp, scheduler.ModeRenew))
	}
	b.upsert(t, domain("a.com.com", exp, scheduler.ModeExpire))
	b.upsert(t, domain("b.org", exp.Add(365*scheduler.Day), scheduler.ModeRenew))
	asked := append(slices.Clone(names), "gone.com", "a.com", "0.com")
	closed := 0
	err := b.db.View(func(tx *store.Tx) error {
		l := tx.Lookups()
		for _, name := range asked {
			want, wantOK, err := tx.Domain(name)
			if err != nil {
				return err
			}
			got, ok, err := l.Domain(name)
			if err != nil || ok != wantOK || !gocmp.Equal(got, want) {
				t.Errorf("Lookups.Domain(%s) = %v, %v, %v; Tx.Domain: %v, %v", name, got, ok, err, want, wantOK)
			}
			key := store.CycleKey(name, exp)
			wantC, wantOK, err := tx.Cycle(key)
			if err != nil {
				return err
			}
			gotC, ok, err := l.CycleFacts(key)
			if want := (store.CycleFacts{Mode: wantC.Mode, Reason: wantC.Reason}); err != nil || ok != wantOK || gotC != want {
				t.Errorf("Lookups.CycleFacts(%s) = %v, %v, %v; Tx.Cycle: %v, %v", key, gotC, ok, err, want, wantOK)
			}
			if ok != (name != "gone.com" && name != "0.com") {
				t.Errorf("Lookups.CycleFacts(%s) found %v", key, ok)
			}
			if gotC.Reason != "" {
				closed++
			}
		}
		return nil
	})
	if err != nil || closed == 0 {
		t.Fatalf("%v; %d closed cycles asked: want b.org's", err, closed)
	}
}

// Lookups.ContactFailed gives what Tx.Domain's ContactFailed gives: the
// flag of a bounced registrant address (proved.com), none for a domain
// without one, one not stored, or one whose address changed since.
func TestLookupsContactFailed(t *testing.T) {
	s := reporttest.SeedAt(t, filepath.Join(t.TempDir(), "errpd.db"))
	bounced := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder2)
	err := s.DB.Update(func(tx *store.Tx) error {
		_, err := tx.RecordBounce(bounced, store.Bounce{Kind: store.BounceHard, Status: "5.1.1", At: s.Now()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	err = s.DB.View(func(tx *store.Tx) error {
		l := tx.Lookups()
		names := []string{"gone.example"}
		err := tx.Domains(func(d store.Domain) error { names = append(names, d.Name); return nil })
		if err != nil {
			return err
		}
		for _, name := range names {
			d, _, err := tx.Domain(name)
			if err != nil {
				return err
			}
			got, err := l.ContactFailed(name)
			if want := d.ContactFailed(); err != nil || !gocmp.Equal(got, want) {
				t.Errorf("Lookups.ContactFailed(%s) = %v, %v; want %v", name, got, err, want)
			}
			if got != nil {
				flagged++
			}
		}
		return nil
	})
	if err != nil || flagged != 1 {
		t.Errorf("%d domains flagged (%v), want proved.com", flagged, err)
	}
}

// TestFlagIndex: a hard bounce lists its domain in the contact-flag index,
// and while the index is complete Lookups reads no other domain for its
// flag (a spoiled record is not even read). A flag written by an errpd
// without the index (its audit record does not move the index's number on)
// makes the index untrusted, so that the flag is still found, and the next
// writable open lists it.
func TestFlagIndex(t *testing.T) {
	s := reporttest.SeedAt(t, filepath.Join(t.TempDir(), "errpd.db"))
	bounce := func(domain string) {
		t.Helper()
		id := store.StepID(domain, reporttest.Expiry(), scheduler.Reminder2)
		if err := s.DB.Update(func(tx *store.Tx) error {
			_, err := tx.RecordBounce(id, store.Bounce{Kind: store.BounceHard, Status: "5.1.1", At: s.Now()})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	bounce("proved.com")
	restore := spoilDomain(t, s.DB, "missed.org")
	if got := flags(t, s.DB, "missed.org", "proved.com"); !slices.Equal(got, []string{"proved.com"}) {
		t.Fatalf("flagged %v with the index complete, want proved.com (missed.org's spoiled record not read)", got)
	}
	restore()
	// An older errpd flags doubt.info: its bounce's audit record leaves the
	// index's number behind, and the index does not list it.
	bounce("doubt.info")
	err := s.DB.Bolt().Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		if !bytes.Equal(meta.Get([]byte("flag_index_head")), meta.Get([]byte("audit_head"))) {
			return errors.New("the index does not follow the chain's head")
		}
		if err := meta.Put([]byte("flag_index_head"), []byte("the head before doubt.info's bounce")); err != nil {
			return err
		}
		return tx.Bucket([]byte("flagged")).Delete([]byte("doubt.info"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := flags(t, s.DB, "doubt.info", "proved.com"); !slices.Equal(got, []string{"doubt.info", "proved.com"}) {
		t.Fatalf("flagged %v after an older errpd's flag, want doubt.info and proved.com", got)
	}
	s.DB.Close()
	db, err := store.Open(s.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var listed []string
	db.Bolt().View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("flagged")).ForEach(func(k, _ []byte) error { listed = append(listed, string(k)); return nil })
	})
	if !slices.Equal(listed, []string{"doubt.info", "proved.com"}) {
		t.Fatalf("the index lists %v after a writable open, want doubt.info and proved.com", listed)
	}
	if got := flags(t, db, "doubt.info", "missed.org"); !slices.Equal(got, []string{"doubt.info"}) {
		t.Fatalf("flagged %v with the index refilled, want doubt.info (missed.org not read)", got)
	}
}

// spoilDomain overwrites domain's stored record with bytes that do not
// decode, until restore puts it back.
func spoilDomain(t *testing.T, db *store.DB, domain string) (restore func()) {
	t.Helper()
	var old []byte
	put := func(v func() []byte) {
		t.Helper()
		if err := db.Bolt().Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("domains"))
			value := v()
			old = bytes.Clone(b.Get([]byte(domain)))
			return b.Put([]byte(domain), value)
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(func() []byte { return []byte{0x0a, 0xff, 0xff} })
	original := old
	return func() { put(func() []byte { return original }) }
}
