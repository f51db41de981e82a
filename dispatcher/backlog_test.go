package dispatcher

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// stepReads records how many steps each store transaction read.
type stepReads struct {
	mu         sync.Mutex
	max, total int
}

func (r *stepReads) add(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.max, r.total = max(r.max, n), r.total+n
}

func (r *stepReads) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.max, r.total = 0, 0
}

func (r *stepReads) get() (maxPerTx, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.max, r.total
}

// backlogSetup is newSetup on a store that counts the steps each
// transaction reads, with n renew-mode domains expiring at exp.
func backlogSetup(t *testing.T, n int, exp time.Time) (*setup, *stepReads) {
	t.Helper()
	reads := &stepReads{}
	s := newSetupWith(t, now0, store.Options{TxSteps: reads.add})
	s.d.init()
	err := s.db.Update(func(tx *store.Tx) error {
		for i := range n {
			_, err := tx.Upsert(store.Domain{Name: backlogName(i), Mode: scheduler.ModeRenew, Expiry: exp, OrderID: "O",
				Registrant: store.Registrant{Name: "R", Email: "r@example.org"}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reads.reset()
	return s, reads
}

// countIn is the number of steps the store counts in state.
func countIn(t *testing.T, db *store.DB, state scheduler.State) uint64 {
	t.Helper()
	var n uint64
	db.View(func(tx *store.Tx) error { n = tx.Counts()[state]; return nil })
	return n
}

// After downtime a whole backlog falls due at once; the sweep moves it in
// chunks, each its own transaction, so that neither the daemon's memory
// nor one transaction grows with the backlog. It decides as it did in one
// transaction: every opened window due, every passed deadline missed.
func TestSweepBacklogInChunks(t *testing.T) {
	const n = 2*sweepChunk + 300
	exp := now0.Add(40 * scheduler.Day) // reminder1 opens in 5 days
	s, reads := backlogSetup(t, n, exp)
	if got := countIn(t, s.db, scheduler.StatePlanned); got != 2*n {
		t.Fatalf("%d planned steps, want %d", got, 2*n)
	}

	s.clock.Set(exp.Add(-30 * scheduler.Day)) // reminder1's window opened while errpd was down
	if err := s.d.sweep(s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	most, total := reads.get()
	if got := countIn(t, s.db, scheduler.StateDue); got != n {
		t.Errorf("%d steps due after the sweep, want %d", got, n)
	}
	if total < n {
		t.Errorf("the sweep read %d steps in all, fewer than the %d it moved", total, n)
	}
	if most > 2*sweepChunk {
		t.Errorf("one transaction read %d steps; a sweep reads at most %d at a time (each read to decide, once more to move)", most, 2*sweepChunk)
	}

	reads.reset()
	s.clock.Set(exp.Add(-20 * scheduler.Day)) // and closed again
	s.d.lastSweep = time.Time{}
	if err := s.d.sweep(s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if got := countIn(t, s.db, scheduler.StateMissed); got != n {
		t.Errorf("%d steps missed, want %d", got, n)
	}
	if most, _ := reads.get(); most > 2*sweepChunk {
		t.Errorf("one transaction read %d steps marking the backlog missed", most)
	}
}

// Steps in doubt wait for an operator and may pile up; Recover looks at
// the steps caught mid-action a chunk at a time and returns only those it
// moved.
func TestRecoverReadsActiveInChunks(t *testing.T) {
	const n = 3*recoverChunk + 100
	exp := now0.Add(30 * scheduler.Day) // reminder1 due
	s, reads := backlogSetup(t, n, exp)
	err := s.db.Update(func(tx *store.Tx) error {
		for i := range n {
			to := scheduler.StateInDoubt
			if i%1000 == 7 {
				to = scheduler.StateSending // what a crash leaves behind
			}
			id := store.StepID(backlogName(i), exp, scheduler.Reminder1)
			if _, err := tx.Transition(id, waiting, scheduler.StateSending, "sending", nil); err != nil {
				return err
			}
			if to != scheduler.StateSending {
				if _, err := tx.Transition(id, sending, to, "lost", nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	reads.reset()
	moved, err := s.d.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 4 {
		t.Errorf("Recover moved %d steps, want the 4 found sending", len(moved))
	}
	if got := countIn(t, s.db, scheduler.StateInDoubt); got != n {
		t.Errorf("%d steps in doubt, want %d", got, n)
	}
	if most, _ := reads.get(); most > 2*recoverChunk {
		t.Errorf("one transaction read %d steps; Recover reads at most %d at a time (each read to decide, once more to move)", most, 2*recoverChunk)
	}
}

func backlogName(i int) string { return fmt.Sprintf("b%05d.com", i) }
