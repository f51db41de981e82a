package resolve_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/resolve"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

func TestUnresolvedAndSettle(t *testing.T) {
	s := reporttest.Seed(t)
	doubt := store.StepID("doubt.info", reporttest.Expiry(), scheduler.Reminder2)
	failed := store.StepID("failed.com", reporttest.Expiry(), scheduler.Reminder1)
	var got []string
	if err := resolve.Unresolved(s.DB, func(st store.Step) error { got = append(got, st.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != doubt+" "+failed {
		t.Errorf("unresolved %q, want the in-doubt one, then the failed one", got)
	}
	// The seeded store's clock is past both deadlines: a resend and a new
	// send are refused (Ascio has sent its own copy), marking sent is not.
	if err := resolve.Settle(s.DB, doubt, resolve.Resend, "", ""); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("resend after the deadline: %v", err)
	}
	if err := resolve.Settle(s.DB, doubt, resolve.Action("undo"), "", ""); err == nil {
		t.Error("an unknown action was carried out")
	}
	if err := resolve.Settle(s.DB, doubt, resolve.MarkSent, "relay log", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := resolve.Settle(s.DB, doubt, resolve.MarkSent, "again", "bob"); err == nil {
		t.Error("a step marked sent twice")
	}
	var details []string
	s.DB.View(func(tx *store.Tx) error {
		return tx.Audit(0, func(r store.Record) error {
			if r.Step == doubt && r.To == scheduler.StateSent {
				details = append(details, r.Detail)
			}
			return nil
		})
	})
	if len(details) != 1 || details[0] != "marked delivered by operator (console user bob): relay log" {
		t.Errorf("audit details %q", details)
	}
	if acts := resolve.Actions(store.Step{State: scheduler.StateInDoubt}); len(acts) != 2 {
		t.Errorf("actions on a step in doubt: %v", acts)
	}
}

// TestUnresolvedInChunks: the steps in doubt are read from the index of
// steps caught mid-action a chunk per read transaction, all of them, in id
// order. (Before: every one in one transaction, which the daemon's console
// held open while it rendered them.)
func TestUnresolvedInChunks(t *testing.T) {
	const n = 4321
	most := 0
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), store.Options{Now: func() time.Time { return now }, NoSync: true,
		TxSteps: func(read int) { most = max(most, read) }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var want []string
	err = db.Update(func(tx *store.Tx) error {
		for i := range n {
			d := store.Domain{Name: fmt.Sprintf("d%05d.example", (i*7919)%n), Mode: scheduler.ModeRenew, Expiry: now.Add(200 * scheduler.Day),
				Registrant: store.Registrant{Name: "Ana", Email: "ana@mail.example"}}
			if _, err := tx.Upsert(d, store.PlanOptions{Policy: scheduler.DefaultPolicy()}); err != nil {
				return err
			}
			id := store.StepID(d.Name, d.Expiry, scheduler.Reminder1)
			want = append(want, id)
			if _, err := tx.Transition(id, []scheduler.State{scheduler.StatePlanned}, scheduler.StateSending, "claimed", nil); err != nil {
				return err
			}
			if _, err := tx.Transition(id, []scheduler.State{scheduler.StateSending}, scheduler.StateInDoubt, "lost", nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	most = 0
	var got []string
	if err := resolve.Unresolved(db, func(st store.Step) error { got = append(got, st.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %d steps in doubt, want the %d, in id order", len(got), n)
	}
	if most > 2000 {
		t.Errorf("one read transaction read %d steps; want chunks of at most 2,000", most)
	}
}
