package report

import (
	"runtime"
	"slices"

	"github.com/errpd/errpd/store"
)

// A report over a period reads the period's steps through the store's
// deadline index and still lists them in step id order, as every other
// report does: it collects the refs of the period's steps (store.StepRef:
// their keys, about 30 bytes each, which sort as the ids do and need no
// conversion to an id and back), sorts them, and reads those steps in
// chunks. To keep its memory
// bounded, it holds at most periodCap ids at a time: a period with more is
// read in passes over its index entries, each pass taking the next
// periodCap ids in id order.
var periodCap = 1 << 18

// indexChunk is how many deadline index entries one read transaction reads
// (keys only, so many more than chunk steps in the same time).
const indexChunk = 20_000

// keyCost is how many deadline index entries cost as much to read as one
// step (which is decoded). It decides when a period so large that it
// needs many passes is cheaper to read by scanning every step.
const keyCost = 20

func byDeadline(db *store.DB, f Filter, fn func(Row) error) error {
	var lower store.StepRef
	for pass := 0; ; pass++ {
		p, err := periodIDs(db, f, lower)
		if err != nil {
			return err
		}
		if pass == 0 && scanCheaper(db, p) {
			return scanPrefix(db, "", f, fn)
		}
		if err := readIDs(db, p.ids, f, fn); err != nil {
			return err
		}
		if !p.more {
			return nil
		}
		lower = p.ids[len(p.ids)-1]
	}
}

// periodPass is one pass over a period's deadline index entries.
type periodPass struct {
	ids     []store.StepRef // the next steps in id order, at most periodCap
	more    bool            // ids left after the last of ids
	matched int             // ids after lower that the filter's TLD matches
	walked  int             // index entries read
}

// periodIDs reads the ids of the steps whose deadline is in f's period
// (and whose domain is under f's TLD) that sort after lower ("" for all),
// and keeps the first periodCap of them in id order.
func periodIDs(db *store.DB, f Filter, lower store.StepRef) (periodPass, error) {
	var p periodPass
	var upper store.StepRef // once ids were dropped: no id after it is needed in this pass
	after := ""
	for {
		n := 0
		err := db.View(func(tx *store.Tx) error {
			var err error
			after, err = tx.DeadlineRefsAfter(f.From, f.To, after, indexChunk, func(id store.StepRef) error {
				n++
				if (lower != "" && id <= lower) || (f.TLD != "" && tld(id.Domain()) != f.TLD) {
					return nil
				}
				p.matched++
				if upper != "" && id > upper {
					return nil
				}
				p.ids = append(p.ids, id)
				if len(p.ids) >= 2*periodCap {
					p.keepFirst()
					upper = p.ids[len(p.ids)-1]
				}
				return nil
			})
			return err
		})
		p.walked += n
		if err != nil {
			return p, err
		}
		if n < indexChunk {
			p.keepFirst()
			return p, nil
		}
	}
}

// keepFirst sorts the ids and keeps the first periodCap, noting that some
// were left. An id met twice (its deadline moved between two read
// transactions) is kept once.
func (p *periodPass) keepFirst() {
	slices.Sort(p.ids)
	p.ids = slices.Compact(p.ids)
	if len(p.ids) > periodCap {
		p.ids = slices.Clip(p.ids[:periodCap])
		p.more = true
	}
}

// scanCheaper reports whether reading every step costs less than the
// passes over the period's index entries that its size needs.
func scanCheaper(db *store.DB, p periodPass) bool {
	passes := (p.matched + periodCap - 1) / periodCap
	if passes <= 1 {
		return false
	}
	var steps uint64
	db.View(func(tx *store.Tx) error {
		for _, n := range tx.Counts() {
			steps += n
		}
		return nil
	})
	return uint64(passes*p.walked/keyCost+p.matched) > steps
}

// readIDs reads the steps named, in chunks of their own read transactions,
// and passes the rows of those the filter still matches (a step's deadline
// may have moved since its id was read) to fn, in the order of ids. The
// chunks are read by one worker a CPU while fn takes the rows of the
// chunks before, in order: a month's steps lie all over the file, and
// reading them (a page fault and a decode each) is most of a report's time.
// At most two chunks a worker are read ahead, so memory stays bounded.
func readIDs(db *store.DB, ids []store.StepRef, f Filter, fn func(Row) error) error {
	chunk := readChunkSize
	workers := min(runtime.GOMAXPROCS(0), (len(ids)+chunk-1)/chunk)
	done := make(chan struct{})
	defer close(done)
	type job struct {
		ids []store.StepRef
		out chan<- chunkRows
	}
	jobs := make(chan job)
	order := make(chan chan chunkRows, 2*workers)
	go func() { // hands out the chunks, keeping their order for the reader
		defer close(jobs)
		defer close(order)
		for len(ids) > 0 {
			part := ids[:min(chunk, len(ids))]
			ids = ids[len(part):]
			out := make(chan chunkRows, 1)
			select {
			case order <- out:
			case <-done:
				return
			}
			select {
			case jobs <- job{part, out}:
			case <-done:
				return
			}
		}
	}()
	for range workers {
		go func() {
			for j := range jobs {
				rows, err := readChunk(db, j.ids, f)
				j.out <- chunkRows{rows, err}
			}
		}()
	}
	for out := range order {
		c := <-out
		if c.err != nil {
			return c.err
		}
		for _, r := range c.rows {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// readChunkSize is how many steps readIDs reads in one transaction: a
// variable only so that tests can make many chunks of a small store.
var readChunkSize = chunk

// chunkRows are the rows of one chunk of ids, or why they could not be read.
type chunkRows struct {
	rows []Row
	err  error
}

// readChunk reads the rows of the steps named, in one read transaction.
func readChunk(db *store.DB, ids []store.StepRef, f Filter) ([]Row, error) {
	rows := make([]Row, 0, len(ids))
	err := db.View(func(tx *store.Tx) error {
		m := rowMaker{tx: tx.Lookups(), f: f, fn: func(r Row) error {
			rows = append(rows, r)
			return nil
		}}
		return tx.StepsByRef(ids, "the deadline index", m.step)
	})
	return rows, err
}
