package main

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/store"
)

// bulkTook1M is how long `errpd import --bulk` of 1,000,000 new domains
// took (docs/store_encoding.md), for an operator deciding when to stop the
// daemon for one.
const bulkTook1M = "41 s on 2 cores"

// bulkHint is how many new domains make an import say that --bulk exists:
// one by one, 100,000 take about a minute.
var bulkHint = 100_000

var bulkTexts = meterTexts{
	start:    "writing the store again in key order with the new domains; the daemon must stay stopped until the end",
	progress: "bulk import: store written",
	bar:      "writing store",
}

// bulkImport is `errpd import --bulk`: the calendar's new domains are
// planned at once and the store is written again, in key order, with
// them (calendar.Bulk). An offline tool, as compact is.
func (a *app) bulkImport(c config.Config, plan store.PlanOptions, path, name string) (calendar.Stats, error) {
	if a.daemon != nil {
		return calendar.Stats{}, errors.New("import --bulk cannot run through a running daemon: stop the daemon first, or import without --bulk")
	}
	log := a.logger(c)
	if _, err := a.upgradeStore(c, log, true, true); err != nil {
		return calendar.Stats{}, offline(err)
	}
	f, size, err := a.openInput(path)
	if err != nil {
		return calendar.Stats{}, err
	}
	defer f.Close()
	// The bar follows the rows read, which are checked and planned as
	// they are read; then the store's writing has its own.
	m := a.localMeter(log, "reading and planning", size)
	r, err := calendar.NewReader(meterReader{f, m}, name)
	if err != nil {
		return calendar.Stats{}, err
	}
	r.Brands = slices.Sorted(maps.Keys(c.Brands))
	// Every row is checked, by the goroutine that reads the rows while
	// the ones before are planned.
	if r.Check, err = renderCheck(c, nil, time.Now); err != nil {
		return calendar.Stats{}, err
	}
	// The new domains' records are nearly all of the heap while they are
	// held, and hold no pointers: a collection costs little, while at Go's
	// default the heap grows to twice them before one. At 1,000,000 new
	// domains (docs/store_encoding.md): peak RSS 2.9 GiB at the default,
	// 1.8 GiB at 25, in the same wall time.
	defer gcPercent(25)()
	w := a.rewriteMeter(log, c.Store.Path, &bulkTexts, true)
	start := time.Now()
	st, res, err := calendar.Bulk(r, c.Store.Path, calendar.BulkOptions{
		Options: calendar.Options{Plan: plan},
		Open:    store.Options{Timeout: c.Store.OpenTimeout, NoWait: true},
		Load:    store.LoadOptions{UpgradeOptions: store.UpgradeOptions{Timeout: c.Store.OpenTimeout, NoWait: true, Progress: w.show}},
	}, func(e *calendar.RowError) { fmt.Fprintln(a.stderr, e) })
	m.Finish()
	w.finish()
	if err != nil {
		return st, offline(err)
	}
	printStats(a.stdout, st, false)
	if !res.Written {
		fmt.Fprintf(a.stdout, "no new domain to load: store %s not written again\n", c.Store.Path)
		return st, nil
	}
	fmt.Fprintf(a.stdout, "store %s written again in key order: %d new domains, %d records, %d MiB -> %d MiB, in %.1f s (read and planned in %.1f s, written in %.1f s)\n",
		c.Store.Path, res.Domains, res.Total, res.OldSize>>20, res.NewSize>>20, time.Since(start).Seconds(), res.Planning.Seconds(), res.Writing.Seconds())
	log.Info("bulk import", "path", c.Store.Path, "domains", res.Domains, "records", res.Total,
		"old_bytes", res.OldSize, "new_bytes", res.NewSize)
	return st, nil
}

// offline says what to do when the store is held by another process.
func offline(err error) error {
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: import --bulk is an offline tool: stop the daemon first (systemctl stop errpd), "+
			"run it, then start the daemon again (1,000,000 new domains took %s), or import without --bulk through the daemon", err, bulkTook1M)
	}
	return err
}
