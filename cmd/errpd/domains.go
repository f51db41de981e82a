package main

import (
	"fmt"

	"github.com/spf13/cobra"

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

// domainsChunk is how many domains one read transaction of `errpd domains`
// reads: a listing of millions takes many short read transactions, so that
// none holds old pages (or bbolt's remap, which waits for readers) while
// the daemon writes.
const domainsChunk = 2000

// listDomains writes the stored domains as they are read (a listing).
func (a *app) listDomains(db *store.DB, asJSON, asCSV bool) error {
	l := a.newListing(asJSON, asCSV, domainsCSV, "DOMAIN\tMODE\tEXPIRY\tNEXT\tSEND AT\tSTATE\tFLAG")
	write := func(row domainRow) error {
		switch {
		case asJSON:
			return l.json.Encode(row)
		case asCSV:
			return l.csv.Write([]string{row.Domain, row.Mode, row.Expiry, row.Brand, row.OrderID, row.Stopped, row.Next, row.NextAt, row.State, row.Flag})
		}
		_, err := fmt.Fprintf(l.table, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.Domain, row.Mode, row.Expiry,
			orDash(row.Next), orDash(row.NextAt), orDash(row.State), orDash(row.Flag))
		return err
	}
	after := ""
	return l.readChunks(db, func(tx *store.Tx) (bool, error) {
		steps := tx.StepCursor()
		n := 0
		var err error
		after, err = tx.DomainsAfter(after, domainsChunk, func(d store.Domain) error {
			n++
			row, err := newDomainRow(steps, d)
			if err != nil {
				return err
			}
			return write(row)
		})
		return n == domainsChunk, err
	})
}

// newDomainRow is a domain's line: its facts and its current cycle's next
// step that is not final. The steps are read in timeline order (their ids
// sort so) up to that one: a cycle whose first notice is still to come
// costs one step read, not all of them.
func newDomainRow(steps *store.StepCursor, d store.Domain) (domainRow, error) {
	row := domainRow{Domain: d.Name, Mode: string(d.Mode), Expiry: rfc(d.Expiry),
		Brand: d.Brand, OrderID: d.OrderID, Stopped: d.Stopped}
	if f := d.ContactFailed(); f != nil {
		row.Flag = f.Reason
	}
	if d.Cycle == "" {
		return row, nil
	}
	s, ok, err := steps.FirstOpen(d.Cycle)
	if ok {
		row.Next, row.NextAt, row.State = string(s.Notice), rfc(s.SendAt), string(s.State)
	}
	return row, err
}
