// Package scheduler turns a domain's expiry into its ERRP timeline: the
// notices a cycle owes, the window in which each may be sent and the deadline
// at which Ascio would send its own copy. Plan is a pure function: it takes
// the current time as an argument and holds no clock.
package scheduler

import (
	"fmt"
	"strings"
	"time"
)

// Mode says what Ascio will do with the domain at expiry.
type Mode string

const (
	// ModeRenew is a domain Ascio will auto-renew (an Autorenew_Domain
	// order in API v2, AutoRenew in v3).
	ModeRenew Mode = "renew"
	// ModeExpire is a domain set to expire (Autodelete_Domain, AutoDelete).
	ModeExpire Mode = "expire"
)

// ParseMode reads a mode as written in a calendar or on the command line.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case ModeRenew, ModeExpire:
		return Mode(s), nil
	}
	return "", fmt.Errorf("mode %q is neither %q nor %q", s, ModeRenew, ModeExpire)
}

// Notice names one mail of the ERRP timeline.
type Notice string

const (
	Reminder1  Notice = "reminder1"  // about a month before expiry
	Reminder2  Notice = "reminder2"  // about a week before expiry
	Reminder3  Notice = "reminder3"  // within five days after expiry (expire mode)
	Suspension Notice = "suspension" // the domain is put on hold (expire mode)
)

// ParseNotice reads a notice name.
func ParseNotice(s string) (Notice, error) {
	switch Notice(s) {
	case Reminder1, Reminder2, Reminder3, Suspension:
		return Notice(s), nil
	}
	return "", fmt.Errorf("notice %q is not one of reminder1, reminder2, reminder3, suspension", s)
}

// State is where a step stands in its life. The strings are stored as they
// are, so that a dump of the store reads plainly. docs/state_machine.md draws
// the transitions.
type State string

const (
	StatePlanned   State = "planned"   // window not open yet
	StateDue       State = "due"       // window open, not sent yet
	StateSending   State = "sending"   // intent recorded, SMTP transaction under way
	StateSent      State = "sent"      // relay accepted it; proof not uploaded yet
	StateUploading State = "uploading" // proof upload under way
	StateProved    State = "proved"    // Ascio accepted the proof
	StateSkipped   State = "skipped"   // no longer owed (renewed, deleted, transferred, out of scope)
	StateMissed    State = "missed"    // window closed before it was sent
	StateFailed    State = "failed"    // permanent error, with the reply
	StateInDoubt   State = "in_doubt"  // found in sending after a crash: may or may not have gone out
)

// States lists every state, in the order of a step's life.
var States = []State{StatePlanned, StateDue, StateSending, StateSent, StateUploading, StateProved,
	StateSkipped, StateMissed, StateFailed, StateInDoubt}

// ParseState reads a state's name, with an error listing the valid ones.
func ParseState(s string) (State, error) {
	for _, st := range States {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("unknown state %q (want one of %s)", s, JoinStates(States, ", "))
}

// JoinStates names states for a message: JoinStates(from, " or ").
func JoinStates(states []State, sep string) string {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = string(st)
	}
	return strings.Join(names, sep)
}

// Waiting reports whether a step in this state still waits to be sent.
func (s State) Waiting() bool { return s == StatePlanned || s == StateDue }

// Final reports whether nothing more will happen to a step in this state
// without an operator.
func (s State) Final() bool {
	switch s {
	case StateProved, StateSkipped, StateMissed, StateFailed:
		return true
	}
	return false
}

// Day is the unit of the policy's offsets: 24 hours counted from the exact
// expiry instant, never a calendar day, so that the timeline does not depend
// on any time zone.
const Day = 24 * time.Hour

// Window is one notice's place in the timeline, as offsets in whole days
// from the expiry instant.
type Window struct {
	Notice       Notice
	Modes        []Mode
	OpensDays    int // window opens at expiry + OpensDays
	DeadlineDays int // Ascio sends its own copy at expiry + DeadlineDays
}

// Applies reports whether the window belongs to a cycle of the given mode.
func (w Window) Applies(m Mode) bool {
	for _, x := range w.Modes {
		if x == m {
			return true
		}
	}
	return false
}

// Policy is the timeline as data.
type Policy struct {
	Windows []Window
	// SendHour, when in 0..23, moves each send time to the first SendHour:00
	// in Zone inside the window. -1 sends at the window's opening.
	SendHour int
	Zone     *time.Location
}

