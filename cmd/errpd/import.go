package main

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/store"
)

func (a *app) newImportCmd() *cobra.Command {
	var fullSync, dryRun bool
	var maxDrop float64
	cmd := &cobra.Command{
		Use:   "import CALENDAR.csv",
		Short: "Upsert domains from a CSV calendar and plan their cycles",
		Long: `import reads a CSV calendar with a header row and the columns
  ` + fmt.Sprint(calendar.Columns) + `
(expiry in RFC 3339, or a bare date meaning 00:00 UTC; order_id, brand and
language may be empty) and upserts each domain, planning its ERRP cycle.
Every bad row is reported with its line number and the rest still import.
The exit status is 0 only if no row was rejected; importing the same file
twice changes nothing.

An optional column status says what happened to a domain: empty or active,
expired (did not renew: the post-expiry notices are owed), renewed,
transferred (away) or deleted (its open cycle closes, with the reason),
restored (from redemption: the new expiry is planned).

--full-sync: the file is the whole portfolio; stored domains it does not
list have their open cycles closed. Refused, naming the counts, when more
than --max-drop percent of the domains in the calendar would close.
--dry-run prints what the import would do and writes nothing.`,
		Args: importArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			plan, err := planOptions(c)
			if err != nil {
				return err
			}
			if maxDrop < 0 || maxDrop > 100 {
				return fmt.Errorf("--max-drop %g is not a percentage (0 to 100)", maxDrop)
			}
			opts := calendar.Options{Plan: plan, DryRun: dryRun, FullSync: fullSync, MaxDrop: maxDrop / 100}
			path := a.inputArg(args[0])
			var st calendar.Stats
			err = a.withStore(cmd.Context(), c, func(db *store.DB) error {
				f, size, err := a.openInput(path)
				if err != nil {
					return err
				}
				defer f.Close()
				m := a.meter("importing", size) // a bar here, frames inside the daemon
				r, err := calendar.NewReader(meterReader{f, m}, args[0])
				if err != nil {
					return err
				}
				r.Brands = append([]string{}, slices.Sorted(maps.Keys(c.Brands))...)
				before := stateCounts(db)
				st, err = calendar.ImportWith(r, db, opts, func(e *calendar.RowError) {
					fmt.Fprintln(a.stderr, e)
				})
				if err != nil {
					return err
				}
				m.Finish() // the bar ends before the summary
				printStats(a.stdout, st, dryRun)
				if !dryRun {
					a.printPassed(before, stateCounts(db))
					a.imported(st)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if st.Rejected > 0 {
				return errRejected{fmt.Sprintf("%d of %d rows rejected", st.Rejected, st.Rows)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fullSync, "full-sync", false, "the file is the whole portfolio: close the open cycles of stored domains it does not list")
	cmd.Flags().Float64Var(&maxDrop, "max-drop", 10, "with --full-sync, refuse when more than this percentage of the domains in the calendar would close")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what the import would add, update, close and reject; write nothing")
	return cmd
}

// imported tells the daemon that new steps may be due.
func (a *app) imported(calendar.Stats) {
	if a.daemon != nil && a.daemon.wake != nil {
		a.daemon.wake()
	}
}
