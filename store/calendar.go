package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// PlanOptions are what Upsert needs to turn a domain into its cycle.
type PlanOptions struct {
	Policy scheduler.Policy
	// InScope reports whether ERRP applies to a domain; nil means all do.
	InScope func(domain string) bool
	// Reason explains why an old cycle closes when the expiry changed
	// (e.g. "renewed"); the new expiry is appended.
	Reason string
}

// Change says what Upsert did to a domain.
type Change string

const (
	Unchanged Change = "unchanged"
	Added     Change = "added"
	Updated   Change = "updated"   // same expiry, other facts changed
	NewCycle  Change = "new_cycle" // expiry changed: old cycle closed, new one planned
)

// Upsert stores a domain and plans its cycle. The same domain with the same
// facts changes nothing. A new expiry closes the old cycle (its unsent steps
// become skipped, with the reason) and plans a new one. A new mode for the
// same expiry replans the cycle: notices the new mode does not owe are
// skipped, notices it owes are added.
func (t *Tx) Upsert(d Domain, o PlanOptions) (Change, error) {
	d.Expiry = d.Expiry.UTC().Truncate(time.Second)
	old, found, err := t.Domain(d.Name)
	if err != nil {
		return "", err
	}
	change := Added
	if found {
		d.Flag = old.Flag // a bounce's flag, kept while it concerns the registrant's address
		sameExpiry := old.Expiry.Equal(d.Expiry)
		if sameExpiry && d.OrderID == "" {
			d.OrderID = old.OrderID // an import does not forget what Ascio told us
		}
		if sameExpiry && old.Stopped == "" && sameFacts(old, d) {
			// Unchanged, unless the scope config changed since the cycle
			// was planned: then its notices are owed, or not, anew.
			c, ok, err := t.Cycle(old.Cycle)
			if err != nil {
				return "", err
			}
			if !ok || c.InScope == (o.InScope == nil || o.InScope(d.Name)) {
				return Unchanged, nil
			}
		}
		change = Updated
		if !sameExpiry && old.Cycle != "" {
			change = NewCycle
			reason := o.Reason
			if reason == "" {
				reason = "expiry changed"
			}
			reason = fmt.Sprintf("%s: new expiry %s", reason, d.Expiry.Format(time.RFC3339))
			if err := t.closeCycle(old.Cycle, reason); err != nil {
				return "", err
			}
		}
	}
	// A domain Ascio said was deleted or transferred away owes no notices
	// again just because a calendar still lists it: its skipped steps stay.
	wasStopped := found && old.Stopped != ""
	d.Stopped = ""
	d.Left = nil // listed again: back in the calendar
	d.Cycle = CycleKey(d.Name, d.Expiry)
	d.Updated = t.now
	if err := t.planCycle(d, o, !wasStopped); err != nil {
		return "", err
	}
	return change, putJSON(t.tx.Bucket(bucketDomains), []byte(d.Name), d)
}

func sameFacts(a, b Domain) bool {
	return a.Mode == b.Mode && a.Registrant == b.Registrant && a.Brand == b.Brand && a.OrderID == b.OrderID
}

// Stop ends a domain's current cycle without a new one (deleted,
// transferred away): its unsent steps become skipped with the reason.
func (t *Tx) Stop(name, reason string) error {
	d, ok, err := t.Domain(name)
	if err != nil || !ok {
		return err
	}
	if d.Stopped != "" {
		return nil
	}
	if d.Cycle != "" {
		if err := t.closeCycle(d.Cycle, reason); err != nil {
			return err
		}
	}
	d.Stopped = reason
	d.Left = &Departure{At: t.now, Reason: reason}
	d.Updated = t.now
	return putJSON(t.tx.Bucket(bucketDomains), []byte(d.Name), d)
}

// closeCycle marks a cycle closed and skips its steps that were not sent.
func (t *Tx) closeCycle(key, reason string) error {
	c, ok, err := t.Cycle(key)
	if err != nil || !ok {
		return err
	}
	if c.Closed.IsZero() {
		c.Closed, c.Reason = t.now, reason
		if err := putJSON(t.tx.Bucket(bucketCycles), []byte(key), c); err != nil {
			return err
		}
	}
	steps, err := t.Steps(key)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if !s.State.Waiting() {
			continue
		}
		old := s
		s.State, s.Reason = scheduler.StateSkipped, reason
		if err := t.putStep(&old, &s, ""); err != nil {
			return err
		}
	}
	return nil
}

// modeSwitched starts the reason of a step skipped because its cycle's
// mode no longer owes it.
const modeSwitched = "mode switched to "

// outOfScope is the reason of a step skipped because ERRP does not apply.
const outOfScope = "out of scope: ERRP does not apply to this TLD"

