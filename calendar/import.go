package calendar

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/store"
)

// Stats counts what an import did (or, dry, would do).
type Stats struct {
	Rows      int // data rows read
	Rejected  int
	Added     int
	Updated   int
	NewCycles int
	Unchanged int
	Closed    int // open cycles closed: transferred, deleted, not in a full sync
	Active    int // with FullSync: domains in the calendar before the import
}

// Options say how to import.
type Options struct {
	Plan store.PlanOptions
	// DryRun decides everything and writes nothing.
	DryRun bool
	// FullSync: the file is the whole portfolio, so a stored domain it
	// does not list has its open cycle closed; refused when more than
	// MaxDrop (a fraction of the domains in the calendar) would close.
	FullSync bool
	MaxDrop  float64
}

// ErrTooManyDrops refuses a full sync that would close too many domains.
var ErrTooManyDrops = errors.New("full sync refused")

// errDryRun rolls a dry run's transactions back.
var errDryRun = errors.New("dry run")

// batchSize rows share one write transaction: one fsync for many domains,
// yet a transaction small enough to keep memory flat on a large calendar.
// Each row dirties some ten pages spread over the store (domain, cycle,
// steps, due and coverage index), which bbolt holds in memory until the
// commit: at 2000 rows a batch, a daemon importing 1,000,000 rows peaked
// above 230 MiB of its own memory; at 500, see scripts/bench-import.sh
// daemon. A larger batch writes fewer pages only while the store has
// fewer pages than the batch dirties: on 2026-11-30, 30,000 new domains
// wrote 43% fewer bytes at 2000 rows a batch than at 500, but in a store
// of a million domains the due and coverage indexes alone have some
// 150,000 pages, and each row's four entries land on pages of their own
// at either size (ERRPD_BENCH_BATCH measures other sizes).
var batchSize = 500

// window rows are read before any is written, and written in domain
// order, a batch at a time. A calendar comes in no particular order, so
// the rows of a batch would each dirty a page of their own in the
// domains, cycles and steps (keys that begin with the domain's name); in
// order, a batch covers a 1/40 slice of the names, and its rows share the
// pages of that slice. That pays while the store's pages are few beside
// the window (30,000 new domains in name order wrote 34% fewer bytes than
// in random order); in a store of a million domains, a batch's slice
// still spans more pages than it has rows. A window holds its rows'
// fields, some 400 bytes a row: 8 MB, which the daemon's heap doubles.
// A variable only so that tests can make many windows of a small file.
var window = 20_000

// Import reads every row of r into db. Bad rows go to reject, one by one,
// and the rest still import. It returns when the input is read, or at the
// first error that is not a row's (I/O, store).
func Import(r *Reader, db *store.DB, o store.PlanOptions, reject func(*RowError)) (Stats, error) {
	return ImportWith(r, db, Options{Plan: o}, reject)
}

