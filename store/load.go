package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"
)

// A bulk load (errpd import --bulk) adds many new domains at once. Put one
// at a time into a store of a million, each new domain lands in a dozen
// pages in random places, and the import writes ~35 KB a row (docs/
// store_encoding.md). Load plans the new domains with the same code as an
// import (Tx.Upsert and what it calls), but in a scratch transaction that
// is never committed: after each few domains, what they wrote is copied
// out and their records dropped from it, so the scratch stays small. The
// records kept are sorted per bucket and merged, in key order, with the
// store's own into a new file written by the rewrite driver (rewrite.go)
// beside the store, which then takes the store's name, as `errpd compact`
// does. Killed at any point before that rename, the store is as it was.
//
// What the scratch reads, it reads from the store's own state: the
// buckets that hold the whole store's state in a few keys (meta: the
// audit chain's head, the coverage walk's cursor; counts) are copied into
// it, and so is the audit trail's sequence, so that the new domains'
// audit records carry on the chain. Every other bucket starts empty: a new
// domain has no domain, cycle or step records yet, and an import of one
// reads nothing else. A domain the store holds is refused (Add), and a
// key the store holds already among the records kept fails the load: the
// scratch could not have read it.

// LoadOptions tune Load: those of the rewrite driver, and the clock.
type LoadOptions struct {
	UpgradeOptions
	// Now stamps the new records; time.Now when nil. It is read once:
	// the load is one transaction, as far as its records can tell.
	Now func() time.Time
}

// Loaded says what Load did.
type Loaded struct {
	Domains int64 // rows of new domains planned (one whose status closes it writes nothing)
	Added   int64 // records they wrote (the state buckets' not counted)
	Total   int64 // records in the new file
	OldSize int64 // bytes
	NewSize int64
	// Planning is how long the new domains took to plan (fill included),
	// Writing the new file's sorting, writing, sync and swap.
	Planning, Writing time.Duration
	// Written: the store was written again (not when the domains planned
	// wrote no record).
	Written bool
}

// StoredError refuses a bulk load's domain that the store holds already:
// the load plans new domains only.
type StoredError struct{ Domain string }

func (e *StoredError) Error() string {
	return fmt.Sprintf("%s is in the store already: a bulk load adds new domains only", e.Domain)
}

// errNothingToLoad: the domains planned wrote no record (none was
// given, or only rows closing domains the store does not hold), so the
// store is not written again.
var errNothingToLoad = errors.New("nothing to load")

// loadSuffix names the new file beside the store, and loadScratch the
// scratch file that is never committed to.
const (
	loadSuffix  = ".loading"
	loadScratch = ".load-scratch"
)

// captureEvery is how many domains the scratch holds before their
// records are copied out: bbolt keeps a transaction's writes in nodes
// that split only at commit, so an insert into a node of n keys moves n
// of them; a few domains keep n small.
const captureEvery = 16

// loadChunk is how many records a transaction of the new file takes.
const loadChunk = 1 << 16

// Load adds to the store at path the new domains that fill plans through
// the Loader, as a new file in key order that takes the store's name. No
// other process may hold the store (o.NoWait refuses at once). Nothing is
// written to the store when fill or the copy fails.
func Load(path string, o LoadOptions, fill func(*Loader) error) (Loaded, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Chunk <= 0 {
		// Nothing is resumed (a killed load starts again), so a chunk
		// need not be small: fewer commits, each of a few MB.
		o.Chunk = loadChunk
	}
	// The rewrite leaves a missing file alone; a load must not do so
	// silently.
	if _, err := os.Stat(path); err != nil {
		return Loaded{}, fmt.Errorf("store %s: %w", path, err)
	}
	var l *Loader
	start, planned := time.Now(), time.Time{}
	// A compaction, with the new domains merged in: every record copied
	// as it is, every bucket in key order, the old file dropped.
	kind := compactKind("")
	kind.suffix, kind.verb, kind.accept = loadSuffix, "loading", acceptCurrent("loading")
	kind.prepare = func(otx *bolt.Tx) (*merged, error) {
		defer func() { planned = time.Now() }()
		var err error
		l, err = newLoader(path, otx, o.Now)
		if err != nil {
			return nil, err
		}
		defer l.close()
		if err := fill(l); err != nil {
			return nil, err
		}
		return l.finish()
	}
	res, err := rewriteFile(path, o.UpgradeOptions, kind)
	out := Loaded{Total: res.Total, OldSize: res.OldSize, NewSize: res.NewSize, Written: err == nil}
	if errors.Is(err, errNothingToLoad) {
		err = nil // the store is left as it is
	}
	if !planned.IsZero() {
		out.Planning, out.Writing = planned.Sub(start), time.Since(planned)
	}
	if l != nil {
		out.Domains, out.Added = l.domains, l.kept.added()
	}
	return out, err
}

