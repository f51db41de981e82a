package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

func (a *app) newStepsCmd() *cobra.Command {
	var domain, state string
	var asJSON, asCSV bool
	cmd := &cobra.Command{
		Use:   "steps",
		Short: "List steps with their state, optionally of one domain or in one state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			if domain != "" {
				if domain, err = calendar.DomainName(domain); err != nil {
					return fmt.Errorf("--domain: %w", err)
				}
			}
			if state != "" {
				if _, err := scheduler.ParseState(state); err != nil {
					return fmt.Errorf("--state: %w", err)
				}
			}
			return a.readStore(cmd.Context(), c, func(db *store.DB) error {
				return a.listSteps(db, domain, state, asJSON, asCSV)
			})
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "", "only this domain's steps (all its cycles)")
	cmd.Flags().StringVar(&state, "state", "", "only steps in this state ("+string(scheduler.StateInDoubt)+", "+string(scheduler.StateFailed)+", ...)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per step")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV with a header row (a cell that starts like a spreadsheet formula gets a leading ')")
	cmd.MarkFlagsMutuallyExclusive("json", "csv")
	return cmd
}

// stepsChunk is how many steps one read transaction of `errpd steps` reads.
const stepsChunk = 2000

// listSteps writes the steps (of domain, in state, when set) as they are
// read (a listing), in read transactions of stepsChunk steps, so that a
// listing of millions holds no transaction for minutes while the daemon
// writes.
func (a *app) listSteps(db *store.DB, domain, state string, asJSON, asCSV bool) error {
	l := a.newListing(asJSON, asCSV, []string{"step", "state", "send_at", "deadline", "message_id", "bounce", "why"},
		"STEP\tSTATE\tSEND AT\tDEADLINE\tMESSAGE-ID\tBOUNCE\tWHY")
	var tx *store.Tx
	show := func(s store.Step) error {
		if state != "" && string(s.State) != state {
			return nil
		}
		switch {
		case asJSON:
			return l.json.Encode(s)
		case asCSV:
			return l.csv.Write([]string{s.ID, string(s.State), rfc(s.SendAt), rfc(s.Deadline), s.MessageID, bounceCell(s.Bounce), s.Reason})
		}
		why, err := stepWhy(tx, s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(l.table, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, orDash(rfc(s.SendAt)),
			rfc(s.Deadline), orDash(s.MessageID), orDash(bounceCell(s.Bounce)), why)
		return err
	}
	if domain == "" && activeState(state) {
		return a.listActive(db, l, func(t *store.Tx, s store.Step) error { tx = t; return show(s) })
	}
	prefix := ""
	if domain != "" {
		prefix = domain + "/"
	}
	after := ""
	return l.readChunks(db, func(t *store.Tx) (bool, error) {
		tx = t
		n := 0
		var err error
		after, err = tx.StepsAfter(prefix, after, stepsChunk, func(s store.Step) error {
			n++
			return show(s)
		})
		return n == stepsChunk, err
	})
}

// activeState tells the states the store keeps an index of (the steps
// caught mid-action): listing one reads the index, not every step, which
// matters when an operator looks for the steps in doubt among millions.
func activeState(state string) bool {
	switch scheduler.State(state) {
	case scheduler.StateSending, scheduler.StateUploading, scheduler.StateInDoubt:
		return true
	}
	return false
}

// listActive passes the steps caught mid-action to show, in id order, a
// read transaction per chunk; show filters their state.
func (a *app) listActive(db *store.DB, l *listing, show func(*store.Tx, store.Step) error) error {
	var m store.Mark
	return l.readChunks(db, func(tx *store.Tx) (more bool, err error) {
		m, more, err = tx.ActiveAfter(m, stepsChunk, func(s store.Step) error { return show(tx, s) })
		return more, err
	})
}

// stepWhy is a step's reason, or, for a waiting post-expiry notice of a
// renew-mode domain, the evidence that it did not renew.
func stepWhy(tx *store.Tx, s store.Step) (string, error) {
	if s.Reason != "" || !s.State.Waiting() && s.State != scheduler.StateSent && s.State != scheduler.StateProved {
		return s.Reason, nil
	}
	if s.Notice != scheduler.Reminder3 && s.Notice != scheduler.Suspension {
		return "", nil
	}
	c, _, err := tx.Cycle(s.Cycle)
	if err != nil || c.NotRenewed == nil {
		return "", err
	}
	return "not renewed: " + c.NotRenewed.Event + " at " + rfc(c.NotRenewed.At), nil
}

// bounceCell is a bounce as the steps table shows it: kind, status and time.
func bounceCell(b *store.Bounce) string {
	if b == nil {
		return ""
	}
	return strings.TrimSpace(string(b.Kind)+" "+b.Status) + " " + rfc(b.At)
}