// owedAgain says why a skipped step is owed again, or "" if it is not. A
// step is revived only when the one thing that skipped it is undone: the
// mode switched back (Expire, Unexpire, Expire), the expiry came back to
// this cycle's (A, B, A: a renewal reversed or a wrong import corrected),
// or its TLD came into scope. A skipped step was never sent, so reviving
// it cannot send a notice twice.
func owedAgain(reason string, reopened bool, closedFor string, inScope bool, d Domain) string {
	switch {
	case reopened && closedFor != "" && reason == closedFor:
		return "cycle reopened: expiry is " + d.Expiry.Format(time.RFC3339) + " again"
	case !reopened && strings.HasPrefix(reason, modeSwitched):
		return modeSwitched + string(d.Mode)
	case inScope && reason == outOfScope:
		return "now in scope"
	}
	return ""
}

// planCycle writes the cycle for d's expiry and upserts its steps. Steps
// already past waiting (sent, proved, failed, ...) are never touched again;
// skipped ones only when owedAgain says so (with reviveClosed false, not
// those a closed cycle skipped).
func (t *Tx) planCycle(d Domain, o PlanOptions, reviveClosed bool) error {
	c, found, err := t.Cycle(d.Cycle)
	if err != nil {
		return err
	}
	if !found {
		c = Cycle{Key: d.Cycle, Domain: d.Name, Expiry: d.Expiry, Planned: t.now}
	}
	closedFor := c.Reason // why it closed, if it did: its skipped steps say so
	reopened := !c.Closed.IsZero()
	if !reviveClosed {
		closedFor = ""
	}
	c.Mode, c.OrderID, c.Registrant, c.Brand = d.Mode, d.OrderID, d.Registrant, d.Brand
	c.InScope = o.InScope == nil || o.InScope(d.Name)
	c.Closed, c.Reason = time.Time{}, ""
	if err := putJSON(t.tx.Bucket(bucketCycles), []byte(c.Key), c); err != nil {
		return err
	}

	owed := map[scheduler.Notice]bool{}
	for _, p := range scheduler.Plan(d.Expiry, d.Mode, o.Policy, t.now) {
		owed[p.Notice] = true
		id := StepID(d.Name, d.Expiry, p.Notice)
		var s Step
		exists := false
		if found { // a cycle's steps are written after it: a new cycle has none
			if s, exists, err = t.Step(id); err != nil {
				return err
			}
		}
		why := ""
		if exists && s.State == scheduler.StateSkipped {
			why = owedAgain(s.Reason, reopened, closedFor, c.InScope, d)
		}
		revived := why != ""
		if exists && !s.State.Waiting() && !revived {
			// A sent notice waiting for its order id uploads as soon as
			// Ascio tells us the id.
			if s.State == scheduler.StateSent && c.OrderID != "" && s.OrderID != c.OrderID {
				prev := s
				s.OrderID, s.NextUpload = c.OrderID, t.now
				if err := t.putStep(&prev, &s, ""); err != nil {
					return err
				}
			}
			continue
		}
		var old *Step
		if exists {
			prev := s
			old = &prev
		} else {
			s = Step{ID: id, Cycle: c.Key, Domain: d.Name, Expiry: d.Expiry, Notice: p.Notice}
		}
		retryAt, lastErr := s.SendAt, s.Reason
		s.Opens, s.Deadline, s.SendAt, s.State, s.Reason = p.Opens, p.Deadline, p.SendAt, p.State, ""
		if exists && old.State == scheduler.StateDue && s.State == scheduler.StateDue && old.Attempts > 0 &&
			!retryAt.Before(s.Opens) && retryAt.Before(s.Deadline) {
			// A retry is scheduled: planning again (an import repeating the
			// calendar with new facts) keeps its time and last error, so
			// that it is neither sooner than its backoff nor put off to the
			// next send hour.
			s.SendAt, s.Reason = retryAt, lastErr
		}
		switch {
		case !c.InScope:
			s.State, s.SendAt, s.Reason = scheduler.StateSkipped, time.Time{}, outOfScope
		case p.State == scheduler.StateMissed && exists && old.MayHaveGone:
			// As in the sweep: an earlier send may have been delivered.
			s.State, s.Reason = scheduler.StateInDoubt, mayHaveGoneAtDeadline
		case p.State == scheduler.StateMissed:
			s.Reason = "deadline passed before the notice was sent"
		}
		if err := t.putStep(old, &s, why); err != nil {
			return err
		}
	}

	// A mode switch (Expire/Unexpire) drops the notices the new mode does
	// not owe; a new cycle has no others.
	if !found {
		return nil
	}
	steps, err := t.Steps(c.Key)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if owed[s.Notice] || !s.State.Waiting() {
			continue
		}
		old := s
		s.State, s.Reason = scheduler.StateSkipped, modeSwitched+string(d.Mode)
		if err := t.putStep(&old, &s, ""); err != nil {
			return err
		}
	}
	return nil
}
