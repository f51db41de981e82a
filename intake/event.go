// Package intake takes in what Ascio tells errpd about its domains: the
// HTTP callbacks Ascio sends when a message is queued, and the message
// queue itself, drained on a schedule for the messages whose callback
// failed. It trusts nothing in a callback's URL: it reads the message, the
// order and the domain from Ascio before it changes the calendar, and it
// acknowledges a message only after its effect is stored.
package intake

import (
	"context"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// Calendar is where intake stores what a message means. The store
// implements it.
type Calendar interface {
	// Apply stores the effect of one Ascio message atomically together
	// with the message id, and reports applied=false if that message id
	// was already applied (then it changes nothing).
	Apply(ctx context.Context, ev Event) (applied bool, err error)
}

// Kind is what an event does to a domain's cycle.
type Kind string

const (
	// Plan stores the domain and plans its cycle for Expiry. If the
	// stored expiry differs, the old cycle closes (its unsent notices are
	// skipped with Reason) and a new one is planned; with the same expiry
	// the cycle is updated (order id, registrant, mode when given).
	Plan Kind = "plan"
	// Stop ends the domain's current cycle and plans nothing (deleted,
	// transferred away): unsent notices are skipped with Reason.
	Stop Kind = "stop"
	// Switch changes the mode of the current cycle (Expire, Unexpire):
	// notices the new mode does not owe are skipped, those it owes are
	// planned, and from then on the other template set is used.
	Switch Kind = "switch"
	// NotRenewed is evidence that the domain did not renew at Expiry (a
	// failed AutoRenew order): a renew-mode cycle then owes the
	// post-expiry notices.
	NotRenewed Kind = "not_renewed"
	// Ignore changes no cycle; the message id is recorded (with Reason)
	// so that the message is accounted for and not applied twice.
	Ignore Kind = "ignore"
)

// Registrant is the holder as GetDomain reported them.
type Registrant struct {
	Name     string
	Email    string
	Language string // empty: Ascio's contact carries none
}

// Event is the calendar effect of one Ascio queue message.
type Event struct {
	MessageID int    // Ascio's queue message id, the idempotency key
	Kind      Kind   // plan, stop, switch, not_renewed or ignore
	Domain    string // lower-case A-label; empty only for Ignore
	Handle    string // Ascio's domain handle, from GetDomain
	// Mode is renew or expire; empty means "keep the stored mode" (a
	// domain not yet stored is then planned as renew).
	Mode scheduler.Mode
	// Expiry is the domain's expiry from GetDomain (UTC), set for Plan and
	// Switch.
	Expiry time.Time
	// OrderID is the AutoRenew/AutoDelete order that notices are uploaded
	// against; empty means "keep the stored one" for the same expiry.
	OrderID string
	// Registrant is empty when GetDomain gave no owner.
	Registrant Registrant
	// OrderType and OrderStatus are Ascio's, in v3 spelling.
	OrderType   string
	OrderStatus string
	// Reason says why, for the audit trail and for the steps it skips,
	// e.g. "renewed on 2026-02-03 (order TEST123, Renew)".
	Reason string
}
