package store

import (
	"fmt"

	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/scheduler"
)

// Edge is one move a step's state may make, and what makes it.
type Edge struct {
	From scheduler.State // "" for a step not stored yet
	To   scheduler.State
	By   string
}

// New is the From of a step being stored for the first time.
const New scheduler.State = ""

// edges is the state machine: the one place that says which (from, to)
// pairs exist. putStep, through which every write of a step goes, refuses
// any other; docs/state_machine.md is generated from it and a test holds
// the two together. An edge to the same state rewrites other fields (a
// new send time, an order id) without an audit record.
var edges = []Edge{
	{New, scheduler.StatePlanned, "planned before its window opens"},
	{New, scheduler.StateDue, "planned inside its window (reminder3 of a renew-mode cycle: on evidence of non-renewal)"},
	{New, scheduler.StateMissed, "planned after its deadline"},
	{New, scheduler.StateSkipped, "planned out of scope"},

	{scheduler.StatePlanned, scheduler.StatePlanned, "planned again (new facts, new policy)"},
	{scheduler.StatePlanned, scheduler.StateDue, "window opens (sweep, or planned again)"},
	{scheduler.StatePlanned, scheduler.StateSending, "claimed by a worker before the sweep saw its window open"},
	{scheduler.StatePlanned, scheduler.StateSkipped, "cycle closed (renewed, deleted, transferred, not in a full sync), mode switched, out of scope"},
	{scheduler.StatePlanned, scheduler.StateMissed, "deadline passed"},
	{scheduler.StatePlanned, scheduler.StateInDoubt, "deadline passed while an earlier send may have been delivered"},
	{scheduler.StatePlanned, scheduler.StateFailed, "could not be prepared dispatch.max_prepare_attempts times"},

	{scheduler.StateDue, scheduler.StateDue, "planned again, its retry time kept, or a failed preparation retried with backoff"},
	{scheduler.StateDue, scheduler.StatePlanned, "planned again with its window later (new policy)"},
	{scheduler.StateDue, scheduler.StateSending, "claimed by a worker: bytes and Message-ID stored"},
	{scheduler.StateDue, scheduler.StateSkipped, "cycle closed, mode switched, out of scope"},
	{scheduler.StateDue, scheduler.StateMissed, "deadline passed"},
	{scheduler.StateDue, scheduler.StateInDoubt, "deadline passed while an earlier send may have been delivered"},
	{scheduler.StateDue, scheduler.StateFailed, "could not be prepared dispatch.max_prepare_attempts times"},

	{scheduler.StateSending, scheduler.StateSent, "250"},
	{scheduler.StateSending, scheduler.StateDue, "4xx or network error before the final dot (retry with backoff); in doubt or crash, resent by policy"},
	{scheduler.StateSending, scheduler.StateFailed, "5xx"},
	{scheduler.StateSending, scheduler.StateInDoubt, "reply to the final dot lost; crash found at start-up"},

	{scheduler.StateInDoubt, scheduler.StateDue, "operator (errpd resolve --resend)"},
	{scheduler.StateInDoubt, scheduler.StateSent, "operator (errpd resolve --sent)"},

	{scheduler.StateSent, scheduler.StateSent, "order id known, or upload put off"},
	{scheduler.StateSent, scheduler.StateUploading, "the uploader takes it"},

	{scheduler.StateUploading, scheduler.StateProved, "200, 201, 413"},
	{scheduler.StateUploading, scheduler.StateSent, "554, 401, 5xx, timeout (retry with backoff); crash found at start-up"},
	{scheduler.StateUploading, scheduler.StateFailed, "405, other"},

	{scheduler.StateFailed, scheduler.StateDue, "operator (errpd resolve --retry), the send had failed"},
	{scheduler.StateFailed, scheduler.StateSent, "operator (errpd resolve --retry), the upload had failed"},

	{scheduler.StateSkipped, scheduler.StatePlanned, "what skipped it undone (mode switched back, expiry back, restored, now in scope)"},
	{scheduler.StateSkipped, scheduler.StateDue, "what skipped it undone, inside its window"},
	{scheduler.StateSkipped, scheduler.StateMissed, "what skipped it undone, after its deadline"},
	{scheduler.StateSkipped, scheduler.StateSkipped, "what skipped it undone, but out of scope"},
	{scheduler.StateSkipped, scheduler.StateInDoubt, "undone after its deadline, an earlier send may have been delivered"},
}

// allowed indexes edges.
var allowed = func() map[[2]scheduler.State]bool {
	m := make(map[[2]scheduler.State]bool, len(edges))
	for _, e := range edges {
		m[[2]scheduler.State{e.From, e.To}] = true
	}
	return m
}()

// Edges returns the state machine's edges, in the order of a step's life.
func Edges() []Edge { return append([]Edge(nil), edges...) }

// Allowed reports whether a step may move from one state to another.
func Allowed(from, to scheduler.State) bool { return allowed[[2]scheduler.State{from, to}] }

// IllegalTransitionError is a write of a step's state along no edge of the
// state machine: a bug, refused before it reaches the file.
type IllegalTransitionError struct {
	Step     string
	From, To scheduler.State
}

func (e *IllegalTransitionError) Error() string {
	from := string(e.From)
	if e.From == New {
		from = "(new)"
	}
	return fmt.Sprintf("step %s: %s -> %s is not a transition of the state machine (docs/state_machine.md)", e.Step, from, e.To)
}

// FailureKind: the same write would be refused again.
func (e *IllegalTransitionError) FailureKind() failure.Kind { return failure.Permanent }

// checkEdge refuses a move along no edge.
func checkEdge(id string, from, to scheduler.State) error {
	if !Allowed(from, to) {
		return &IllegalTransitionError{Step: id, From: from, To: to}
	}
	return nil
}
