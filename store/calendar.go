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
		sameExpiry := old.Expiry.Equal(d.Expiry)
		if sameExpiry && d.OrderID == "" {
			d.OrderID = old.OrderID // an import does not forget what Ascio told us
		}
		if sameExpiry && old.Stopped == "" && sameFacts(old, d) {
			return Unchanged, nil
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
	d.Stopped = ""
	d.Cycle = CycleKey(d.Name, d.Expiry)
	d.Updated = t.now
	if err := t.planCycle(d, o); err != nil {
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

// planCycle writes the cycle for d's expiry and upserts its steps. Steps
// already past waiting (sent, proved, failed, ...) are never touched again.
func (t *Tx) planCycle(d Domain, o PlanOptions) error {
	c, found, err := t.Cycle(d.Cycle)
	if err != nil {
		return err
	}
	if !found {
		c = Cycle{Key: d.Cycle, Domain: d.Name, Expiry: d.Expiry, Planned: t.now}
	}
	reopened := !c.Closed.IsZero()
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
		// A notice skipped because the mode no longer owed it is owed
		// again when the mode switches back (Expire, Unexpire, Expire).
		revived := exists && !reopened && s.State == scheduler.StateSkipped && strings.HasPrefix(s.Reason, modeSwitched)
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
		s.Opens, s.Deadline, s.SendAt, s.State, s.Reason = p.Opens, p.Deadline, p.SendAt, p.State, ""
		switch {
		case !c.InScope:
			s.State, s.SendAt, s.Reason = scheduler.StateSkipped, time.Time{}, "out of scope: ERRP does not apply to this TLD"
		case p.State == scheduler.StateMissed:
			s.Reason = "deadline passed before the notice was sent"
		}
		detail := ""
		if revived {
			detail = modeSwitched + string(d.Mode)
		}
		if err := t.putStep(old, &s, detail); err != nil {
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
