package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
)

func (a *app) newPlanCmd() *cobra.Command {
	var expiry, mode, now string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "plan --expiry RFC3339 --mode renew|expire",
		Short: "Print the ERRP timeline of one expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy, at, err := a.policyAt(now)
			if err != nil {
				return err
			}
			exp, err := calendar.ParseExpiry(expiry)
			if err != nil {
				return fmt.Errorf("--expiry: %w", err)
			}
			m, err := scheduler.ParseMode(mode)
			if err != nil {
				return fmt.Errorf("--mode: %w", err)
			}
			steps := scheduler.Plan(exp, m, policy, at)
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(planJSON(exp, m, steps))
			}
			w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "expiry %s, mode %s\n", exp.Format(time.RFC3339), m)
			fmt.Fprintln(w, "NOTICE\tOPENS\tDEADLINE\tSEND AT\tSTATE")
			for _, s := range steps {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.Notice, rfc(s.Opens), rfc(s.Deadline), orDash(rfc(s.SendAt)), s.State)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&expiry, "expiry", "", "expiry instant, RFC 3339 (or a date, meaning 00:00 UTC)")
	cmd.Flags().StringVar(&mode, "mode", "", "renew (Ascio auto-renews) or expire (set to expire)")
	cmd.Flags().StringVar(&now, "now", "", "judge the timeline at this RFC 3339 instant instead of now")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.MarkFlagRequired("expiry")
	cmd.MarkFlagRequired("mode")
	return cmd
}

type planOut struct {
	Expiry string     `json:"expiry"`
	Mode   string     `json:"mode"`
	Steps  []stepJSON `json:"steps"`
}

type stepJSON struct {
	Notice   string `json:"notice"`
	Opens    string `json:"opens"`
	Deadline string `json:"deadline"`
	SendAt   string `json:"send_at,omitempty"`
	State    string `json:"state"`
}

func planJSON(exp time.Time, m scheduler.Mode, steps []scheduler.Step) planOut {
	out := planOut{Expiry: rfc(exp), Mode: string(m), Steps: []stepJSON{}}
	for _, s := range steps {
		out.Steps = append(out.Steps, stepJSON{
			Notice: string(s.Notice), Opens: rfc(s.Opens), Deadline: rfc(s.Deadline),
			SendAt: rfc(s.SendAt), State: string(s.State),
		})
	}
	return out
}

// rfc formats an instant as RFC 3339 in UTC; the zero time as "".
func rfc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
