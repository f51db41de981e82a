package coverage_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/errpd/errpd/coverage"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// A backlog of checks (errpd was down a week while deadlines passed) is
// read a batch at a time, each batch in its own short transaction: no
// transaction reads the whole backlog, and every check is answered.
func TestBacklogInBatches(t *testing.T) {
	const n = 250
	var mu sync.Mutex
	most, total := 0, 0
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), store.Options{Now: clock, TxSteps: func(k int) {
		mu.Lock()
		defer mu.Unlock()
		most, total = max(most, k), total+k
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exp := now.Add(30 * scheduler.Day)
	err = db.Update(func(tx *store.Tx) error {
		for i := range n {
			_, err := tx.Upsert(store.Domain{Name: fmt.Sprintf("c%04d.com", i), Mode: scheduler.ModeRenew, Expiry: exp, OrderID: "ORD-R",
				Registrant: store.Registrant{Email: "holder@run.com"}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	now = exp.Add(-24 * scheduler.Day) // reminder 1's deadline passed two days ago
	if err := db.Update(func(tx *store.Tx) error { _, _, err := tx.Sweep(); return err }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	most, total = 0, 0
	mu.Unlock()

	l := &listing{}
	if _, err := (&coverage.Checker{DB: db, Ascio: l, Now: clock}).RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l.calls != n {
		t.Errorf("%d GetMessages calls, want one for each of the %d missed reminders", l.calls, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if got := covered(t, db, store.StepID(fmt.Sprintf("c%04d.com", i), exp, scheduler.Reminder1)); got != store.CoveredYes {
			t.Errorf("c%04d.com: covered %q, want yes", i, got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if total < n {
		t.Errorf("the checks read %d steps in all, fewer than the %d they answered", total, n)
	}
	if most > 100 {
		t.Errorf("one transaction read %d steps; the checks read at most a batch of 100 at a time", most)
	}
}
