package intake

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/scheduler"
)

// Order types in v3 spelling. Normalize maps v2 spellings onto them.
const (
	AutoRenew    = "AutoRenew"
	AutoDelete   = "AutoDelete"
	Renew        = "Renew"
	Transfer     = "Transfer"
	Expire       = "Expire"
	Unexpire     = "Unexpire"
	TransferAway = "TransferAway"
	Delete       = "Delete"
	Restore      = "Restore"
)

// v3 spellings by their normalised key: lower case, no underscores, no
// "domain" suffix. v2 writes Autorenew_Domain, Transfer_Away,
// Pending_End_User_Action; v3 AutoRenew, TransferAway, PendingEndUserAction.
var v3 = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		AutoRenew, AutoDelete, Renew, Transfer, Expire, Unexpire, TransferAway, Delete, Restore,
		"Register", "OwnerChange", "ContactUpdate", "RegistrantDetailsUpdate", "DetailsUpdate",
		"NameserverUpdate", "ChangeLocks", "Queue", "Import", "PartnerChange", "DeQueue", "UpdateAuthInfo",
		"Completed", "Failed", "Invalid", "AuthenticationFailed", "Received", "Validated",
		"PendingEndUserAction", "PendingDocumentation", "PendingNicProcessing",
		"PendingPostProcessing", "PendingInternalProcessing",
	} {
		m[key(s)] = s
	}
	m["domaindetailsupdate"] = "DetailsUpdate" // v2 Domain_Details_Update
	return m
}()

func key(s string) string {
	k := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", ""))
	if t := strings.TrimSuffix(k, "domain"); t != "" {
		k = t
	}
	return k
}

// Normalize returns an order type or status in v3 spelling; one it does
// not know comes back unchanged.
func Normalize(s string) string {
	if n, ok := v3[key(s)]; ok {
		return n
	}
	return s
}

// ErrUnusable marks a message errpd cannot turn into a calendar effect
// (no domain, no expiry, facts that contradict each other). It is not
// temporary: the message is recorded as ignored with the reason.
var ErrUnusable = errors.New("unusable Ascio message")

// Interpret turns a queue message, its order and its domain (as read from
// Ascio) into the calendar effect. at is when errpd learnt of it, for the
// reason text. It is a pure function.
func Interpret(m ascio.QueueMessage, o ascio.Order, d ascio.Domain, at time.Time) (Event, error) {
	typ := Normalize(o.Type)
	if typ == "" {
		typ = Normalize(m.OrderType)
	}
	status := Normalize(o.Status)
	if status == "" {
		status = Normalize(m.OrderStatus)
	}
	ev := Event{MessageID: m.ID, OrderType: typ, OrderStatus: status}
	if m.ObjectType != "" && m.ObjectType != "DomainType" {
		ev.Kind, ev.Reason = Ignore, fmt.Sprintf("not a domain (%s)", m.ObjectType)
		return ev, nil
	}
	name, err := aLabel(d.Name)
	if err != nil {
		return ev, fmt.Errorf("%w: domain %q from GetDomain: %v", ErrUnusable, d.Name, err)
	}
	for _, other := range []string{o.DomainName, m.ObjectName} {
		if n, err := aLabel(other); other != "" && (err != nil || n != name) {
			return ev, fmt.Errorf("%w: order %s names %q but GetDomain says %q", ErrUnusable, o.ID, other, d.Name)
		}
	}
	ev.Domain, ev.Handle = name, d.Handle
	ev.Registrant = Registrant{Name: d.Owner.Name(), Email: strings.TrimSpace(d.Owner.Email)}
	if !d.Expires.IsZero() {
		ev.Expiry = d.Expires.UTC().Truncate(time.Second)
	}
	day := at.UTC().Format(time.DateOnly)
	ref := fmt.Sprintf("(order %s, %s %s)", o.ID, typ, status)

	switch status {
	case "Failed", "Invalid", "AuthenticationFailed":
		if typ != AutoRenew {
			ev.Kind, ev.Reason = Ignore, fmt.Sprintf("order did not go through %s", ref)
			return ev, nil
		}
		// The renewal did not happen (payment refused, ...): the domain
		// expires and is owed the post-expiry notices.
		// The order is the one the notices are uploaded against.
		ev.Kind, ev.OrderID = NotRenewed, o.ID
		ev.Reason = fmt.Sprintf("AutoRenew order %s %s on %s", o.ID, status, day)
		if ev.Expiry.IsZero() {
			return ev, fmt.Errorf("%w: GetDomain gave no expiry for %s %s", ErrUnusable, name, ref)
		}
		return ev, nil
	}
	completed := status == "Completed"
	switch {
	case typ == AutoRenew && completed:
		// Ascio renewed the domain at expiry: the cycle for the old expiry
		// closes, the next one waits for next year's AutoRenew order.
		ev.Kind, ev.Mode, ev.Reason = Plan, scheduler.ModeRenew, fmt.Sprintf("auto-renewed on %s %s", day, ref)
	case typ == AutoDelete && completed:
		ev.Kind, ev.Reason = Stop, fmt.Sprintf("deleted at expiry on %s %s", day, ref)
		return ev, nil
	case typ == AutoRenew || typ == AutoDelete:
		// Created 35 days before expiry: this is the order proof is
		// uploaded against.
		ev.Kind, ev.OrderID = Plan, o.ID
		ev.Mode = scheduler.ModeRenew
		if typ == AutoDelete {
			ev.Mode = scheduler.ModeExpire
		}
		ev.Reason = fmt.Sprintf("%s order on %s %s", typ, day, ref)
	case !completed:
		ev.Kind, ev.Reason = Ignore, fmt.Sprintf("order not completed %s", ref)
		return ev, nil
	case typ == TransferAway || typ == Delete:
		what := map[string]string{TransferAway: "transferred away", Delete: "deleted"}[typ]
		ev.Kind, ev.Reason = Stop, fmt.Sprintf("%s on %s %s", what, day, ref)
		return ev, nil
	case typ == Expire:
		ev.Kind, ev.Mode, ev.Reason = Switch, scheduler.ModeExpire, fmt.Sprintf("set to expire on %s %s", day, ref)
	case typ == Unexpire:
		ev.Kind, ev.Mode, ev.Reason = Switch, scheduler.ModeRenew, fmt.Sprintf("set to renew on %s %s", day, ref)
	case typ == Renew:
		ev.Kind, ev.Reason = Plan, fmt.Sprintf("renewed on %s %s", day, ref)
	case typ == Transfer:
		ev.Kind, ev.Reason = Plan, fmt.Sprintf("transferred in on %s %s", day, ref)
	case typ == Restore:
		ev.Kind, ev.Reason = Plan, fmt.Sprintf("restored on %s %s", day, ref)
	default:
		// Any other completed order may have moved the expiry or the
		// owner: Plan with the same expiry only refreshes the registrant.
		ev.Kind, ev.Reason = Plan, fmt.Sprintf("%s completed on %s %s", typ, day, ref)
	}
	if ev.Expiry.IsZero() {
		return ev, fmt.Errorf("%w: GetDomain gave no expiry for %s %s", ErrUnusable, name, ref)
	}
	return ev, nil
}

func aLabel(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty domain name")
	}
	a, err := idna.Lookup.ToASCII(strings.TrimSuffix(strings.TrimSpace(name), "."))
	return strings.ToLower(a), err
}
