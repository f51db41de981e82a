package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// importArgs asks for the calendar file by name when it is missing.
func importArgs(_ *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return fmt.Errorf("import needs the calendar file: errpd import CALENDAR.csv (errpd example-calendar > cal.csv writes one to try)")
	case len(args) > 1:
		return fmt.Errorf("import takes one calendar file, got %d: %s", len(args), strings.Join(args, " "))
	}
	return nil
}

// stateCounts reads how many steps are in each state: before and after an
// import, their difference tells which notices it found already missed.
func stateCounts(db *store.DB) map[scheduler.State]uint64 {
	var n map[scheduler.State]uint64
	db.View(func(tx *store.Tx) error {
		n = tx.Counts()
		return nil
	})
	return n
}

// printStats says what the import did in plain words, leaving out what did
// not happen: "40 rows read: 40 new domains, each with its notices planned".
func printStats(w io.Writer, st calendar.Stats, dry bool) {
	if dry {
		fmt.Fprint(w, "dry run, nothing written: ")
	}
	var parts []string
	add := func(n int, one, many string) {
		if n == 1 {
			parts = append(parts, "1 "+one)
		} else if n > 1 {
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(st.Added, "new domain, its notices planned", "new domains, each with its notices planned")
	add(st.NewCycles, "domain with a new expiry, its next notices planned", "domains with a new expiry, their next notices planned")
	add(st.Updated, "domain updated (same expiry)", "domains updated (same expiry)")
	add(st.Unchanged, "domain unchanged", "domains unchanged")
	add(st.Closed, "open cycle closed", "open cycles closed")
	add(st.Rejected, "row rejected", "rows rejected")
	if len(parts) == 0 {
		parts = []string{"nothing to import"}
	}
	rows := "rows"
	if st.Rows == 1 {
		rows = "row"
	}
	fmt.Fprintf(w, "%d %s read: %s\n", st.Rows, rows, strings.Join(parts, ", "))
}

// printPassed tells the notices the import found that errpd will not send:
// past their deadline already (Ascio sends its own copy), or not owed.
func (a *app) printPassed(before, after map[scheduler.State]uint64) {
	see := func(state scheduler.State) string {
		cmd := "errpd steps --state " + string(state)
		if a.configPath != "" {
			cmd += " --config " + a.configPath
		}
		return cmd
	}
	grown := func(s scheduler.State) uint64 {
		if after[s] > before[s] {
			return after[s] - before[s]
		}
		return 0
	}
	if n := grown(scheduler.StateMissed); n > 0 {
		fmt.Fprintf(a.stdout, "%d %s already past their deadline: errpd will not send them (Ascio sends its own copy); see them with `%s`\n",
			n, plural(int(n), "notice was", "notices were"), see(scheduler.StateMissed))
	}
	if n := grown(scheduler.StateSkipped); n > 0 {
		fmt.Fprintf(a.stdout, "%d %s skipped: out of scope (ccTLDs, [scope]) or no longer owed (a new expiry, a change of mode); see them with `%s`\n",
			n, plural(int(n), "notice", "notices"), see(scheduler.StateSkipped))
	}
}
