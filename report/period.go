package report

import (
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/errpd/errpd/store"
)

// A report over a period reads the period's steps through the store's
// deadline index and still lists them in step id order, as every other
// report does: it collects the refs of the period's steps (store.StepRef:
// their keys, about 30 bytes each, which sort as the ids do and need no
// conversion to an id and back), sorts them, and reads those steps in
// chunks. To keep its memory bounded, it holds at most periodCap ids at a
// time (and half as many again while collecting them: periodPart): a
// period with more is read in passes over its index entries, each pass
// taking the next ids in id order. An id costs about 50 bytes: 2^19 of
// them, a month among 1.6 million domains, hold 25 MB, 38 MB at most
// while collected (keepFirst copies the ids it keeps into blocks of their
// own). A month among a million domains read in one pass instead of two
// took about 0.05 s less (0.95–0.97 s against 0.99–1.08 s, the two builds
// run in turn, each run its own process).
var periodCap = 1 << 19

// indexChunk is how many deadline index entries one read transaction reads
// (keys only, so many more than chunk steps in the same time).
var indexChunk = 20_000

// walkHook, when set (by tests), is called before each read of a part's
// walk of the deadline index (done false) and once it has ended (true).
var walkHook func(part int, done bool)

// keyCost is how many deadline index entries cost as much to read as one
// step (which is decoded). It decides when a period so large that it
// needs many passes is cheaper to read by scanning every step.
const keyCost = 20

