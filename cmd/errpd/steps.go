package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

func (a *app) newStepsCmd() *cobra.Command {
	var domain, state string
	var asJSON bool
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
				w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				enc := json.NewEncoder(a.stdout)
				if !asJSON {
					fmt.Fprintln(w, "STEP\tSTATE\tSEND AT\tDEADLINE\tMESSAGE-ID\tBOUNCE\tWHY")
				}
				show := func(s store.Step) error {
					if state != "" && string(s.State) != state {
						return nil
					}
					if asJSON {
						return enc.Encode(s)
					}
					_, err := fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.State, orDash(rfc(s.SendAt)),
						rfc(s.Deadline), orDash(s.MessageID), orDash(bounceCell(s.Bounce)), s.Reason)
					return err
				}
				err := db.View(func(tx *store.Tx) error {
					if domain == "" {
						return tx.AllSteps(show)
					}
					return tx.DomainSteps(domain, show)
				})
				if err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "", "only this domain's steps (all its cycles)")
	cmd.Flags().StringVar(&state, "state", "", "only steps in this state ("+string(scheduler.StateInDoubt)+", "+string(scheduler.StateFailed)+", ...)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per step")
	return cmd
}

// bounceCell is a bounce as the steps table shows it: kind, status and time.
func bounceCell(b *store.Bounce) string {
	if b == nil {
		return ""
	}
	return strings.TrimSpace(string(b.Kind)+" "+b.Status) + " " + rfc(b.At)
}