// DefaultPolicy is ICANN's ERRP windows closed by Ascio's fallback sends.
func DefaultPolicy() Policy {
	both := []Mode{ModeRenew, ModeExpire}
	expire := []Mode{ModeExpire}
	return Policy{
		Windows: []Window{
			{Notice: Reminder1, Modes: both, OpensDays: -35, DeadlineDays: -26},
			{Notice: Reminder2, Modes: both, OpensDays: -7, DeadlineDays: -4},
			{Notice: Reminder3, Modes: expire, OpensDays: 0, DeadlineDays: 5},
			{Notice: Suspension, Modes: expire, OpensDays: 8, DeadlineDays: 9},
		},
		SendHour: -1,
		Zone:     time.UTC,
	}
}

// Validate reports a policy that could not produce a sane timeline.
func (p Policy) Validate() error {
	seen := map[Notice]bool{}
	for _, w := range p.Windows {
		if _, err := ParseNotice(string(w.Notice)); err != nil {
			return err
		}
		if seen[w.Notice] {
			return fmt.Errorf("notice %s has two windows", w.Notice)
		}
		seen[w.Notice] = true
		if w.DeadlineDays <= w.OpensDays {
			return fmt.Errorf("notice %s: deadline day %d is not after opening day %d", w.Notice, w.DeadlineDays, w.OpensDays)
		}
		if len(w.Modes) == 0 {
			return fmt.Errorf("notice %s: no mode", w.Notice)
		}
	}
	if p.SendHour < -1 || p.SendHour > 23 {
		return fmt.Errorf("send hour %d is not in 0..23 (or -1 for none)", p.SendHour)
	}
	return nil
}

// Step is one notice of a cycle as the planner sees it.
type Step struct {
	Notice   Notice
	Opens    time.Time // first instant the notice may be sent
	Deadline time.Time // Ascio's own send; the notice must be sent and proved before it
	SendAt   time.Time // when to send; zero for a missed step
	State    State     // StatePlanned, StateDue or StateMissed
}

// Plan returns the steps a cycle owes for a domain that expires at expiry in
// the given mode, in timeline order, judged at now. A step whose window has
// not opened is planned; one whose window is open is due; one whose deadline
// has passed is missed and is never to be sent. The window is [Opens,
// Deadline): at the deadline instant Ascio sends its own copy.
func Plan(expiry time.Time, mode Mode, p Policy, now time.Time) []Step {
	expiry = expiry.UTC()
	now = now.UTC()
	var steps []Step
	for _, w := range p.Windows {
		if !w.Applies(mode) {
			continue
		}
		s := Step{
			Notice:   w.Notice,
			Opens:    expiry.Add(time.Duration(w.OpensDays) * Day),
			Deadline: expiry.Add(time.Duration(w.DeadlineDays) * Day),
		}
		switch {
		case !now.Before(s.Deadline):
			s.State = StateMissed
		case now.Before(s.Opens):
			s.State = StatePlanned
			s.SendAt = p.sendTime(s.Opens, s.Deadline)
		default:
			s.State = StateDue
			s.SendAt = p.sendTime(now, s.Deadline)
		}
		steps = append(steps, s)
	}
	return steps
}

// sendTime is the first moment at or after from, and before deadline, at
// which the policy lets a notice go out. Without a send hour that is from
// itself. With one, it is the first SendHour:00 local time in Zone; if no such
// time falls before the deadline, from is kept, because a notice sent at an
// odd hour beats a missed one.
func (p Policy) sendTime(from, deadline time.Time) time.Time {
	if p.SendHour < 0 {
		return from
	}
	zone := p.Zone
	if zone == nil {
		zone = time.UTC
	}
	local := from.In(zone)
	// Step by calendar day, not by 24 hours, so that a DST change neither
	// skips nor repeats a day; time.Date normalises an hour that a spring
	// change removes to the same instant every time.
	for d := 0; d < 400; d++ {
		c := time.Date(local.Year(), local.Month(), local.Day()+d, p.SendHour, 0, 0, 0, zone)
		if c.Before(from) {
			continue
		}
		if !c.Before(deadline) {
			break
		}
		return c.UTC()
	}
	return from
}