// Loader plans new domains for Load, each in the scratch transaction.
type Loader struct {
	old     *bolt.Tx // the store, as the load reads it throughout
	path    string   // the scratch file
	scratch *bolt.DB
	stx     *bolt.Tx
	tx      *Tx
	kept    *merged
	pending int // domains planned since the last capture
	domains int64
}

func newLoader(path string, old *bolt.Tx, now func() time.Time) (*Loader, error) {
	l := &Loader{old: old, path: path + loadScratch, kept: &merged{buckets: map[string]*mergeIter{}}}
	// A scratch left by a killed load holds nothing of use.
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := bolt.Open(l.path, 0o600, &bolt.Options{NoSync: true, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("store %s: the scratch file: %w", path, err)
	}
	l.scratch = db
	if l.stx, err = db.Begin(true); err != nil {
		l.close()
		return nil, fmt.Errorf("store %s: the scratch file: %w", path, err)
	}
	if err := l.seed(); err != nil {
		l.close()
		return nil, fmt.Errorf("store %s: the scratch file: %w", path, err)
	}
	l.tx = writeTx(l.stx, now)
	return l, nil
}

// seed gives the scratch every bucket of the store, the records of those
// that hold the whole store's state, and the audit trail's sequence.
func (l *Loader) seed() error {
	return l.old.ForEach(func(name []byte, ob *bolt.Bucket) error {
		b, err := l.stx.CreateBucket(name)
		if err != nil {
			return err
		}
		if !stateBucket(name) {
			return b.SetSequence(sequence(name, ob))
		}
		return ob.ForEach(func(k, v []byte) error {
			if ob.Bucket(k) != nil {
				return fmt.Errorf("bucket %s: key %q: a nested bucket, which the schema does not have", name, k)
			}
			return b.Put(bytes.Clone(k), bytes.Clone(v))
		})
	})
}

// sequence is a bucket's sequence; the audit trail's is the number of its
// last record (appendAudit's, which in the scratch sees no record).
func sequence(name []byte, b *bolt.Bucket) uint64 {
	if bytes.Equal(name, bucketAudit) {
		return lastAuditSeq(b)
	}
	return b.Sequence()
}

// stateBucket: a bucket whose few keys hold the whole store's state; the
// scratch's copy, as the load leaves it, replaces the store's.
func stateBucket(name []byte) bool {
	return bytes.Equal(name, bucketMeta) || bytes.Equal(name, bucketCounts)
}

// Add plans the new domain name: fn writes it through tx as an import
// would (Tx.Upsert). A domain the store holds is refused with a
// *StoredError. An error from fn leaves the scratch with part of its
// writes: the load must stop.
func (l *Loader) Add(name string, fn func(*Tx) error) error {
	if l.old.Bucket(bucketDomains).Get([]byte(name)) != nil {
		return &StoredError{Domain: name}
	}
	if err := fn(l.tx); err != nil {
		return err
	}
	l.domains++
	if l.pending++; l.pending >= captureEvery {
		return l.capture()
	}
	return nil
}

// capture copies what the domains planned since the last capture wrote
// out of the scratch, and empties their buckets.
func (l *Loader) capture() error {
	l.pending = 0
	var names [][]byte
	err := l.stx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if stateBucket(name) {
			return nil
		}
		k, _ := b.Cursor().First()
		if k == nil {
			return nil
		}
		names = append(names, name)
		return l.kept.take(name, b)
	})
	if err != nil {
		return err
	}
	for _, name := range names {
		seq := l.stx.Bucket(name).Sequence()
		if err := l.stx.DeleteBucket(name); err != nil {
			return err
		}
		b, err := l.stx.CreateBucket(name)
		if err != nil {
			return err
		}
		if err := b.SetSequence(seq); err != nil {
			return err
		}
	}
	return nil
}

