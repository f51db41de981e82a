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
	// Freeze keeps the cycle's recipient: its expiry has passed, so its
	// Registrant at Expiration is fixed (package lifecycle decides).
	Freeze bool
	// NotRenewed is evidence that the domain did not renew: the cycle
	// then owes the expire-mode notices.
	NotRenewed *Evidence
	// RenewalCheck, when positive, gives each new renew-mode cycle a
	// GetDomain check this long after its expiry (Ascio configured).
	RenewalCheck time.Duration
	// Revive plans a domain that was stopped as if it never was (restored
	// from redemption): the steps its closing skipped are owed again.
	Revive bool
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
	old, found, err := t.Domain(d.Name)
	if err != nil {
		return "", err
	}
	return t.UpsertOver(d, Stored{Domain: old, Found: found}, o)
}

// Stored is what is stored of a domain, as read in the same transaction.
// A caller that read it already (lifecycle.Apply, to decide) gives it to
// UpsertOver, so that an import decodes each row's domain and cycle once,
// not twice: on a re-import, where most rows change nothing, that reading
// is most of the work.
type Stored struct {
	Domain Domain
	Found  bool // Domain is stored
	// Cycle is Domain.Cycle as read; CycleRead says it was (found or not).
	Cycle     Cycle
	CycleRead bool
}

// UpsertOver is Upsert over what the caller read of d in this transaction.
func (t *Tx) UpsertOver(d Domain, s Stored, o PlanOptions) (Change, error) {
	d.Expiry = d.Expiry.UTC().Truncate(time.Second)
	old, found := s.Domain, s.Found
	if found && old.Name != d.Name {
		return "", fmt.Errorf("upsert of %s over the stored %s", d.Name, old.Name)
	}
	change := Added
	if found {
		d.Flag = old.Flag // a bounce's flag, kept while it concerns the registrant's address
		sameExpiry := old.Expiry.Equal(d.Expiry)
		if sameExpiry && d.OrderID == "" {
			d.OrderID = old.OrderID // an import does not forget what Ascio told us
		}
		if d.Handle == "" {
			d.Handle = old.Handle
		}
		if sameExpiry && old.Stopped == "" && sameFacts(old, d) {
			// Unchanged, unless the scope config changed since the cycle
			// was planned: then its notices are owed, or not, anew.
			c, ok := s.Cycle, s.Cycle.Key == old.Cycle && old.Cycle != ""
			if !s.CycleRead {
				var err error
				if c, ok, err = t.Cycle(old.Cycle); err != nil {
					return "", err
				}
			}
			newEvidence := o.NotRenewed != nil && ok && c.NotRenewed == nil
			if !ok || (c.InScope == (o.InScope == nil || o.InScope(d.Name)) && !newEvidence) {
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
	wasStopped := found && old.Stopped != "" && !o.Revive
	d.Stopped = ""
	d.Left = nil // listed again: back in the calendar
	d.Cycle = CycleKey(d.Name, d.Expiry)
	d.Updated = t.now
	if err := t.planCycle(d, o, !wasStopped); err != nil {
		return "", err
	}
	return change, t.putDomain(d)
}

func sameFacts(a, b Domain) bool {
	return a.Mode == b.Mode && a.Registrant == b.Registrant && a.Brand == b.Brand && a.OrderID == b.OrderID && a.Handle == b.Handle
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
	return t.putDomain(d)
}

// closeCycle marks a cycle closed and skips its steps that were not sent.
func (t *Tx) closeCycle(key, reason string) error {
	c, ok, err := t.Cycle(key)
	if err != nil || !ok {
		return err
	}
	if c.Closed.IsZero() {
		c.Closed, c.Reason = t.now, reason
		if err := putJSON(t.tx.Bucket(bucketCycles), idKey(key), c); err != nil {
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
	case (!reopened || closedFor != "") && strings.HasPrefix(reason, modeSwitched):
		// Also in a cycle reopened (A, B, A) whose mode owes it again; not
		// in one of a domain Ascio said was deleted or transferred away.
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
	if err := t.freeze(&c, d, o.Freeze); err != nil {
		return err
	}
	c.Mode, c.OrderID, c.Brand = d.Mode, d.OrderID, d.Brand
	if err := t.notRenewed(&c, o.NotRenewed); err != nil {
		return err
	}
	c.InScope = o.InScope == nil || o.InScope(d.Name)
	c.Closed, c.Reason = time.Time{}, ""
	if err := putJSON(t.tx.Bucket(bucketCycles), idKey(c.Key), c); err != nil {
		return err
	}
	if !found || reopened {
		if err := t.indexRenewal(c, o.RenewalCheck); err != nil {
			return err
		}
	}

	if !found {
		// A new cycle's steps get one audit record (audit.go), written
		// after them; an error before that rolls the whole write back.
		t.planning = &planning{cycle: c.Key}
		defer func() { t.planning = nil }()
	}
	owed := map[scheduler.Notice]bool{}
	for _, p := range scheduler.Plan(d.Expiry, c.Mode, o.Policy, t.now) {
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
		return t.flushPlanning()
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
		s.State, s.Reason = scheduler.StateSkipped, modeSwitched+string(c.Mode)
		if err := t.putStep(&old, &s, ""); err != nil {
			return err
		}
	}
	return nil
}

// freeze keeps a cycle's Registrant at Expiration when frozen is set, and
// records the freeze in the audit trail the first time; otherwise the
// cycle follows the domain's latest registrant.
func (t *Tx) freeze(c *Cycle, d Domain, frozen bool) error {
	if !frozen || c.Registrant.Email == "" {
		c.Registrant = d.Registrant
	}
	if !frozen {
		return nil
	}
	if !c.Frozen.IsZero() {
		return nil
	}
	c.Frozen = t.now
	detail := fmt.Sprintf("registrant at expiration frozen: %s <%s>", c.Registrant.Name, c.Registrant.Email)
	if d.Registrant.Email != c.Registrant.Email {
		detail += fmt.Sprintf("; the new holder <%s> is the domain's for its next cycle", d.Registrant.Email)
	}
	return t.appendAudit(Record{Step: c.Key, Detail: detail})
}

// notRenewed records the first evidence of non-renewal on a cycle: from
// then on it owes the expire-mode notices and is written as expire mode,
// so that they are rendered from the expire templates.
func (t *Tx) notRenewed(c *Cycle, ev *Evidence) error {
	if c.NotRenewed == nil && ev != nil && c.Mode == scheduler.ModeRenew {
		e := *ev
		c.NotRenewed = &e
		if err := t.appendAudit(Record{Step: c.Key, Detail: fmt.Sprintf("not renewed: %s at %s; post-expiry notices owed",
			e.Event, e.At.UTC().Format(time.RFC3339))}); err != nil {
			return err
		}
	}
	if c.NotRenewed != nil {
		c.Mode = scheduler.ModeExpire
	}
	return nil
}
