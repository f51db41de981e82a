package calendar

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/errpd/errpd/store"
)

// BulkOptions say how to bulk-load a calendar (Bulk).
type BulkOptions struct {
	Options
	// Open opens the store, before the load (to create it, or refuse it
	// when another process holds it) and after, for the rows that name
	// stored domains.
	Open store.Options
	// Load tunes the new file's writing.
	Load store.LoadOptions
}

// ErrBulkOptions refuses a bulk load with options it does not take.
var ErrBulkOptions = errors.New("--bulk takes neither --dry-run nor --full-sync")

// Bulk imports a calendar into the store at path, which no other process
// may hold. Its new domains are planned at once through store.Load, which
// writes the store again in key order with them; then the rows that name
// stored domains are imported as Import does. For a first import of many
// domains it is several times faster than Import (docs/store_encoding.md),
// and leaves the store compact. The new domains' records are held in
// memory until the store is written: 1.8 GiB at the peak for 1,000,000.
//
// The rows are read and planned a window at a time, in domain order
// within each, as Import orders them: while one window is planned, the
// next is read, and its rows checked (Reader.Check), on another goroutine.
func Bulk(r *Reader, path string, o BulkOptions, reject func(*RowError)) (Stats, store.Loaded, error) {
	var st Stats
	if o.DryRun || o.FullSync {
		return st, store.Loaded{}, ErrBulkOptions
	}
	// Opened once first: the store is created if there is none, and one
	// that another process holds is refused before anything is read.
	db, err := store.Open(path, o.Open)
	if err != nil {
		return st, store.Loaded{}, err
	}
	db.Close()
	var stored []Row
	loaded, err := store.Load(path, o.Load, func(l *store.Loader) error {
		return eachWindow(r, &st, reject, func(rows []Row) error {
			for _, row := range rows {
				err := l.Add(row.Domain.Name, func(tx *store.Tx) error { return count(tx, event(r, row), o.Plan, &st) })
				if errors.As(err, new(*store.StoredError)) {
					stored = append(stored, row) // imported after the load
					continue
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil || len(stored) == 0 {
		return st, loaded, err
	}
	if db, err = store.Open(path, o.Open); err != nil {
		return st, loaded, fmt.Errorf("the new domains are loaded, but %d rows naming stored domains are not imported: %w; import the file again", len(stored), err)
	}
	defer db.Close()
	return st, loaded, applyAll(r, db, o.Options, stored, &st)
}

// aWindow is a window of rows read: the good ones in domain order, the
// ones the reader rejected in line order.
type aWindow struct {
	rows []Row
	bad  []*RowError
	err  error // reading stopped
}

// eachWindow reads r a window at a time and calls fn with each window's
// good rows, in domain order, after its rejected ones went to reject. The
// next window is read (and its rows checked, Reader.Check) meanwhile, on
// another goroutine. Only the calling goroutine touches st and calls
// reject and fn, which must not keep the slice it is given: a window is
// read again into once fn returns (8 MB of fresh heap a window, page
// faults that cost a million-row import 3 s of CPU when each was new).
// When fn fails, eachWindow returns once the reader has stopped, at the
// end of the window it is reading: nothing reads the input after.
func eachWindow(r *Reader, st *Stats, reject func(*RowError), fn func([]Row) error) error {
	windows, free, stop := make(chan *aWindow, 1), make(chan *aWindow, 3), make(chan struct{})
	defer func() {
		// The reader stops at its next window; Bulk returns once it has,
		// so that nothing reads the calendar after.
		close(stop)
		for range windows {
		}
	}()
	go readWindows(r, windows, free, stop)
	for w := range windows {
		st.Rows += len(w.rows) + len(w.bad)
		st.Rejected += len(w.bad)
		for _, e := range w.bad {
			reject(e)
		}
		if w.err != nil {
			return w.err
		}
		if err := fn(w.rows); err != nil {
			return err
		}
		select {
		case free <- w:
		default:
		}
	}
	return nil
}

// readWindows sends windows of rows until the input ends or stop closes.
func readWindows(r *Reader, out chan<- *aWindow, free <-chan *aWindow, stop <-chan struct{}) {
	defer close(out)
	for {
		w := &aWindow{}
		select {
		case w = <-free:
			w.rows, w.bad, w.err = w.rows[:0], w.bad[:0], nil
		default:
		}
		eof := w.read(r)
		slices.SortFunc(w.rows, func(a, b Row) int { return strings.Compare(a.Domain.Name, b.Domain.Name) })
		select {
		case out <- w:
		case <-stop:
			return
		}
		if eof || w.err != nil {
			return
		}
	}
}

// read reads up to a window of rows; true at the input's end.
func (w *aWindow) read(r *Reader) bool {
	for len(w.rows) < window {
		row, err := r.Next()
		var re *RowError
		switch {
		case err == io.EOF:
			return true
		case errors.As(err, &re):
			w.bad = append(w.bad, re)
		case err != nil:
			w.err = err
			return true
		default:
			w.rows = append(w.rows, row)
		}
	}
	return false
}
