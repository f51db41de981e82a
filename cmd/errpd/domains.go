package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/store"
)

// domainRow is one line of `errpd domains`.
type domainRow struct {
	Domain  string `json:"domain"`
	Mode    string `json:"mode"`
	Expiry  string `json:"expiry"`
	Brand   string `json:"brand,omitempty"`
	OrderID string `json:"order_id,omitempty"`
	Stopped string `json:"stopped,omitempty"`
	Next    string `json:"next_notice,omitempty"`
	NextAt  string `json:"next_send_at,omitempty"`
	State   string `json:"next_state,omitempty"`
	Flag    string `json:"flag,omitempty"` // registrant e-mail hard-bounced
}

func (a *app) newDomainsCmd() *cobra.Command {
	var asJSON, asCSV bool
	cmd := &cobra.Command{
		Use:   "domains",
		Short: "List the stored domains with their next step",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			return a.readStore(cmd.Context(), c, func(db *store.DB) error { return a.listDomains(db, asJSON, asCSV) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per domain")
	cmd.Flags().BoolVar(&asCSV, "csv", false, "print CSV with a header row (a cell that starts like a spreadsheet formula gets a leading ')")
	cmd.MarkFlagsMutuallyExclusive("json", "csv")
	return cmd
}

// domainsCSV is the header of `errpd domains --csv`, in domainRow's order.
var domainsCSV = []string{"domain", "mode", "expiry", "brand", "order_id", "stopped", "next_notice", "next_send_at", "next_state", "flag"}

func (a *app) listDomains(db *store.DB, asJSON, asCSV bool) error {
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	enc := json.NewEncoder(a.stdout)
	cw := report.NewCSVWriter(a.stdout)
	switch {
	case asCSV:
		cw.Write(domainsCSV)
	case !asJSON:
		fmt.Fprintln(w, "DOMAIN\tMODE\tEXPIRY\tNEXT\tSEND AT\tSTATE\tFLAG")
	}
	err := db.View(func(tx *store.Tx) error {
		return tx.Domains(func(d store.Domain) error {
			row := domainRow{Domain: d.Name, Mode: string(d.Mode), Expiry: rfc(d.Expiry),
				Brand: d.Brand, OrderID: d.OrderID, Stopped: d.Stopped}
			if f := d.ContactFailed(); f != nil {
				row.Flag = f.Reason
			}
			steps, err := tx.Steps(d.Cycle)
			if err != nil {
				return err
			}
			for _, s := range steps {
				if !s.State.Final() {
					row.Next, row.NextAt, row.State = string(s.Notice), rfc(s.SendAt), string(s.State)
					break
				}
			}
			switch {
			case asJSON:
				return enc.Encode(row)
			case asCSV:
				return cw.Write([]string{row.Domain, row.Mode, row.Expiry, row.Brand, row.OrderID, row.Stopped, row.Next, row.NextAt, row.State, row.Flag})
			}
			_, err = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Domain, row.Mode, row.Expiry,
				orDash(row.Next), orDash(row.NextAt), orDash(row.State), orDash(row.Flag))
			return err
		})
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return w.Flush()
}
