// Package lifecycle holds every rule about what a calendar row or an Ascio
// event does to a domain's cycle: plan it, update its recipient or freeze
// it (the Registrant at Expiration), record evidence that the domain did
// not renew, close it with a reason, or reopen it. Decide is pure: it
// judges from the stored domain, its current cycle, the event and the time;
// Apply has the store carry the decision out in the caller's transaction.
package lifecycle

import (
	"fmt"
	"strings"
	"time"

	"github.com/errpd/errpd/intake"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Status is what a calendar row says happened to a domain.
type Status string

const (
	Active      Status = "active" // also the empty value
	Expired     Status = "expired"
	Renewed     Status = "renewed"
	Transferred Status = "transferred"
	Deleted     Status = "deleted"
	Restored    Status = "restored"
)

// Statuses lists the values a calendar's status column may hold.
var Statuses = []Status{Active, Expired, Renewed, Transferred, Deleted, Restored}

// ParseStatus reads a calendar status; empty means active.
func ParseStatus(s string) (Status, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return Active, nil
	}
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	names := make([]string, len(Statuses))
	for i, st := range Statuses {
		names[i] = string(st)
	}
	return "", fmt.Errorf("status %q is not one of %s (or empty)", s, strings.Join(names, ", "))
}

// Kind is what an event says about a domain.
type Kind string

const (
	// Facts: the domain as it now is (expiry, mode, holder, brand, order).
	Facts Kind = "facts"
	// NotRenewed: evidence that the domain did not renew at Expiry
	// (a failed AutoRenew order, a calendar status expired, an unchanged
	// expiry at the renewal check).
	NotRenewed Kind = "not_renewed"
	// Gone: the domain left (transferred away, deleted, not in a full
	// sync): its open cycle closes and nothing more is planned.
	Gone Kind = "gone"
	// Restore: back from redemption with a new expiry: plan it, even for
	// a domain that was gone.
	Restore Kind = "restore"
)

// Event is one thing errpd learnt about a domain. In Domain, empty fields
// keep the stored ones: a zero expiry, no mode, no registrant e-mail, and
// (for the same expiry) no order id.
type Event struct {
	Kind   Kind
	Domain store.Domain
	// Reason says what happened, for steps, the audit trail and the
	// report: "transferred away (calendar cal.csv:4)".
	Reason string
}

// FromCalendar is the event of a calendar row with status st; where names
// the row ("cal.csv:4") in the reasons.
func FromCalendar(st Status, d store.Domain, where string) Event {
	ev := Event{Kind: Facts, Domain: d}
	switch st {
	case Renewed:
		ev.Reason = "renewed (calendar " + where + ")"
	case Expired:
		ev.Kind, ev.Reason = NotRenewed, "calendar status expired ("+where+")"
	case Transferred:
		ev.Kind, ev.Reason = Gone, "transferred away (calendar "+where+")"
	case Deleted:
		ev.Kind, ev.Reason = Gone, "deleted (calendar "+where+")"
	case Restored:
		ev.Kind, ev.Reason = Restore, "restored (calendar "+where+")"
	}
	return ev
}

// NotInCalendar is the event of a stored domain a full sync of file does
// not list.
func NotInCalendar(name, file string) Event {
	return Event{Kind: Gone, Domain: store.Domain{Name: name}, Reason: "not in calendar, full sync of " + file}
}

// Action is what the store is to do.
type Action string

const (
	Plan   Action = "plan"   // store the domain and plan its cycle (see Decision)
	Close  Action = "close"  // close the open cycle with Reason and mark the domain left
	Ignore Action = "ignore" // nothing to do (Reason says why)
)

// Decision is what one event does to a domain.
type Decision struct {
	Action Action
	Domain store.Domain // the domain to store, for Plan
	Reason string       // why the old cycle closes (new expiry), or why Close/Ignore
	// Freeze keeps the cycle's recipient: its expiry has passed.
	Freeze bool
	// Evidence that the domain did not renew (Plan only).
	Evidence *store.Evidence
}

