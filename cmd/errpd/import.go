package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/admin"
	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/preview"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

func (a *app) newImportCmd() *cobra.Command {
	var fullSync, dryRun, bulk bool
	var maxDrop float64
	cmd := &cobra.Command{
		Use:   "import CALENDAR.csv",
		Short: "Upsert domains from a CSV calendar and plan their cycles",
		Long: `import reads a CSV calendar with a header row and the columns
  ` + fmt.Sprint(calendar.Columns) + `
(expiry in RFC 3339, or a bare date meaning 00:00 UTC; order_id, brand and
language may be empty) and upserts each domain, planning its ERRP cycle.
Every bad row is reported with its line number and the rest still import.
A row is bad when a field is not text (NUL, a control character, invalid
UTF-8), is too long (name 200 characters, e-mail 254, order id 64, domain
253), or when its notices cannot be rendered for its brand and language;
a line is at most 64 KiB and a quoted field closes on its own line.
The exit status is 0 only if no row was rejected; importing the same file
twice changes nothing.

An optional column status says what happened to a domain: empty or active,
expired (did not renew: the post-expiry notices are owed), renewed,
transferred (away) or deleted (its open cycle closes, with the reason),
restored (from redemption: the new expiry is planned).

--full-sync: the file is the whole portfolio; stored domains it does not
list have their open cycles closed. Refused, naming the counts, when more
than --max-drop percent of the domains in the calendar would close.
--dry-run prints what the import would do and writes nothing.

--bulk, for a first import of many domains (onboarding a portfolio): the
new domains are planned at once and the store is written again in key
order with them, as errpd compact writes it, some ten times faster than
one by one (1,000,000 new domains: ` + bulkTook1M + `). The rows that name
stored domains are imported after, as without it. It is an offline tool:
it refuses while the daemon holds the store. It holds the new domains'
records in memory (1.8 GiB at the peak for 1,000,000), and needs room for
a copy of the store beside it. Killed while it plans or writes, it leaves
the store as it was; killed after, while it imports the rows of stored
domains, run it again.`,
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
			if bulk {
				if dryRun || fullSync {
					return fmt.Errorf("%w: a dry run or a full sync imports without it", calendar.ErrBulkOptions)
				}
				st, err := a.bulkImport(c, plan, path, args[0])
				if err == nil && st.Rejected > 0 {
					err = errRejected{fmt.Sprintf("%d of %d rows rejected", st.Rejected, st.Rows)}
				}
				return err
			}
			// Through a daemon, the bar follows the bytes streamed to it,
			// which it reads as it imports.
			a.forwardOpts = append(a.forwardOpts, admin.WithProgress(func(size int64) io.Writer {
				if bar := a.bar("importing", size); bar != nil {
					return bar
				}
				return nil
			}))
			var st calendar.Stats
			err = a.withStore(cmd.Context(), c, func(db *store.DB) error {
				f, size, err := a.openInput(path)
				if err != nil {
					return err
				}
				defer f.Close()
				// A bar here; inside the daemon none (no frames): the client
				// draws its own from the bytes it streams.
				m := a.localMeter(a.logger(c), "importing", size)
				r, err := calendar.NewReader(meterReader{f, m}, args[0])
				if err != nil {
					return err
				}
				r.Brands = append([]string{}, slices.Sorted(maps.Keys(c.Brands))...)
				before := stateCounts(db)
				var set *templates.Set // from c.Templates
				if a.daemon != nil && a.daemon.templates != nil {
					set = a.daemon.templates()
				}
				check, err := renderCheck(c, set, time.Now)
				if err != nil {
					return err
				}
				r.Check = unlessStored(db, check)
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
				if st.Added >= bulkHint {
					fmt.Fprintf(a.stdout, "hint: %d new domains; errpd import --bulk (with the daemon stopped) plans new domains at once: 1,000,000 in %s\n",
						st.Added, bulkTook1M)
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
	cmd.Flags().BoolVar(&bulk, "bulk", false, "offline, for many new domains: plan them at once and write the store again in key order (stop the daemon first)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what the import would add, update, close and reject; write nothing")
	return cmd
}

// unlessStored skips check for a row that repeats what the store holds
// for its domain: it was test-rendered when those facts were imported, and
// a daily re-import of a million unchanged rows would otherwise check a
// million notices. A template changed since is checked where templates
// change: at start, on SIGHUP and by `errpd templates check`. Since the
// check became cheap (renderCheck) the two costs are close: its read
// transaction took 1.3 to 1.6 µs for a new row and 2.2 µs for a stored
// one (10,000 domains stored), against about 5 µs for the check it saves.
func unlessStored(db *store.DB, check func(store.Domain) error) func(store.Domain) error {
	return func(d store.Domain) error {
		same := false
		err := db.View(func(tx *store.Tx) error {
			old, ok, err := tx.Domain(d.Name)
			same = ok && old.Stopped == "" && old.Mode == d.Mode && old.Expiry.Equal(d.Expiry.Truncate(time.Second)) &&
				old.Registrant == d.Registrant && old.Brand == d.Brand
			return err
		})
		if err == nil && same {
			return nil
		}
		return check(d)
	}
}

// renderCheck test-renders a row's notices for its brand and language,
// as errpd will build them at their send dates, so that a row that can
// never be sent (a name go-mail cannot put in a To header, say) is refused
// at import rather than failing at its first send. Every notice of a
// (brand, language, mode) is checked the first time it is met; after that
// a row checks its mode's first notice only, with its own name, address
// and domain: the templates are the same, so only the row's values can
// differ. DKIM is left out: signing is checked when errpd starts, and
// would cost a signature per row. set is the templates to render with;
// nil loads them from the config's folder.
//
// The rows are checked with message.Builder.Check, which refuses what
// Build refuses without building the message: 4.5 to 5 µs of CPU a row
// instead of 87 to 95 with Build (BenchmarkRenderCheck, 100,000 checks
// of 20,000 distinct rows, 2026-12-01).
//
// The check it returns may be called from any number of goroutines at
// once: the Builder is read-only and the record of the kinds met is
// locked.
func renderCheck(c config.Config, set *templates.Set, now func() time.Time) (func(store.Domain) error, error) {
	c.Mail.DKIMKey, c.Mail.DKIMSelector = "", ""
	brands := make(map[string]config.Brand, len(c.Brands))
	for name, b := range c.Brands {
		b.DKIMKey, b.DKIMSelector = "", ""
		brands[name] = b
	}
	c.Brands = brands
	if set == nil {
		var err error
		if set, err = templates.Load(c.Templates.Dir); err != nil {
			return nil, err
		}
	}
	b, err := message.New(c, set, now)
	if err != nil {
		return nil, err
	}
	type key struct {
		brand, lang string
		mode        scheduler.Mode
	}
	byMode := map[scheduler.Mode][]string{} // read-only from here on
	for _, m := range []scheduler.Mode{scheduler.ModeRenew, scheduler.ModeExpire} {
		byMode[m] = modeKinds(m)
	}
	var mu sync.Mutex
	seen := map[key]bool{}
	return func(d store.Domain) error {
		k := key{"", d.Registrant.Language, d.Mode}
		if _, ok := c.Brands[d.Brand]; ok { // else the [mail] sender, as config.ResolveBrand has it
			k.brand = d.Brand
		}
		mu.Lock()
		met := seen[k]
		mu.Unlock()
		kinds, ok := byMode[d.Mode]
		if !ok {
			kinds = modeKinds(d.Mode)
		}
		if met && len(kinds) > 1 {
			kinds = kinds[:1]
		}
		cyc := store.Cycle{Domain: d.Name, Expiry: d.Expiry, Mode: d.Mode, Registrant: d.Registrant, Brand: d.Brand}
		for _, kind := range kinds {
			_, n, _ := strings.Cut(kind, "-")
			step := store.Step{ID: "import-check", Domain: d.Name, Expiry: d.Expiry, Notice: scheduler.Notice(n)}
			if err := b.Check(preview.StepInput(step, cyc)); err != nil {
				return fmt.Errorf("the %s notice cannot be rendered for brand %q, language %q: %w", kind, d.Brand, d.Registrant.Language, err)
			}
		}
		if !met {
			// Two goroutines meeting a kind at once both check all its
			// notices: harmless, and no lock is held while rendering.
			mu.Lock()
			seen[k] = true
			mu.Unlock()
		}
		return nil
	}, nil
}

// modeKinds are the template kinds (MODE-NOTICE) a mode sends.
func modeKinds(m scheduler.Mode) []string {
	var out []string
	for _, k := range templates.Kinds {
		if strings.HasPrefix(k, string(m)+"-") {
			out = append(out, k)
		}
	}
	return out
}

// imported tells the daemon that new steps may be due.
func (a *app) imported(calendar.Stats) {
	if a.daemon != nil && a.daemon.wake != nil {
		a.daemon.wake()
	}
}
