package main

import (
	"encoding/csv"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
)

// exampleRow is one domain of the example calendar: its expiry is chosen
// so that the window of notice opened `opened` before now (negative: it
// opens that long after now).
type exampleRow struct {
	domain, mode, name, email, language string
	notice                              scheduler.Notice
	opened                              time.Duration
}

// exampleRows show errpd at work on a fresh store: three notices due at
// once (one of them for a domain expired two days ago), three already past
// their deadline (missed), one opening tomorrow, and a ccTLD, out of scope
// by default.
var exampleRows = []exampleRow{
	{"example.com", "renew", "Ann Example", "ann@example.org", "en", scheduler.Reminder1, time.Hour},
	{"bücher.example", "expire", "Bea Beispiel", "bea@example.org", "de", scheduler.Reminder2, time.Hour},
	{"example.net", "expire", "Cy Example", "cy@example.org", "en", scheduler.Reminder3, 48 * time.Hour},
	{"example.org", "renew", "Eve Exemple", "eve@example.org", "fr", scheduler.Reminder1, -24 * time.Hour},
	{"beispiel.de", "renew", "Fritz Beispiel", "fritz@example.org", "de", scheduler.Reminder1, time.Hour},
}

func (a *app) newExampleCalendarCmd() *cobra.Command {
	var now string
	cmd := &cobra.Command{
		Use:   "example-calendar > cal.csv",
		Short: "Print an example CSV calendar whose notices fall due now",
		Long: `example-calendar prints a calendar for trying errpd out: its expiries are
relative to now (and to the config's [policy]), so that on a fresh store
three notices are due at once (one for a domain that expired two days
ago), three are already past their deadline (import reports them as
missed), one opens in a day, and one domain is a ccTLD, which ERRP does
not cover (out of scope unless [scope] include names it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			policy, at, err := a.policyAt(now)
			if err != nil {
				return err
			}
			return writeExampleCalendar(a, policy, at)
		},
	}
	cmd.Flags().StringVar(&now, "now", "", "write the calendar as of this RFC 3339 instant instead of now")
	return cmd
}

func writeExampleCalendar(a *app, p scheduler.Policy, now time.Time) error {
	w := csv.NewWriter(a.stdout)
	w.Write(calendar.Columns)
	for _, r := range exampleRows {
		i := slices.IndexFunc(p.Windows, func(w scheduler.Window) bool { return w.Notice == r.notice })
		if i < 0 {
			return fmt.Errorf("policy has no window for %s", r.notice)
		}
		// The window opens at expiry + OpensDays.
		expiry := now.UTC().Add(-r.opened - time.Duration(p.Windows[i].OpensDays)*scheduler.Day).Truncate(time.Second)
		rec := map[string]string{
			"domain": r.domain, "expiry": expiry.Format(time.RFC3339), "mode": r.mode,
			"registrant_name": r.name, "registrant_email": r.email, "language": r.language,
		}
		row := make([]string, len(calendar.Columns))
		for j, col := range calendar.Columns {
			row[j] = rec[col]
		}
		w.Write(row)
	}
	w.Flush()
	return w.Error()
}

// policyAt is the config's policy and the instant to judge it at: --now
// when given (for tests and what-ifs), else the clock.
func (a *app) policyAt(now string) (scheduler.Policy, time.Time, error) {
	c, err := a.loadConfig()
	if err != nil {
		return scheduler.Policy{}, time.Time{}, err
	}
	policy, err := c.Policy.Scheduler()
	if err != nil {
		return policy, time.Time{}, err
	}
	if now == "" {
		return policy, time.Now(), nil
	}
	at, err := time.Parse(time.RFC3339, now)
	if err != nil {
		return policy, at, fmt.Errorf("--now: %w", err)
	}
	return policy, at, nil
}
