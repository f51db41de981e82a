// Package resolve carries out an operator's decision on a step that waits
// for one (in doubt or failed): resend, mark sent, retry. The CLI's
// `errpd resolve` and the console both call it, so that a decision means
// the same, and is audited the same, wherever it is taken.
package resolve

import (
	"fmt"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Action is an operator's decision on a step.
type Action string

const (
	// Resend sends an in-doubt notice again (same bytes, same Message-ID).
	Resend Action = "resend"
	// MarkSent records an in-doubt notice as delivered.
	MarkSent Action = "sent"
	// Retry tries a failed step again: the send if it was never sent, else
	// the upload.
	Retry Action = "retry"
)

// ParseAction reads an action's name.
func ParseAction(s string) (Action, error) {
	switch a := Action(s); a {
	case Resend, MarkSent, Retry:
		return a, nil
	}
	return "", fmt.Errorf("action %q is not resend, sent or retry", s)
}

// Settle carries out a on step id in one transaction, through the store's
// transition function. note (why) and by (the console user who decided;
// empty from the command line, whose user is the shell's) go into the
// audit record's detail.
func Settle(db *store.DB, id string, a Action, note, by string) error {
	detail := func(what string) string {
		if by != "" {
			what += " (console user " + by + ")"
		}
		if note != "" {
			return what + ": " + note
		}
		return what
	}
	return db.Update(func(tx *store.Tx) error {
		s, ok, err := tx.Step(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no step %s (see `errpd resolve` for the list)", id)
		}
		now := tx.Now()
		switch {
		case a == Resend:
			if !now.Before(s.Deadline) {
				return deadlinePassed(id, s.Deadline)
			}
			_, err = tx.Transition(id, []scheduler.State{scheduler.StateInDoubt}, scheduler.StateDue, detail("resend ordered by operator"), func(s *store.Step) {
				s.SendAt, s.Reason = now, "resend ordered by operator"
			})
		case a == MarkSent:
			_, err = tx.Transition(id, []scheduler.State{scheduler.StateInDoubt}, scheduler.StateSent, detail("marked delivered by operator"), func(s *store.Step) {
				s.SentAt, s.NextUpload, s.Reason = now, now, "marked delivered by operator"
			})
		case a != Retry:
			_, err = ParseAction(string(a))
		case s.State == scheduler.StateFailed && !s.SentAt.IsZero():
			_, err = tx.Transition(id, []scheduler.State{scheduler.StateFailed}, scheduler.StateSent, detail("upload retry ordered by operator"), func(s *store.Step) {
				s.NextUpload, s.Reason = now, ""
			})
		default:
			if !now.Before(s.Deadline) {
				return deadlinePassed(id, s.Deadline)
			}
			// The operator orders a new send: rendered afresh for the
			// domain's present registrant, even if an earlier one may have
			// gone (the operator has looked).
			_, err = tx.Transition(id, []scheduler.State{scheduler.StateFailed}, scheduler.StateDue, detail("retry ordered by operator"), func(s *store.Step) {
				s.SendAt, s.Reason, s.MayHaveGone = now, "", false
			})
		}
		return err
	})
}

func deadlinePassed(id string, deadline time.Time) error {
	return fmt.Errorf("step %s: its deadline %s has passed; Ascio sends its own copy", id, deadline.UTC().Format(time.RFC3339))
}

// Actions are the decisions open on a step in its present state, for a
// page to offer: none for a step that needs no operator.
func Actions(s store.Step) []Action {
	switch s.State {
	case scheduler.StateInDoubt:
		return []Action{Resend, MarkSent}
	case scheduler.StateFailed:
		return []Action{Retry}
	}
	return nil
}

// chunk is how many steps one read transaction of Unresolved reads.
const chunk = 2000

// Unresolved calls fn for every step in doubt, then every failed one: the
// steps `errpd resolve` lists. Both are read in chunks of short read
// transactions, so that a large store is never held in one long read: the
// steps in doubt from the index of steps caught mid-action (they wait for
// an operator and may pile up), the failed ones, looked for only when the
// store counts some, from the steps.
func Unresolved(db *store.DB, fn func(store.Step) error) error {
	var failed uint64
	err := db.View(func(tx *store.Tx) error {
		failed = tx.Counts()[scheduler.StateFailed]
		return nil
	})
	for m, more := (store.Mark{}), true; err == nil && more; {
		err = db.View(func(tx *store.Tx) (err error) {
			m, more, err = tx.ActiveAfter(m, chunk, func(s store.Step) error {
				if s.State == scheduler.StateInDoubt {
					return fn(s)
				}
				return nil
			})
			return err
		})
	}
	for after := ""; err == nil && failed > 0; {
		n := 0
		err = db.View(func(tx *store.Tx) (err error) {
			after, err = tx.StepsAfter("", after, chunk, func(s store.Step) error {
				n++
				if s.State == scheduler.StateFailed {
					failed--
					return fn(s)
				}
				return nil
			})
			return err
		})
		if n < chunk {
			break
		}
	}
	return err
}
