package resolve_test

import (
	"strings"
	"testing"

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