// Decide says what ev does to the stored domain d (found false: not yet
// stored) whose current cycle is c (zero when it has none), at now.
func Decide(d store.Domain, found bool, c store.Cycle, ev Event, now time.Time) Decision {
	switch ev.Kind {
	case Gone:
		if !found || d.Stopped != "" {
			return Decision{Action: Ignore, Reason: "already gone: " + orNone(d.Stopped)}
		}
		return Decision{Action: Close, Reason: ev.Reason}
	case Restore:
		next := merge(d, found, ev.Domain)
		next.Stopped, next.Left = "", nil
		return Decision{Action: Plan, Domain: next, Reason: ev.Reason}
	}
	if found && d.Stopped != "" && ev.Kind == NotRenewed {
		return Decision{Action: Ignore, Reason: "gone: " + d.Stopped}
	}
	next := merge(d, found, ev.Domain)
	dec := Decision{Action: Plan, Domain: next, Reason: ev.Reason}
	sameCycle := found && c.Key != "" && c.Expiry.Equal(next.Expiry)
	// ERRP 1.2: once the expiry instant has passed, the cycle's recipient
	// is the holder at that instant (the Registrant at Expiration); a
	// later holder is the domain's, for its next cycle. This holds for a
	// cycle reopened after its expiry (A, B, A) too.
	dec.Freeze = !now.Before(next.Expiry)
	if ev.Kind == NotRenewed {
		if !sameCycle && found && d.Expiry.After(next.Expiry) {
			// Evidence about an expiry older than the stored one: the
			// domain renewed since (or the evidence is stale).
			return Decision{Action: Ignore, Reason: "not renewed at " + rfc(next.Expiry) + ", but the domain now expires " + rfc(d.Expiry)}
		}
		if found && !sameCycle && next.Expiry.After(d.Expiry) {
			// The domain expires later than errpd knew: it renewed after
			// all. Store the new expiry; it is no evidence for either.
			// The failed order was the old expiry's: not the new cycle's.
			dec.Reason = ev.Reason + ", but the domain now expires " + rfc(next.Expiry)
			dec.Domain.OrderID = ""
			return dec
		}
		if next.Mode == scheduler.ModeRenew {
			dec.Evidence = &store.Evidence{Event: ev.Reason, At: now.UTC()}
		}
	}
	return dec
}

// merge applies the event's facts over the stored domain: empty fields
// keep what is stored.
func merge(d store.Domain, found bool, f store.Domain) store.Domain {
	if !found {
		d = store.Domain{Name: f.Name, Mode: scheduler.ModeRenew}
	}
	if f.Mode != "" {
		d.Mode = f.Mode
	}
	newExpiry := !f.Expiry.IsZero() && !d.Expiry.Equal(f.Expiry.UTC().Truncate(time.Second))
	if f.OrderID != "" || newExpiry {
		d.OrderID = f.OrderID
	}
	if !f.Expiry.IsZero() {
		d.Expiry = f.Expiry.UTC().Truncate(time.Second)
	}
	if f.Registrant.Email != "" {
		d.Registrant = f.Registrant
	}
	if f.Brand != "" {
		d.Brand = f.Brand
	}
	if f.Handle != "" {
		d.Handle = f.Handle
	}
	return d
}

// Apply decides what ev does to its domain and has the store carry it out
// in tx, with its audit records. It reports what changed.
func Apply(tx *store.Tx, ev Event, o store.PlanOptions) (store.Change, Decision, error) {
	d, found, err := tx.Domain(ev.Domain.Name)
	if err != nil {
		return "", Decision{}, err
	}
	var c store.Cycle
	if found && d.Cycle != "" {
		if c, _, err = tx.Cycle(d.Cycle); err != nil {
			return "", Decision{}, err
		}
	}
	dec := Decide(d, found, c, ev, tx.Now())
	switch dec.Action {
	case Close:
		return Closed, dec, tx.Stop(d.Name, dec.Reason)
	case Plan:
		o.Reason, o.Freeze, o.NotRenewed = dec.Reason, dec.Freeze, dec.Evidence
		if found && d.Stopped != "" && ev.Kind == Restore {
			o.Revive = true
		}
		// Upsert over what was read here, not read again.
		ch, err := tx.UpsertOver(dec.Domain, store.Stored{Domain: d, Found: found, Cycle: c, CycleRead: true}, o)
		return ch, dec, err
	}
	return store.Unchanged, dec, nil
}

// Closed is the change of a domain whose cycle an event closed.
const Closed store.Change = "closed"

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func orNone(s string) string {
	if s == "" {
		return "not stored"
	}
	return s
}

// FromAscio is the event of an Ascio queue message as intake interpreted
// it; ok is false for one that changes no cycle.
func FromAscio(ev intake.Event) (e Event, ok bool) {
	d := store.Domain{Name: ev.Domain, Mode: ev.Mode, Expiry: ev.Expiry, OrderID: ev.OrderID, Handle: ev.Handle,
		Registrant: store.Registrant{Name: ev.Registrant.Name, Email: ev.Registrant.Email, Language: ev.Registrant.Language}}
	e = Event{Domain: d, Reason: ev.Reason}
	switch ev.Kind {
	case intake.Plan, intake.Switch:
		e.Kind = Facts
	case intake.Stop:
		e.Kind = Gone
	case intake.NotRenewed:
		e.Kind = NotRenewed
	default:
		return e, false
	}
	return e, true
}
