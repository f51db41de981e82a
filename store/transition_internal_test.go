package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// TestEveryTransition walks every (from, to) pair, a new step included,
// through putStep, the one function that writes a step's state (Transition
// and the planner's writes in calendar.go both end there): an edge of the
// table is written, with an audit record when the state changes; any other
// pair is refused with an error naming the step and both states, and
// nothing is written.
func TestEveryTransition(t *testing.T) {
	t.Parallel()
	now := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "errpd.db"), Options{Now: func() time.Time { return now }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	expiry := now.Add(60 * scheduler.Day)
	froms := append([]scheduler.State{New}, scheduler.States...)
	legal := 0
	for _, from := range froms {
		for _, to := range scheduler.States {
			id := StepID(string(from)+"-"+string(to)+".example", expiry, scheduler.Reminder1)
			base := Step{ID: id, Domain: "x.example", Expiry: expiry, Notice: scheduler.Reminder1, State: from,
				Opens: now, Deadline: expiry, SendAt: now}
			var records, after uint64
			var stored Step
			var found bool
			err := db.Update(func(tx *Tx) error {
				var old *Step
				if from != New {
					// The step as some earlier write left it, stored as is.
					if err := putJSON(tx.tx.Bucket(bucketSteps), idKey(id), base); err != nil {
						return err
					}
					old = &base
				}
				records = tx.auditSeq()
				s := base
				s.State = to
				err := tx.putStep(old, &s, "test")
				after = tx.auditSeq()
				var gerr error
				stored, found, gerr = tx.Step(id)
				return errors.Join(err, gerr)
			})
			if Allowed(from, to) {
				legal++
				wantRecords := records
				if from != to {
					wantRecords++
				}
				if err != nil || !found || stored.State != to || after != wantRecords {
					t.Errorf("%q -> %s: %v, stored %t in %s, %d audit records added; want it written with %d",
						from, to, err, found, stored.State, after-records, wantRecords-records)
				}
				continue
			}
			var ill *IllegalTransitionError
			if !errors.As(err, &ill) || ill.Step != id || ill.From != from || ill.To != to {
				t.Errorf("%q -> %s: %v, want it refused as an illegal transition", from, to, err)
				continue
			}
			for _, want := range []string{id, string(to), " -> "} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%q -> %s: %q does not name %q", from, to, err, want)
				}
			}
		}
	}
	if legal != len(edges) {
		t.Errorf("%d pairs allowed, the table has %d edges (a duplicate, or a state outside scheduler.States?)", legal, len(edges))
	}
}

// auditSeq is the last audit record's sequence number.
func (t *Tx) auditSeq() uint64 {
	k, _ := t.tx.Bucket(bucketAudit).Cursor().Last()
	if k == nil {
		return 0
	}
	return bytesToU64(k)
}