func byDeadline[T any](db *store.DB, f Filter, newBatcher func() batcher[T], take func(T) error) error {
	var lower store.StepRef
	for pass := 0; ; pass++ {
		p, err := periodIDs(db, f, lower)
		if err != nil {
			return err
		}
		if pass == 0 && scanCheaper(db, p) {
			return scanPrefix(db, "", f, newBatcher(), take)
		}
		if err := readIDs(db, p.ids, f, newBatcher, take); err != nil {
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
	arena   refArena        // where ids are kept
	matched int             // ids after lower that the filter's TLD matches
	walked  int             // index entries read
}

// periodIDs reads the ids of the steps whose deadline is in f's period
// (and whose domain is under f's TLD) that sort after lower ("" for all),
// and keeps the first of them in id order, at most periodCap. A closed
// period is read in parts, one a CPU, each collecting and sorting its own
// ids: the first read of a month's index entries is page faults and the
// sort (a quarter of a month's report, on one core while the other
// waited). Each part keeps its first periodCap/parts ids; when one had
// more, the pass ends at the lowest last id of such a part (every id up
// to it is in the parts' lists), and the next pass goes on from there.
//
// The parts walk in read transactions of indexChunk entries, so that no
// long one holds up the daemon's writer (bbolt maps a growing file again
// only once no transaction is open). A step whose deadline moves
// meanwhile could be missed: its new entry already passed, by its part or
// another, and its old one not yet reached. So when a deadline moved
// during the walk (store.Tx.DeadlineMoves), the pass is walked again in
// one read transaction: one snapshot, in which each step has one entry.
func periodIDs(db *store.DB, f Filter, lower store.StepRef) (periodPass, error) {
	before, err := deadlineMoves(db)
	if err != nil {
		return periodPass{}, err
	}
	p, err := periodParts(db, f, lower)
	if err != nil {
		return p, err
	}
	if after, err := deadlineMoves(db); err != nil || after == before {
		return p, err
	}
	err = db.View(func(tx *store.Tx) error {
		inTx := func(fn func(*store.Tx) error) error { return fn(tx) }
		p, err = periodPart(inTx, f, lower, periodCap, 0)
		return err
	})
	return p, err
}

func deadlineMoves(db *store.DB) (n uint64, err error) {
	err = db.View(func(tx *store.Tx) error { n = tx.DeadlineMoves(); return nil })
	return n, err
}

// periodParts is periodIDs' walk in parts, each in read transactions of
// its own.
func periodParts(db *store.DB, f Filter, lower store.StepRef) (periodPass, error) {
	parts := splitPeriod(f, runtime.GOMAXPROCS(0))
	keep := max(1, periodCap/len(parts))
	passes := make([]periodPass, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, part := range parts {
		wg.Go(func() { passes[i], errs[i] = periodPart(db.View, part, lower, keep, i) })
	}
	wg.Wait()
	var p periodPass
	var upper store.StepRef // the pass's last id, when a part had more
	for i, o := range passes {
		p.ids = mergeSorted(p.ids, o.ids)
		p.matched += o.matched
		p.walked += o.walked
		if o.more && (upper == "" || o.ids[len(o.ids)-1] < upper) {
			upper = o.ids[len(o.ids)-1]
		}
		if err := errs[i]; err != nil {
			return p, err
		}
	}
	if upper != "" {
		end, _ := slices.BinarySearch(p.ids, upper)
		p.ids, p.more = slices.Clip(p.ids[:end+1]), true
	}
	return p, nil
}

// splitPeriod cuts f's period into n parts of equal length; a period open
// at either end stays whole.
func splitPeriod(f Filter, n int) []Filter {
	if f.From.IsZero() || f.To.IsZero() || n < 2 || !f.From.Before(f.To) {
		return []Filter{f}
	}
	parts := make([]Filter, n)
	step := f.To.Sub(f.From) / time.Duration(n)
	for i := range parts {
		parts[i] = f
		parts[i].From = f.From.Add(time.Duration(i) * step)
		if i < n-1 {
			parts[i].To = parts[i].From.Add(step)
		}
	}
	return parts
}

// mergeSorted merges two sorted lists of ids into one, each id once (a
// step whose deadline moved between two reads is in both).
func mergeSorted(a, b []store.StepRef) []store.StepRef {
	if len(b) == 0 {
		return a
	}
	out := make([]store.StepRef, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		switch {
		case a[0] < b[0]:
			out, a = append(out, a[0]), a[1:]
		case b[0] < a[0]:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// periodPart is periodIDs over one part of the period (part: its
// number), keeping the first keep ids. It sorts what it collected
// whenever it holds half as many again, and keeps the first keep. read
// runs each read of indexChunk entries in a read transaction.
func periodPart(read func(func(*store.Tx) error) error, f Filter, lower store.StepRef, keep, part int) (periodPass, error) {
	var p periodPass
	var upper store.StepRef // once ids were dropped: no id after it is needed in this pass
	after := ""
	for {
		n := 0
		if walkHook != nil {
			walkHook(part, false)
		}
		err := read(func(tx *store.Tx) error {
			var err error
			after, err = tx.DeadlineRefsAfter(f.From, f.To, after, indexChunk, func(ref []byte) error {
				n++
				id := store.StepRef(view(ref)) // a view until it is kept
				if (lower != "" && id <= lower) || (f.TLD != "" && tld(id.Domain()) != f.TLD) {
					return nil
				}
				p.matched++
				if upper != "" && id > upper {
					return nil
				}
				p.ids = append(p.ids, p.arena.ref(view(ref)))
				if len(p.ids) >= keep+max(keep/2, 1) {
					// Only ids dropped bound the pass: a list cut down by
					// ids met twice alone holds all there are so far.
					if p.keepFirst(keep); p.more {
						upper = p.ids[len(p.ids)-1]
					}
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
			if walkHook != nil {
				walkHook(part, true)
			}
			p.keepFirst(keep)
			return p, nil
		}
	}
}

// refArena keeps refs in blocks of 1 MiB: one allocation a block instead
// of one a ref (a month among a million domains has 330,000).
type refArena struct{ block []byte }

// ref is a copy of s kept in the arena.
func (a *refArena) ref(s string) store.StepRef {
	if len(a.block)+len(s) > cap(a.block) {
		a.block = make([]byte, 0, max(1<<20, len(s)))
	}
	a.block = append(a.block, s...)
	return store.StepRef(view(a.block[len(a.block)-len(s):]))
}

// view is b as a string without a copy: b must not change while the
// string is used.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// keepFirst sorts the ids and keeps the first n, noting that some were
// left. An id met twice (its deadline moved between two read
// transactions) is kept once. The ids kept are copied into an arena of
// their own, so that the blocks of those dropped can go: kept ids lie in
// every block.
func (p *periodPass) keepFirst(n int) {
	slices.Sort(p.ids)
	p.ids = slices.Compact(p.ids)
	if len(p.ids) <= n {
		return
	}
	p.ids, p.more = p.ids[:n], true
	var kept refArena
	for i, id := range p.ids {
		p.ids[i] = kept.ref(string(id))
	}
	p.arena = kept
}

// scanCheaper reports whether reading every step costs less than the
// passes over the period's index entries that its size needs.
func scanCheaper(db *store.DB, p periodPass) bool {
	// A pass holds what its parts kept: fewer than periodCap when the ids
	// crowd into one part.
	if !p.more || len(p.ids) == 0 {
		return false
	}
	passes := (p.matched + len(p.ids) - 1) / len(p.ids)
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
// and passes the batches of the rows the filter still matches (a step's
// deadline may have moved since its id was read) to take, in the order of
// ids. The chunks are read and batched by one worker a CPU while take has
// the batches of the chunks before, in order: a month's steps lie all over
// the file, and reading them (a page fault and a decode each) and encoding
// their rows is most of a report's time. At most two chunks a worker are
// read ahead, so memory stays bounded.
func readIDs[T any](db *store.DB, ids []store.StepRef, f Filter, newBatcher func() batcher[T], take func(T) error) error {
	chunk := readChunkSize
	workers := min(runtime.GOMAXPROCS(0), (len(ids)+chunk-1)/chunk)
	done := make(chan struct{})
	defer close(done)
	type job struct {
		ids []store.StepRef
		out chan<- chunkBatch[T]
	}
	jobs := make(chan job)
	order := make(chan chan chunkBatch[T], 2*workers)
	go func() { // hands out the chunks, keeping their order for the reader
		defer close(jobs)
		defer close(order)
		for len(ids) > 0 {
			part := ids[:min(chunk, len(ids))]
			ids = ids[len(part):]
			out := make(chan chunkBatch[T], 1)
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
			b := newBatcher()
			for j := range jobs {
				err := readChunk(db, j.ids, f, b)
				j.out <- chunkBatch[T]{b.batch(), err}
			}
		}()
	}
	for out := range order {
		c := <-out
		if c.err != nil {
			return c.err
		}
		if err := take(c.batch); err != nil {
			return err
		}
	}
	return nil
}

// readChunkSize is how many steps readIDs reads in one transaction: a
// variable only so that tests can make many chunks of a small store.
var readChunkSize = chunk

// chunkBatch is the batch of one chunk of ids, or why it could not be read.
type chunkBatch[T any] struct {
	batch T
	err   error
}

// readChunk reads the rows of the steps named, in one read transaction,
// into b.
func readChunk[T any](db *store.DB, ids []store.StepRef, f Filter, b batcher[T]) error {
	return db.View(func(tx *store.Tx) error {
		m := rowMaker{tx: tx.Lookups(), f: f, fn: b.add}
		return tx.StepsByRef(ids, "the deadline index", m.step)
	})
}
