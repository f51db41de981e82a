package store_test

import (
	"cmp"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// deadlineOrder is the steps' ids in the order the deadline index must
// hold them: by deadline (whole seconds), then id.
func deadlineOrder(steps []store.Step, from, to time.Time) []string {
	var in []store.Step
	for _, s := range steps {
		if (from.IsZero() || !s.Deadline.Before(from)) && (to.IsZero() || s.Deadline.Before(to)) {
			in = append(in, s)
		}
	}
	slices.SortFunc(in, func(a, b store.Step) int {
		return cmp.Or(cmp.Compare(a.Deadline.Unix(), b.Deadline.Unix()), cmp.Compare(a.ID, b.ID))
	})
	var ids []string
	for _, s := range in {
		ids = append(ids, s.ID)
	}
	return ids
}

// deadlineIDs reads the deadline index for [from, to) in chunks of chunk,
// one read transaction each, as a report does.
func (b *bundle) deadlineIDs(t *testing.T, from, to time.Time, chunk int) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		n := 0
		err := b.db.View(func(tx *store.Tx) error {
			var err error
			after, err = tx.DeadlinesAfter(from, to, after, chunk, func(id string) error {
				ids = append(ids, id)
				n++
				return nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < chunk {
			return ids
		}
	}
}

func (b *bundle) checkDeadlineIndex(t *testing.T) {
	t.Helper()
	want := deadlineOrder(b.allSteps(t), time.Time{}, time.Time{})
	if diff := gocmp.Diff(want, b.deadlineIDs(t, time.Time{}, time.Time{}, 3)); diff != "" {
		t.Errorf("deadline index differs from the steps (-steps +index):\n%s", diff)
	}
}

func TestDeadlineIndexFollowsReplan(t *testing.T) {
	b := setup(t)
	exp := t0.Add(90 * scheduler.Day)
	for i, name := range []string{"b.com", "a.com", "c.org"} {
		b.upsert(t, domain(name, exp.Add(time.Duration(i)*scheduler.Day), scheduler.ModeExpire))
	}
	b.checkDeadlineIndex(t)
	before := b.allSteps(t)

	// New facts under a policy with later deadlines replan the same steps
	// (same ids): their old entries must go.
	moved := b.opts
	moved.Policy = scheduler.DefaultPolicy()
	for i := range moved.Policy.Windows {
		moved.Policy.Windows[i].DeadlineDays++
	}
	for i, name := range []string{"b.com", "a.com", "c.org"} {
		d := domain(name, exp.Add(time.Duration(i)*scheduler.Day), scheduler.ModeExpire)
		d.Registrant.Name = "Ana Renamed"
		b.upsertOpts(t, d, moved)
	}
	steps := b.allSteps(t)
	for i, s := range steps {
		if s.ID != before[i].ID || !s.Deadline.Equal(before[i].Deadline.Add(scheduler.Day)) {
			t.Fatalf("the replan did not move %s's deadline a day later: %s, was %s", s.ID, s.Deadline, before[i].Deadline)
		}
	}
	b.checkDeadlineIndex(t)

	// A period reads only its own steps, its end excluded.
	from, to := exp.Add(-25*scheduler.Day), exp.Add(-3*scheduler.Day)
	want := deadlineOrder(steps, from, to)
	if len(want) == 0 || len(want) == len(steps) {
		t.Fatalf("the period holds %d of %d steps: not a test of a period", len(want), len(steps))
	}
	if diff := gocmp.Diff(want, b.deadlineIDs(t, from, to, 2)); diff != "" {
		t.Errorf("period [%s, %s) (-want +got):\n%s", from, to, diff)
	}
	b.checkInvariants(t)
}

func TestTLDIndexInStepOrder(t *testing.T) {
	b := setup(t)
	exp := t0.Add(90 * scheduler.Day)
	// a.com.com's steps sort before a.com's ('.' < '/'): the index must
	// give the domains in the order of their steps.
	for _, name := range []string{"a.com", "b.org", "a.com.com", "a-b.com", "z.co", "m.com"} {
		b.upsert(t, domain(name, exp, scheduler.ModeRenew))
	}
	var want []string
	for _, s := range b.allSteps(t) {
		if d := s.Domain; d[len(d)-4:] == ".com" && !slices.Contains(want, d) {
			want = append(want, d)
		}
	}
	var got []string
	after := ""
	for {
		n := 0
		err := b.db.View(func(tx *store.Tx) error {
			var err error
			after, err = tx.TLDDomainsAfter("com", after, 2, func(d string) error {
				got = append(got, d)
				n++
				return nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			break
		}
	}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("TLDDomainsAfter(com) (-steps' order +index):\n%s", diff)
	}
}

// TestReadIndexesFilledOnOpen: a store written before the read indexes
// existed gets them when it is next opened for writing; a reader that
// opens it first is told they are not there.
func TestReadIndexesFilledOnOpen(t *testing.T) {
	b := setup(t)
	exp := t0.Add(90 * scheduler.Day)
	for _, name := range []string{"b.com", "a.com", "c.org"} {
		b.upsert(t, domain(name, exp, scheduler.ModeExpire))
	}
	b.db.Close()
	dropReadIndexes(t, b.path)

	ro, err := store.Open(b.path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ro.View(func(tx *store.Tx) error {
		if tx.ReadIndexes() {
			t.Error("ReadIndexes is true on a store without them")
		}
		if _, err := tx.DeadlinesAfter(time.Time{}, time.Time{}, "", 10, func(string) error { return nil }); err == nil {
			t.Error("DeadlinesAfter on a store without the index: no error")
		}
		return nil
	})
	ro.Close()

	b.db = b.open(t)
	b.db.View(func(tx *store.Tx) error {
		if !tx.ReadIndexes() {
			t.Error("ReadIndexes is false after an open for writing")
		}
		return nil
	})
	b.checkDeadlineIndex(t)
}

// dropReadIndexes makes the store at path look like one written before
// the read indexes.
func dropReadIndexes(t *testing.T, path string) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("deadline")); err != nil {
			return err
		}
		return tx.DeleteBucket([]byte("tld"))
	})
	if err != nil {
		t.Fatal(err)
	}
}