// ImportWith is Import with options: a dry run, a full sync.
func ImportWith(r *Reader, db *store.DB, o Options, reject func(*RowError)) (Stats, error) {
	var st Stats
	if o.FullSync {
		// Read the whole file first: a full sync is refused before it
		// writes anything.
		var rows []Row
		err := r.each(&st, reject, func(row Row) error { rows = append(rows, row); return nil })
		if err != nil {
			return st, err
		}
		drop, err := checkDrops(r, db, &st, o)
		if err != nil {
			return st, err
		}
		if err := applyAll(r, db, o, rows, &st); err != nil {
			return st, err
		}
		return st, update(db, o.DryRun, func(tx *store.Tx) error {
			for _, name := range drop {
				if err := count(tx, lifecycle.NotInCalendar(name, r.file), o.Plan, &st); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// The next window is read and its rows checked while this one is
	// applied: a re-import of a million unchanged rows ran on one core.
	err := eachWindow(r, &st, reject, func(rows []Row) error { return applyAll(r, db, o, rows, &st) })
	return st, err
}

// applyAll writes rows in domain order, a batch a transaction. The rows
// name distinct domains (a domain listed twice is rejected), so their
// order changes nothing but the order of the audit records.
func applyAll(r *Reader, db *store.DB, o Options, rows []Row, st *Stats) error {
	slices.SortFunc(rows, func(a, b Row) int { return strings.Compare(a.Domain.Name, b.Domain.Name) })
	for i := 0; i < len(rows); i += batchSize {
		if err := apply(r, db, o, rows[i:min(i+batchSize, len(rows))], st); err != nil {
			return err
		}
	}
	return nil
}

// each calls fn for every good row and reject for every bad one.
func (r *Reader) each(st *Stats, reject func(*RowError), fn func(Row) error) error {
	for {
		row, err := r.Next()
		if err == io.EOF {
			return nil
		}
		var re *RowError
		if errors.As(err, &re) {
			st.Rows++
			st.Rejected++
			reject(re)
			continue
		}
		if err != nil {
			return err
		}
		st.Rows++
		if err := fn(row); err != nil {
			return err
		}
	}
}

// checkDrops lists the domains in the calendar that the file does not
// list, and refuses when they are more than o.MaxDrop of them.
func checkDrops(r *Reader, db *store.DB, st *Stats, o Options) ([]string, error) {
	var drop []string
	err := db.View(func(tx *store.Tx) error {
		return tx.Domains(func(d store.Domain) error {
			if d.Stopped != "" || d.Left != nil {
				return nil
			}
			st.Active++
			if !r.listed(d.Name) {
				drop = append(drop, d.Name)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if float64(len(drop)) > o.MaxDrop*float64(st.Active) {
		return nil, fmt.Errorf("%w: %s would close %d of %d active domains (%.1f%%), more than --max-drop %.1f%%",
			ErrTooManyDrops, r.file, len(drop), st.Active, 100*float64(len(drop))/float64(st.Active), 100*o.MaxDrop)
	}
	return drop, nil
}

// apply carries out one batch of rows: the rows that change something in
// one write transaction (rolled back in a dry run).
func apply(r *Reader, db *store.DB, o Options, rows []Row, st *Stats) error {
	changed, err := unchanged(r, db, o, rows, st)
	if err != nil || len(changed) == 0 {
		return err
	}
	return update(db, o.DryRun, func(tx *store.Tx) error {
		for _, row := range changed {
			if err := count(tx, event(r, row), o.Plan, st); err != nil {
				return err
			}
		}
		return nil
	})
}

// unchanged is the fast path of a re-import, where most rows repeat what
// is stored: each row is decided in a read transaction, which shares no
// lock with the daemon's writers and commits nothing. A row whose decision
// needs no write (unchanged, or closing a domain already closed) is counted
// there and done; it returns the others, in order, for the write
// transaction, which decides them again from what it reads then.
//
// A row decided here cannot be made wrong by a concurrent writer (the
// daemon's dispatcher, Ascio's messages): the decision wrote nothing, so
// it is the row's whole effect at the moment of the read, and a write
// committed after that read simply comes after the row, as it would had
// the row been written then. Nothing is written from what was read here.
//
// A read transaction refuses every write (bbolt's ErrTxNotWritable), so a
// row whose decision would write fails here, whatever the write was;
// any error sends the row to the write transaction, where a real one
// (a record that does not decode) comes back and stops the import.
func unchanged(r *Reader, db *store.DB, o Options, rows []Row, st *Stats) ([]Row, error) {
	var changed []Row
	err := db.View(func(tx *store.Tx) error {
		for _, row := range rows {
			var one Stats
			if err := count(tx, event(r, row), o.Plan, &one); err != nil {
				changed = append(changed, row)
				continue
			}
			st.add(one)
		}
		return nil
	})
	return changed, err
}

// event is the lifecycle event of a calendar row.
func event(r *Reader, row Row) lifecycle.Event {
	return lifecycle.FromCalendar(row.Status, row.Domain, r.file+":"+strconv.Itoa(row.Line))
}

// add counts what o counted (the changes of rows, not the rows read).
func (st *Stats) add(o Stats) {
	st.Added += o.Added
	st.Updated += o.Updated
	st.NewCycles += o.NewCycles
	st.Unchanged += o.Unchanged
	st.Closed += o.Closed
}

func count(tx *store.Tx, ev lifecycle.Event, o store.PlanOptions, st *Stats) error {
	ch, _, err := lifecycle.Apply(tx, ev, o)
	switch ch {
	case store.Added:
		st.Added++
	case store.Updated:
		st.Updated++
	case store.NewCycle:
		st.NewCycles++
	case store.Unchanged:
		st.Unchanged++
	case lifecycle.Closed:
		st.Closed++
	}
	return err
}

// update runs fn in a write transaction, rolled back when dry.
func update(db *store.DB, dry bool, fn func(*store.Tx) error) error {
	err := db.Update(func(tx *store.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if dry {
			return errDryRun
		}
		return nil
	})
	if errors.Is(err, errDryRun) {
		return nil
	}
	return err
}
