package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/net/idna"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/store"
)

// periodFlags are the filter flags report and evidence share.
type periodFlags struct {
	from, to, tld string
	domains       []string
}

func (p *periodFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.from, "from", "", "first `DATE` of the period (YYYY-MM-DD, UTC, or RFC 3339); notices whose deadline is on or after it")
	cmd.Flags().StringVar(&p.to, "to", "", "`DATE` the period ends before (exclusive): --from 2025-01-01 --to 2025-04-01 is the first quarter")
	cmd.Flags().StringArrayVar(&p.domains, "domain", nil, "only this `DOMAIN` (repeatable; U-labels accepted)")
}

// filter turns the flags into a report filter.
func (p *periodFlags) filter() (report.Filter, error) {
	var f report.Filter
	var err error
	if f.From, err = parseDate(p.from); err != nil {
		return f, fmt.Errorf("--from: %w", err)
	}
	if f.To, err = parseDate(p.to); err != nil {
		return f, fmt.Errorf("--to: %w", err)
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, fmt.Errorf("--from %s is not before --to %s", p.from, p.to)
	}
	for _, d := range p.domains {
		name, err := calendar.DomainName(d)
		if err != nil {
			return f, fmt.Errorf("--domain: %w", err)
		}
		if !slices.Contains(f.Domains, name) {
			f.Domains = append(f.Domains, name)
		}
	}
	if p.tld != "" {
		t, err := idna.Lookup.ToASCII(strings.TrimPrefix(strings.TrimSpace(p.tld), "."))
		if err != nil || t == "" || strings.Contains(t, ".") {
			return f, fmt.Errorf("--tld %q is not a top-level domain", p.tld)
		}
		f.TLD = strings.ToLower(t)
	}
	return f, nil
}

func parseDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", s)
	}
	return t.UTC(), nil
}

// writeFile writes through fn into a temporary file renamed to path on
// success, so that a failed export leaves no half file under the real name.
func writeFile(path string, perm os.FileMode, fn func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		pe.Path = path // the operator named path, not our temporary file
	}
	if err != nil {
		return err
	}
	err = fn(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (a *app) newReportCmd() *cobra.Command {
	var p periodFlags
	var format, output string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Report every ERRP notice due in a period: sent in its window, proved, or why not",
		Long: `report writes one row per notice whose deadline (the end of its window,
Ascio's own send) falls in [--from, --to), sent or not, and a summary:
notices due, sent in window, proved before Ascio's deadline, missed, failed,
in doubt, and the compliance rate: (sent in window and proved before the
deadline + covered by Ascio's own send) / owed, counting only notices whose
deadline is before --to or now, whichever is earlier (later ones are listed
as pending, not counted; skipped ones are not owed).
csv and jsonl stream rows as they are read; jsonl ends with {"summary": ...};
html is one self-contained printable page with the summary, a per-day chart
and the table. The summary of a csv report goes to stderr (or to stdout when
--output is given). Works while errpd serve runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			fm, err := report.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			f, err := p.filter()
			if err != nil {
				return err
			}
			if output != "" {
				a.outputArg(output)
			}
			return a.readStore(cmd.Context(), c, func(db *store.DB) error {
				var sum report.Summary
				write := func(w io.Writer) (err error) {
					sum, err = report.Write(w, db, f, fm, time.Now())
					return err
				}
				summaryTo := a.stderr
				if output == "" {
					err = write(a.stdout)
				} else {
					err = a.writeOutput(output, 0o640, func(w io.Writer) error {
						m := a.meter(a.logger(c), "report", -1) // its size is known at the end
						if err := write(meterWriter{w, m}); err != nil {
							return err
						}
						return m.Finish()
					})
					summaryTo = a.stdout
				}
				if err != nil {
					return fmt.Errorf("report: %w", err)
				}
				if fm == report.CSV || output != "" {
					printSummary(summaryTo, sum, output)
				}
				return nil
			})
		},
	}
	p.add(cmd)
	cmd.Flags().StringVar(&p.tld, "tld", "", "only domains under this `TLD` (e.g. com)")
	cmd.Flags().StringVar(&format, "format", "csv", "csv, jsonl or html")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to `FILE` instead of stdout")
	return cmd
}

func printSummary(w io.Writer, s report.Summary, output string) {
	rate := "n/a (nothing owed)"
	if r, ok := s.Rate(); ok {
		rate = fmt.Sprintf("%.1f%%", r*100)
	}
	if output != "" {
		fmt.Fprintf(w, "report written to %s\n", output)
	}
	fmt.Fprintf(w, "notices due %d (pending %d, not counted; skipped %d; owed %d): sent in window and proved in time %d + covered by Ascio's own send %d (unknown %d); sent in window %d, proved in time %d, missed %d, failed %d, in doubt %d; compliance %s\n",
		s.Due, s.Pending, s.Skipped, s.Owed, s.SentAndProved, s.CoveredByAscio, s.CoverageUnknown, s.SentInWindow, s.ProvedInTime, s.Missed, s.Failed, s.InDoubt, rate)
}