// finish captures the last domains and the state buckets, and sorts
// what was kept.
func (l *Loader) finish() (*merged, error) {
	if err := l.capture(); err != nil {
		return nil, err
	}
	err := l.stx.ForEach(func(name []byte, b *bolt.Bucket) error {
		x := l.kept.bucket(name)
		x.seq = max(x.seq, b.Sequence())
		if !stateBucket(name) {
			return nil
		}
		x.replace = true
		return l.kept.take(name, b)
	})
	if err != nil {
		return nil, err
	}
	if l.kept.added() == 0 {
		return nil, errNothingToLoad
	}
	l.kept.sort()
	return l.kept, nil
}

// close drops the scratch transaction and file.
func (l *Loader) close() {
	if l.stx != nil {
		l.stx.Rollback()
		l.stx = nil
	}
	if l.scratch != nil {
		l.scratch.Close()
		l.scratch = nil
		os.Remove(l.path)
	}
}

// merged is the records a rewrite adds to the store's, per bucket.
type merged struct {
	buckets map[string]*mergeIter
	sorting sync.WaitGroup // the background sort (sort, cancel)
	stopped atomic.Bool
}

// mergeIter is one bucket's added records: their keys and values back
// to back in blocks, indexed by recs, so that a million domains' records
// cost little more than their bytes.
type mergeIter struct {
	blocks  [][]byte      // of blockSize bytes, or one record's if larger
	taken   [][]rec       // the records as taken, in runs of recRun
	recs    []rec         // all of them, once sorted
	sorted  bool          // in key order as taken
	seq     uint64        // the bucket's sequence at least
	replace bool          // the whole bucket: the store's records are not copied
	next    int           // the copy's position
	ready   chan struct{} // closed once sorted (sort, wait)
	err     error         // why it could not be
	n       int           // records taken
	bytes   int64         // of the records' keys and values
}

// rec is one record: its key's first eight bytes (big-endian: most keys
// of the buckets sorted are a time, so most comparisons end there), its
// block, where it starts in it, its key's and its value's lengths.
type rec struct {
	prefix     uint64
	block, off uint32
	klen, vlen uint32
}

// recRun records are taken into one run: a slice that grew by appending
// would be copied again and again.
const recRun = 1 << 16

func (x *mergeIter) compare(a, b rec) int {
	if a.prefix != b.prefix {
		return cmp.Compare(a.prefix, b.prefix)
	}
	return bytes.Compare(x.key(a), x.key(b))
}

// prefixOf is a key's first eight bytes, zero-padded, as a number: two
// keys' prefixes compare as their first eight bytes do.
func prefixOf(k []byte) uint64 {
	var p [8]byte
	copy(p[:], k)
	return binary.BigEndian.Uint64(p[:])
}

// blockSize: records are copied into blocks of this size, not one buffer
// that grows, which would copy what it holds each time it grows.
const blockSize = 1 << 20

func (x *mergeIter) key(r rec) []byte { return x.blocks[r.block][r.off : r.off+r.klen] }
func (x *mergeIter) val(r rec) []byte {
	return x.blocks[r.block][r.off+r.klen : r.off+r.klen+r.vlen]
}

// add copies one record into the last block, or a new one.
func (x *mergeIter) add(k, v []byte) {
	n := len(k) + len(v)
	last := len(x.blocks) - 1
	if last < 0 || len(x.blocks[last])+n > cap(x.blocks[last]) {
		x.blocks = append(x.blocks, make([]byte, 0, max(blockSize, n)))
		last++
	}
	b := x.blocks[last]
	r := rec{prefix: prefixOf(k), block: uint32(last), off: uint32(len(b)), klen: uint32(len(k)), vlen: uint32(len(v))}
	x.blocks[last] = append(append(b, k...), v...) // before the compare: it reads r's key there
	if n := len(x.taken); n > 0 && x.sorted && x.compare(r, x.last()) <= 0 {
		x.sorted = false
	}
	if n := len(x.taken); n == 0 || len(x.taken[n-1]) == recRun {
		x.taken = append(x.taken, make([]rec, 0, recRun))
	}
	x.taken[len(x.taken)-1] = append(x.taken[len(x.taken)-1], r)
	x.bytes += int64(n)
	x.n++
}

// last is the record taken last.
func (x *mergeIter) last() rec {
	run := x.taken[len(x.taken)-1]
	return run[len(run)-1]
}

