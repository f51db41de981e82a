package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/store"
)

func (a *app) newImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import CALENDAR.csv",
		Short: "Upsert domains from a CSV calendar and plan their cycles",
		Long: `import reads a CSV calendar with a header row and the columns
  ` + fmt.Sprint(calendar.Columns) + `
(expiry in RFC 3339, or a bare date meaning 00:00 UTC; order_id, brand and
language may be empty) and upserts each domain, planning its ERRP cycle.
Every bad row is reported with its line number and the rest still import.
The exit status is 0 only if no row was rejected; importing the same file
twice changes nothing.`,
		Args: importArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			opts, err := planOptions(c)
			if err != nil {
				return err
			}
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
				before := stateCounts(db)
				st, err = calendar.Import(r, db, opts, func(e *calendar.RowError) {
					fmt.Fprintln(a.stderr, e)
				})
				if err != nil {
					return err
				}
				m.Finish() // the bar ends before the summary
				printStats(a.stdout, st)
				a.printPassed(before, stateCounts(db))
				a.imported(st)
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
}

// imported tells the daemon that new steps may be due.
func (a *app) imported(calendar.Stats) {
	if a.daemon != nil && a.daemon.wake != nil {
		a.daemon.wake()
	}
}
