package lifecycle_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// world is a real store on a temp file with a clock the test moves.
type world struct {
	db  *store.DB
	now time.Time
	o   store.PlanOptions
}

func newWorld(t *testing.T, now time.Time) *world {
	t.Helper()
	w := &world{now: now, o: store.PlanOptions{Policy: scheduler.DefaultPolicy()}}
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), store.Options{Now: func() time.Time { return w.now }, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.db = db
	return w
}

func (w *world) apply(t *testing.T, ev lifecycle.Event) store.Change {
	t.Helper()
	var ch store.Change
	if err := w.db.Update(func(tx *store.Tx) error {
		var err error
		ch, _, err = lifecycle.Apply(tx, ev, w.o)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return ch
}

func (w *world) row(t *testing.T, st lifecycle.Status, d store.Domain) store.Change {
	t.Helper()
	return w.apply(t, lifecycle.FromCalendar(st, d, "cal.csv:2"))
}

func (w *world) cycle(t *testing.T, exp time.Time) (store.Cycle, map[scheduler.Notice]store.Step) {
	t.Helper()
	var c store.Cycle
	steps := map[scheduler.Notice]store.Step{}
	if err := w.db.View(func(tx *store.Tx) error {
		var err error
		if c, _, err = tx.Cycle(store.CycleKey("a.example", exp)); err != nil {
			return err
		}
		ss, err := tx.Steps(c.Key)
		for _, s := range ss {
			steps[s.Notice] = s
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return c, steps
}

func (w *world) domain(t *testing.T) store.Domain {
	t.Helper()
	var d store.Domain
	if err := w.db.View(func(tx *store.Tx) error { var err error; d, _, err = tx.Domain("a.example"); return err }); err != nil {
		t.Fatal(err)
	}
	return d
}

func (w *world) auditWith(t *testing.T, sub string) []store.Record {
	t.Helper()
	var out []store.Record
	if err := w.db.View(func(tx *store.Tx) error {
		return tx.Audit(0, func(r store.Record) error {
			if strings.Contains(r.Detail, sub) {
				out = append(out, r)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func dom(mode scheduler.Mode, exp time.Time, r store.Registrant) store.Domain {
	return store.Domain{Name: "a.example", Mode: mode, Expiry: exp, Registrant: r}
}

// TestHolderChangeAfterExpiry: the RAE stays the cycle's recipient; the
// new holder is the domain's.
func TestHolderChangeAfterExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, expA.Add(-10*scheduler.Day))
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, bob)) // before expiry: follows
	if c, _ := w.cycle(t, expA); c.Registrant != bob {
		t.Fatalf("before expiry the recipient is %v, want the new holder %v", c.Registrant, bob)
	}
	w.now = expA.Add(time.Hour)
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
	if c, _ := w.cycle(t, expA); c.Registrant != bob || c.Frozen.IsZero() {
		t.Errorf("after expiry: recipient %v (frozen %v), want %v frozen", c.Registrant, c.Frozen, bob)
	}
	if d := w.domain(t); d.Registrant != ann {
		t.Errorf("domain holder %v, want the latest %v (for the next cycle)", d.Registrant, ann)
	}
	if recs := w.auditWith(t, "registrant at expiration frozen: Bob <bob@example.org>; the new holder <ann@example.org>"); len(recs) != 1 {
		t.Errorf("%d freeze audit records, want 1", len(recs))
	}
	if _, err := w.db.Verify(); err != nil {
		t.Errorf("the audit chain with the freeze record does not verify: %v", err)
	}
}

// TestNotRenewedOwesPostExpiry: a renew-mode cycle owes reminder3 and the
// suspension notice only on evidence of non-renewal.
func TestNotRenewedOwesPostExpiry(t *testing.T) {
	t.Parallel()
	for _, ev := range []lifecycle.Event{
		lifecycle.FromCalendar(lifecycle.Expired, dom(scheduler.ModeRenew, expA, ann), "cal.csv:2"),
		{Kind: lifecycle.NotRenewed, Domain: store.Domain{Name: "a.example", Expiry: expA}, Reason: "AutoRenew order O1 Failed on 2027-03-01"},
	} {
		t.Run(ev.Reason, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, expA.Add(-40*scheduler.Day))
			w.row(t, lifecycle.Active, dom(scheduler.ModeRenew, expA, ann))
			w.now = expA.Add(2 * time.Hour)
			w.row(t, lifecycle.Active, dom(scheduler.ModeRenew, expA, ann))
			if _, steps := w.cycle(t, expA); len(steps) != 2 {
				t.Fatalf("without evidence: %d steps, want reminder1 and reminder2 only", len(steps))
			}
			if ch := w.apply(t, ev); ch != store.Updated {
				t.Errorf("evidence: %s, want %s", ch, store.Updated)
			}
			c, steps := w.cycle(t, expA)
			if c.NotRenewed == nil || c.NotRenewed.Event != ev.Reason || !c.NotRenewed.At.Equal(w.now) {
				t.Errorf("cycle evidence %+v, want %q at %v", c.NotRenewed, ev.Reason, w.now)
			}
			if s := steps[scheduler.Reminder3]; s.State != scheduler.StateDue {
				t.Errorf("reminder3: %s, want due", s.State)
			}
			if s := steps[scheduler.Suspension]; s.State != scheduler.StatePlanned {
				t.Errorf("suspension: %s, want planned", s.State)
			}
			if d := w.domain(t); d.Mode != scheduler.ModeRenew {
				t.Errorf("domain mode %s, want renew kept for its next cycle", d.Mode)
			}
			// Evidence again, and a plain row after it, change nothing.
			w.apply(t, ev)
			w.row(t, lifecycle.Active, dom(scheduler.ModeRenew, expA, ann))
			if _, steps := w.cycle(t, expA); steps[scheduler.Reminder3].State != scheduler.StateDue {
				t.Errorf("after a later row reminder3 is %s (%q), want still due", steps[scheduler.Reminder3].State, steps[scheduler.Reminder3].Reason)
			}
			if recs := w.auditWith(t, "not renewed: "+ev.Reason); len(recs) != 1 {
				t.Errorf("%d evidence audit records, want 1", len(recs))
			}
		})
	}
}

// TestRenewedGetsNoExpiredNotice: a renewal (new expiry) closes the old
// cycle with nothing post-expiry planned.
func TestRenewedGetsNoExpiredNotice(t *testing.T) {
	t.Parallel()
	w := newWorld(t, expA.Add(-40*scheduler.Day))
	w.row(t, lifecycle.Active, dom(scheduler.ModeRenew, expA, ann))
	w.now = expA.Add(2 * time.Hour)
	if ch := w.row(t, lifecycle.Renewed, dom(scheduler.ModeRenew, expB, ann)); ch != store.NewCycle {
		t.Fatalf("renewed: %s, want %s", ch, store.NewCycle)
	}
	for _, exp := range []time.Time{expA, expB} {
		_, steps := w.cycle(t, exp)
		for _, n := range []scheduler.Notice{scheduler.Reminder3, scheduler.Suspension} {
			if s, ok := steps[n]; ok {
				t.Errorf("cycle %v has %s (%s), want none", exp, n, s.State)
			}
		}
	}
}

// TestGoneClosesAndSetsLeft: transferred, deleted and not-in-full-sync
// close the open cycle with the reason and set Left.
func TestGoneClosesAndSetsLeft(t *testing.T) {
	t.Parallel()
	for _, ev := range []lifecycle.Event{
		lifecycle.FromCalendar(lifecycle.Transferred, dom(scheduler.ModeExpire, expA, ann), "cal.csv:2"),
		lifecycle.FromCalendar(lifecycle.Deleted, dom(scheduler.ModeExpire, expA, ann), "cal.csv:2"),
		lifecycle.NotInCalendar("a.example", "cal.csv"),
	} {
		t.Run(ev.Reason, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, expA.Add(-10*scheduler.Day))
			w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
			if ch := w.apply(t, ev); ch != lifecycle.Closed {
				t.Errorf("change %s, want %s", ch, lifecycle.Closed)
			}
			c, steps := w.cycle(t, expA)
			if steps[scheduler.Reminder3].State != scheduler.StateSkipped {
				t.Errorf("reminder3 %s, want skipped", steps[scheduler.Reminder3].State)
			}
			if c.Closed.IsZero() || c.Reason != ev.Reason {
				t.Errorf("cycle closed %v with %q, want closed with %q", c.Closed, c.Reason, ev.Reason)
			}
			for n, s := range steps {
				if s.State == scheduler.StateMissed {
					continue // its deadline passed before the domain left
				}
				if s.State != scheduler.StateSkipped || s.Reason != ev.Reason {
					t.Errorf("%s: %s (%q), want skipped with %q", n, s.State, s.Reason, ev.Reason)
				}
			}
			if d := w.domain(t); d.Left == nil || d.Left.Reason != ev.Reason || !d.Left.At.Equal(w.now) {
				t.Errorf("Left %+v, want %q at %v", d.Left, ev.Reason, w.now)
			}
			if ch := w.apply(t, ev); ch != store.Unchanged {
				t.Errorf("again: %s, want unchanged", ch)
			}
		})
	}
}

// TestRestoredPlansNewExpiry: a domain deleted at expiry and restored from
// redemption is planned for its new expiry.
func TestRestoredPlansNewExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, expA.Add(-10*scheduler.Day))
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
	w.now = expA.Add(20 * scheduler.Day)
	w.row(t, lifecycle.Deleted, dom(scheduler.ModeExpire, expA, ann))
	if ch := w.row(t, lifecycle.Restored, dom(scheduler.ModeRenew, expB, ann)); ch != store.NewCycle {
		t.Errorf("restored: %s, want %s", ch, store.NewCycle)
	}
	d := w.domain(t)
	if d.Left != nil || d.Stopped != "" {
		t.Errorf("restored domain: left %+v, stopped %q; want back in the calendar", d.Left, d.Stopped)
	}
	if c, steps := w.cycle(t, expB); c.Closed.IsZero() == false || steps[scheduler.Reminder1].State != scheduler.StatePlanned {
		t.Errorf("new cycle closed %v, reminder1 %s; want open with reminder1 planned", c.Closed, steps[scheduler.Reminder1].State)
	}
}

// TestExpiryBackAfterExpiry: A, B, A where A has passed: A's cycle is
// reopened and owes its post-expiry notices again, to its frozen RAE.
func TestExpiryBackAfterExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t, expA.Add(-10*scheduler.Day))
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
	w.now = expA.Add(time.Hour)
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expB, ann)) // a wrong import
	w.now = expA.Add(2 * time.Hour)
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, bob)) // corrected, and a new holder
	c, steps := w.cycle(t, expA)
	if !c.Closed.IsZero() {
		t.Errorf("cycle A still closed: %q", c.Reason)
	}
	if s := steps[scheduler.Reminder3]; s.State != scheduler.StateDue {
		t.Errorf("reminder3 of the reopened cycle: %s (%q), want due", s.State, s.Reason)
	}
	if s := steps[scheduler.Suspension]; s.State != scheduler.StatePlanned {
		t.Errorf("suspension of the reopened cycle: %s (%q), want planned", s.State, s.Reason)
	}
	if c.Registrant != ann {
		t.Errorf("reopened cycle's recipient %v, want the RAE %v", c.Registrant, ann)
	}
}