func (m *merged) bucket(name []byte) *mergeIter {
	x := m.buckets[string(name)]
	if x == nil {
		x = &mergeIter{sorted: true}
		m.buckets[string(name)] = x
	}
	return x
}

// take appends every record of b.
func (m *merged) take(name []byte, b *bolt.Bucket) error {
	x := m.bucket(name)
	// No nested buckets: the scratch has none (an index entry's empty
	// value reads as nil from a transaction's own writes).
	return b.ForEach(func(k, v []byte) error {
		x.add(k, v)
		return nil
	})
}

// sort puts every bucket's records in key order, a bucket a CPU, in the
// background and in bucket name order, the order the copy takes them in:
// the copy writes the first buckets while the others are sorted. A
// bucket's records are used after wait.
func (m *merged) sort() {
	names := slices.Sorted(maps.Keys(m.buckets))
	for _, name := range names {
		m.buckets[name].ready = make(chan struct{})
	}
	m.sorting.Add(1)
	go func() {
		defer m.sorting.Done()
		var g errgroup.Group
		g.SetLimit(runtime.GOMAXPROCS(0))
		for _, name := range names {
			x := m.buckets[name]
			g.Go(func() error {
				defer close(x.ready)
				if m.stopped.Load() {
					x.err = errSortStopped
					return nil
				}
				x.err = x.sort(name)
				return nil
			})
		}
		g.Wait()
	}()
}

// errSortStopped: the rewrite ended before the bucket was sorted.
var errSortStopped = errors.New("sorting stopped")

// cancel stops the buckets not yet being sorted and waits for the others:
// nothing goes on sorting once the rewrite returned.
func (m *merged) cancel() {
	if m == nil {
		return
	}
	m.stopped.Store(true)
	m.sorting.Wait()
}

// wait waits for the bucket's records to be sorted; two with one key
// are an error.
func (x *mergeIter) wait() error {
	if x.ready != nil {
		<-x.ready
	}
	return x.err
}

func (x *mergeIter) sort(name string) error {
	x.recs = make([]rec, 0, x.n)
	for _, run := range x.taken {
		x.recs = append(x.recs, run...)
	}
	x.taken = nil
	if !x.sorted {
		slices.SortFunc(x.recs, x.compare)
	}
	for i := 1; i < len(x.recs); i++ {
		if bytes.Equal(x.key(x.recs[i-1]), x.key(x.recs[i])) {
			return fmt.Errorf("bucket %s: key %q written by two new domains", name, x.key(x.recs[i]))
		}
	}
	return nil
}

// of is a bucket's added records (none: an empty iterator).
func (m *merged) of(name []byte) *mergeIter {
	if m == nil || m.buckets[string(name)] == nil {
		return &mergeIter{}
	}
	return m.buckets[string(name)]
}

// added is how many records the domains wrote (the state buckets'
// copies not counted).
func (m *merged) added() int64 {
	var n int64
	if m != nil {
		for _, x := range m.buckets {
			if !x.replace {
				n += int64(x.n)
			}
		}
	}
	return n
}

// within refuses records for a bucket not among the store's: the copy
// walks the store's buckets, and would leave them out.
func (m *merged) within(names [][]byte) error {
	if m == nil {
		return nil
	}
	have := map[string]bool{}
	for _, n := range names {
		have[string(n)] = true
	}
	for name, x := range m.buckets {
		if x.n > 0 && !have[name] {
			return fmt.Errorf("bucket %s: records to add, but the store has no such bucket", name)
		}
	}
	return nil
}

func (m *merged) bytes() int64 {
	var n int64
	if m != nil {
		for _, x := range m.buckets {
			n += x.bytes
		}
	}
	return n
}

func (x *mergeIter) more() bool { return x.next < len(x.recs) }

// before takes the next added record when it sorts before k (k nil: any
// that is left). When it has k's key, it is not taken, and xk is that key:
// the store holds it already.
func (x *mergeIter) before(k []byte) (xk, xv []byte, take bool) {
	if !x.more() {
		return nil, nil, false
	}
	r := x.recs[x.next]
	switch c := bytes.Compare(x.key(r), k); {
	case k == nil || c < 0:
		x.next++
		return x.key(r), x.val(r), true
	case c == 0:
		return x.key(r), nil, false
	}
	return nil, nil, false
}
