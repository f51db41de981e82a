package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/resolve"
	"github.com/errpd/errpd/store"
)

func (a *app) newResolveCmd() *cobra.Command {
	var resend, markSent, retry bool
	var note string
	cmd := &cobra.Command{
		Use:   "resolve [STEP --resend|--sent|--retry]",
		Short: "List steps that need an operator, or settle one",
		Long: `Without arguments, resolve lists the steps in doubt (a crash caught their
SMTP transaction) and the failed ones. With a step id it settles one:
  --resend  send an in-doubt notice again (same bytes, same Message-ID)
  --sent    record an in-doubt notice as delivered (e.g. the relay's log shows it)
  --retry   try a failed step again: the send if it was never sent, else the upload`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			n := 0
			for _, f := range []bool{resend, markSent, retry} {
				if f {
					n++
				}
			}
			if len(args) == 0 && n > 0 || len(args) == 1 && n != 1 {
				return errors.New("give a step id and exactly one of --resend, --sent, --retry (or nothing, to list)")
			}
			if len(args) == 0 {
				return a.readStore(cmd.Context(), c, a.listUnresolved)
			}
			return a.withStore(cmd.Context(), c, func(db *store.DB) error {
				action := resolve.Retry
				switch {
				case resend:
					action = resolve.Resend
				case markSent:
					action = resolve.MarkSent
				}
				return a.settle(db, args[0], action, note)
			})
		},
	}
	cmd.Flags().BoolVar(&resend, "resend", false, "send the in-doubt notice again")
	cmd.Flags().BoolVar(&markSent, "sent", false, "record the in-doubt notice as delivered")
	cmd.Flags().BoolVar(&retry, "retry", false, "try the failed step again")
	cmd.Flags().StringVar(&note, "note", "", "why, for the audit trail")
	return cmd
}

func (a *app) listUnresolved(db *store.DB) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STEP\tSTATE\tDEADLINE\tWHY")
	err := resolve.Unresolved(db, func(s store.Step) error {
		_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.ID, s.State, rfc(s.Deadline), s.Reason)
		return err
	})
	if err != nil {
		return err
	}
	return w.Flush()
}

func (a *app) settle(db *store.DB, id string, action resolve.Action, note string) error {
	if err := resolve.Settle(db, id, action, note, ""); err != nil {
		return err
	}
	if a.daemon != nil && a.daemon.wake != nil {
		a.daemon.wake()
	}
	fmt.Fprintf(a.stdout, "%s settled\n", id)
	return nil
}