// TestExpiryBackAfterModeSwitch: A in expire mode, set to renew (reminder3
// and suspension skipped), a wrong expiry B, then A again in expire mode:
// the reopened cycle owes its post-expiry notices again.
func TestExpiryBackAfterModeSwitch(t *testing.T) {
	t.Parallel()
	w := newWorld(t, expA.Add(-10*scheduler.Day))
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
	w.apply(t, lifecycle.Event{Kind: lifecycle.Facts, Domain: store.Domain{Name: "a.example", Mode: scheduler.ModeRenew, Expiry: expA},
		Reason: "set to renew (order U1, Unexpire Completed)"})
	if _, steps := w.cycle(t, expA); steps[scheduler.Reminder3].State != scheduler.StateSkipped {
		t.Fatalf("after Unexpire reminder3 is %s, want skipped", steps[scheduler.Reminder3].State)
	}
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expB, ann))
	w.row(t, lifecycle.Active, dom(scheduler.ModeExpire, expA, ann))
	_, steps := w.cycle(t, expA)
	for _, n := range []scheduler.Notice{scheduler.Reminder2, scheduler.Reminder3, scheduler.Suspension} {
		if s := steps[n]; s.State != scheduler.StatePlanned && s.State != scheduler.StateDue {
			t.Errorf("%s of the reopened expire-mode cycle: %s (%q), want owed again", n, s.State, s.Reason)
		}
	}
}
