package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A store's file is rewritten (upgraded to this schema, or compacted) by
// writing its successor beside it, record by record in key order, and
// swapping the two names at the end. The old file is never written. A
// killed rewrite leaves PATH.upgrading (PATH.compacting) with its position
// in its meta bucket, and the next run carries on from there. One driver
// does both; a rewriteKind says what differs.

// rewriteKind is what one kind of rewrite does with the driver below.
type rewriteKind struct {
	suffix string // of the new file beside the store
	verb   string // "upgrading", "compacting": for messages
	// accept says whether a store of schema version v (not newer than
	// this errpd's) is rewritten (true), left alone (false, nil) or
	// refused.
	accept func(path string, v uint64) (bool, error)
	// convert writes the successor(s) of one old record through emit.
	convert func(bucket, k, v []byte, emit func(bucket, k, v []byte) error) error
	// inOrder: convert keeps every key and its bucket, so each bucket's
	// keys arrive in order and every page is filled whole (FillPercent
	// 1.0). Otherwise a bucket is filled whole while its keys arrive in
	// order, and gets bbolt's default once one does not.
	inOrder bool
	// keep gives the old file the name it keeps after the swap (a hard
	// link), "" when it keeps none: the swap's rename then drops it.
	keep func(r *rewriter) (string, error)
	// redoFinished: a finished new file found beside the store (a kill
	// between its last commit and the swap) is written again rather than
	// swapped in, as its source may have been written to since.
	redoFinished bool
	// prepare, when set, runs on the old file's read transaction before
	// anything is written, and gives the records to merge into the copy
	// (a bulk load's new domains, load.go). A rewrite with records of its
	// own is never carried on: they are gone with the process that made
	// them.
	prepare func(otx *bolt.Tx) (*merged, error)
}

// The new file's meta keys that hold a rewrite's position; the last
// transaction deletes them, so a finished file has none.
var (
	keyUpgradeFrom   = []byte("upgrade_from")   // the old file's schema version
	keyUpgradeSource = []byte("upgrade_source") // the old file's last transaction id
	keyUpgradeBucket = []byte("upgrade_bucket") // bucket of the last record done
	keyUpgradeKey    = []byte("upgrade_key")    // its key
	keyUpgradeDone   = []byte("upgrade_done")   // records done so far
	positionKeys     = [][]byte{keyUpgradeFrom, keyUpgradeSource, keyUpgradeBucket, keyUpgradeKey, keyUpgradeDone}
)

// DefaultUpgradeChunk is how many old records one transaction of the new
// file takes: large enough that its fsync is cheap per record, small enough
// that a killed rewrite loses little work and memory stays flat.
const DefaultUpgradeChunk = 4096

// UpgradeOptions tune Upgrade (and Compact, through CompactOptions).
type UpgradeOptions struct {
	// Chunk is the number of old records per transaction of the new file
	// (DefaultUpgradeChunk when zero).
	Chunk int
	// Timeout bounds the wait for the locks of the old and the new file.
	Timeout time.Duration
	// NoWait fails at once when another process holds the store, as
	// Options.NoWait does: a daemon holds it for as long as it runs.
	NoWait bool
	// Progress, when set, is called after each chunk is committed.
	Progress func(UpgradeProgress)
	// FreeSpace tells the bytes free for an unprivileged writer in dir;
	// statfs when nil. Tests stand in for a full disk with it.
	FreeSpace func(dir string) (uint64, error)
}

// UpgradeProgress is where a rewrite stands.
type UpgradeProgress struct {
	Bucket      string // the bucket being copied
	Done, Total int64  // old records converted, of all
}

// Upgraded says what Upgrade did.
type Upgraded struct {
	From      uint64 // the old file's schema version; 0 when nothing was upgraded
	Total     int64  // records in the old file
	Converted int64  // records converted by this call (less than Total when resumed)
	Resumed   bool   // a killed upgrade's file was carried on
	Backup    string // where the old file now is
	OldSize   int64  // bytes
	NewSize   int64
}

// SchemaOf reads a store file's schema version without changing it; 0
// when there is no file. It waits up to timeout for a writer's lock.
func SchemaOf(path string, timeout time.Duration) (uint64, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	old, err := openOld(path, timeout)
	if err != nil {
		return 0, err
	}
	defer old.Close()
	var v uint64
	err = guard(path, func() error {
		return old.View(func(tx *bolt.Tx) (err error) {
			v, err = schemaIn(tx)
			return err
		})
	})
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", path, err)
	}
	return v, nil
}

// waitedFor is the tail of a lock error: how long it waited, and why the
// lock may be held.
func waitedFor(timeout time.Duration, why string) string {
	if timeout < time.Millisecond { // one try (NoWait)
		return why
	}
	return fmt.Sprintf(" (waited %s for its lock)%s", timeout, why)
}

func schemaIn(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, errors.New("not an errpd store (no meta bucket)")
	}
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return 0, errors.New("not an errpd store (no schema version)")
	}
	return binary.BigEndian.Uint64(v), nil
}

// openOld opens the old file read-only: its shared lock keeps errpd
// writers (of any version) out while the rewrite reads it.
func openOld(path string, timeout time.Duration) (*bolt.DB, error) {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if err := checkFile(path, timeout); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, lockedError(path, waitedFor(timeout, ""))
		}
		return nil, err
	}
	var b *bolt.DB
	err := guard(path, func() (err error) {
		b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true, PreLoadFreelist: true})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, lockedError(path, waitedFor(timeout, ""))
	}
	if err != nil && !errors.As(err, new(*DamagedError)) {
		err = fmt.Errorf("store %s: %w", path, err)
	}
	return b, err
}

// rewriteFile rewrites the store at path as kind says, when kind accepts
// its schema; a missing file is left alone (From 0). The new file is
// written beside the old one (PATH+kind.suffix), in transactions of
// o.Chunk records, each through kind.convert; then it is synced, the old
// file gets the name kind.keep gives it, and the new one takes its name.
// Killed at any point, the next run resumes where the last committed chunk
// ended.
func rewriteFile(path string, o UpgradeOptions, kind rewriteKind) (Upgraded, error) {
	if o.Chunk <= 0 {
		o.Chunk = DefaultUpgradeChunk
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.NoWait {
		o.Timeout = time.Nanosecond // one try: below bbolt's and lockShared's retry interval
	}
	if o.FreeSpace == nil {
		o.FreeSpace = freeSpace
	}
	// Stat before open: if another rewrite swaps the names in between,
	// the file opened is the new one, which needs nothing.
	oldStat, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Upgraded{}, nil
	}
	unlock, err := lockRewrites(path, o.Timeout)
	if err != nil {
		return Upgraded{}, err
	}
	defer unlock()
	// No load runs while the lock is held, and a load is never carried
	// on: a new file one left (killed) is dropped, by whichever rewrite
	// comes next (errpd serve checks the schema through here at start).
	if err := os.Remove(path + loadSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Upgraded{}, fmt.Errorf("store %s: %w", path, err)
	}
	old, err := openOld(path, o.Timeout)
	if err != nil {
		return Upgraded{}, err
	}
	defer old.Close()
	r := &rewriter{kind: kind, path: path, newPath: path + kind.suffix, o: o, old: old, oldStat: oldStat}
	err = guard(path, func() error {
		return old.View(func(tx *bolt.Tx) error {
			r.otx = tx
			return r.run()
		})
	})
	if err != nil {
		return r.res, err
	}
	return r.res, nil
}

// lockRewrites takes the lock that lets one rewrite of the store at path
// run at a time, whatever its kind: PATH.rewrite.lock, held for the whole
// rewrite and removed after. Each rewrite holds the old file with a shared
// lock only, so that readers go on; without this, a compaction could swap
// a new file in under a bulk load, which would then swap its own over it
// (and over what a daemon started on the compacted file wrote meanwhile).
// A lock taken on a file removed meanwhile is taken again, on the file now
// there.
func lockRewrites(path string, timeout time.Duration) (unlock func(), err error) {
	name := path + ".rewrite.lock"
	for end := time.Now().Add(timeout); ; {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
		err = lockExclusive(f, time.Until(end))
		if errors.Is(err, ErrLocked) {
			f.Close()
			return nil, fmt.Errorf("store %s: %w: another errpd is rewriting it (compact, migrate or import --bulk)%s",
				path, ErrLocked, waitedFor(timeout, ""))
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
		held, _ := f.Stat()
		now, err := os.Stat(name)
		if err == nil && os.SameFile(held, now) {
			return func() { os.Remove(name); f.Close() }, nil
		}
		f.Close() // its holder removed it before letting go: try the one there now
	}
}

// errRewritten stops a rewrite with records of its own (a bulk load)
// that finds the store rewritten by another while it prepared them.
var errRewritten = errors.New("the store was rewritten by another errpd meanwhile; nothing was written: run it again")

// rewriter is one run of rewriteFile.
type rewriter struct {
	kind          rewriteKind
	path, newPath string
	o             UpgradeOptions
	old           *bolt.DB
	oldStat       fs.FileInfo // the old file as opened, to notice a swap by another rewrite
	otx           *bolt.Tx    // one read transaction over the whole copy
	extra         *merged     // records merged into the copy (kind.prepare); nil for none
	new           *bolt.DB
	res           Upgraded
}

func (r *rewriter) run() (err error) {
	from, err := schemaIn(r.otx)
	if err != nil {
		return fmt.Errorf("store %s: %w", r.path, err)
	}
	if from > SchemaVersion {
		return fmt.Errorf("store %s: schema version %d is newer than this errpd's %d: upgrade errpd", r.path, from, SchemaVersion)
	}
	if ok, err := r.kind.accept(r.path, from); err != nil || !ok {
		return err
	}
	r.res.OldSize = r.oldStat.Size()
	if err := r.checkRoom(); err != nil {
		return err
	}
	if r.kind.prepare != nil {
		if r.extra, err = r.kind.prepare(r.otx); err != nil {
			return err
		}
		defer r.extra.cancel()
		if err := r.checkRoom(); err != nil { // with the records prepared
			return err
		}
	}
	if err := r.openNew(); err != nil {
		return err
	}
	defer func() {
		if r.new == nil {
			return
		}
		r.new.Close()
		if err != nil && r.extra != nil {
			// Records of its own are never carried on: the half file is
			// of no use to the next run.
			os.Remove(r.newPath)
		}
	}()
	if same, err := r.stillOld(); err != nil || !same {
		if err == nil && r.extra != nil {
			err = fmt.Errorf("store %s: %w", r.path, errRewritten)
		}
		return err
	}
	// (A load's new file is new: rewriteFile dropped any left by a kill.)
	pos, err := r.position(from)
	if err != nil {
		return err
	}
	if pos.stale || (pos.finished && r.kind.redoFinished) {
		if pos, err = r.startAfresh(); err != nil {
			return err
		}
	}
	r.res.From, r.res.Resumed = from, pos.done > 0 || pos.finished
	if !pos.finished {
		if err := r.copy(pos); err != nil {
			return err
		}
	}
	return r.swap()
}

// checkRoom refuses to start when the disk cannot take the new file. Its
// size is estimated as the old file's pages in use (a converted or
// compacted record is never larger than the old one), less what a killed
// run has written already.
func (r *rewriter) checkRoom() error {
	need := r.otx.Size() + r.extra.bytes()
	if fi, err := os.Stat(r.newPath); err == nil {
		need -= fi.Size()
	}
	dir := filepath.Dir(r.path)
	free, err := r.o.FreeSpace(dir)
	if err != nil {
		return fmt.Errorf("store %s: free space in %s: %w", r.path, dir, err)
	}
	if need > 0 && free < uint64(need) {
		return fmt.Errorf("store %s: %s it needs about %d MB free in %s for the new file (the size of the old one), "+
			"only %d MB are free: free some space there and run it again; the old file is unchanged",
			r.path, r.kind.verb, (need+1<<20-1)>>20, dir, free>>20)
	}
	return nil
}

func freeSpace(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// openNew opens (or creates) the new file, holding its lock: two rewrites
// of one store take turns on it. A file damaged there (a power cut
// mid-write) holds nothing the old file does not: it starts afresh.
func (r *rewriter) openNew() error {
	busy := fmt.Sprintf(": another errpd is %s the store", r.kind.verb)
	if err := checkFile(r.newPath, r.o.Timeout); errors.As(err, new(*DamagedError)) {
		if err := os.Remove(r.newPath); err != nil {
			return fmt.Errorf("store %s: removing the damaged %s: %w", r.path, r.newPath, err)
		}
	} else if errors.Is(err, ErrLocked) {
		return lockedError(r.newPath, waitedFor(r.o.Timeout, busy))
	} else if err != nil {
		return err
	}
	err := guard(r.newPath, func() (err error) {
		r.new, err = bolt.Open(r.newPath, 0o600, &bolt.Options{Timeout: r.o.Timeout, PreLoadFreelist: true})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return lockedError(r.newPath, waitedFor(r.o.Timeout, busy))
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", r.newPath, err)
	}
	return nil
}

// startAfresh drops a new file that cannot be carried on and creates an
// empty one in its place. Its lock is let go in between; another rewrite
// that takes it meanwhile makes this one stop.
func (r *rewriter) startAfresh() (rewritePos, error) {
	r.new.Close()
	r.new = nil
	if err := os.Remove(r.newPath); err != nil {
		return rewritePos{}, fmt.Errorf("store %s: removing the out-of-date %s: %w", r.path, r.newPath, err)
	}
	if err := r.openNew(); err != nil {
		return rewritePos{}, err
	}
	return rewritePos{}, nil
}

// stillOld checks, once the new file's lock is held, that the old file is
// still at path: a rewrite that waited for another one's lock finds the
// store rewritten already, and leaves it (the file it holds under the new
// name is then the other's result under its new name).
func (r *rewriter) stillOld() (bool, error) {
	now, err := os.Stat(r.path)
	if err != nil {
		return false, fmt.Errorf("store %s: %w", r.path, err)
	}
	return os.SameFile(now, r.oldStat), nil
}

// rewritePos is where a killed rewrite stopped: the last record done.
type rewritePos struct {
	bucket, key []byte // nil: nothing done yet
	done        int64
	finished    bool // all copied and the position cleared: only the swap is left
	stale       bool // written from another state of the old file: of no use
}

// position reads the new file's position; an empty new file starts at
// the beginning.
func (r *rewriter) position(from uint64) (rewritePos, error) {
	var p rewritePos
	err := r.new.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil
		}
		f := meta.Get(keyUpgradeFrom)
		if f == nil {
			// Every chunk writes the position with its records; a file
			// without one that has a meta bucket has finished its copy.
			v, err := schemaIn(tx)
			if err != nil || v != SchemaVersion {
				return fmt.Errorf("%s is neither a rewrite in progress nor a finished one (%v, schema %d): move it away and run again", r.newPath, err, v)
			}
			p.finished = true
			return nil
		}
		if len(f) != 8 || binary.BigEndian.Uint64(f) != from {
			return fmt.Errorf("%s is a rewrite from another schema than the store's %d: move it away and run again", r.newPath, from)
		}
		// The old file written to since (a daemon ran between two runs):
		// what was copied is out of date.
		if !bytes.Equal(meta.Get(keyUpgradeSource), u64(uint64(r.otx.ID()))) {
			p.stale = true
			return nil
		}
		p.bucket = bytes.Clone(meta.Get(keyUpgradeBucket))
		p.key = bytes.Clone(meta.Get(keyUpgradeKey))
		if d := meta.Get(keyUpgradeDone); len(d) == 8 {
			p.done = int64(binary.BigEndian.Uint64(d))
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("store %s: %w", r.path, err)
	}
	return p, nil
}

// copy converts every old record after pos, bucket by bucket in name
// order and each bucket in key order, a chunk per transaction.
func (r *rewriter) copy(pos rewritePos) error {
	names, total, err := r.oldBuckets()
	if err != nil {
		return err
	}
	if err := r.extra.within(names); err != nil {
		return fmt.Errorf("store %s: %w", r.path, err)
	}
	r.res.Total = total
	w := &chunkWriter{r: r, from: r.res.From, done: pos.done, total: total}
	defer w.rollback()
	for _, name := range names {
		if pos.bucket != nil && bytes.Compare(name, pos.bucket) < 0 {
			continue // done before the kill
		}
		var after []byte
		if bytes.Equal(name, pos.bucket) {
			after = pos.key
		}
		if err := w.copyBucket(name, after); err != nil {
			return fmt.Errorf("store %s: %s bucket %s: %w", r.path, r.kind.verb, name, err)
		}
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("store %s: %w", r.newPath, err)
	}
	r.res.Converted = w.done - pos.done
	return nil
}

// oldBuckets lists the old file's buckets in name order and counts their
// records, for the progress.
func (r *rewriter) oldBuckets() ([][]byte, int64, error) {
	var names [][]byte
	var total int64
	err := r.otx.ForEach(func(name []byte, b *bolt.Bucket) error {
		names = append(names, bytes.Clone(name))
		if x := r.extra.of(name); x.replace {
			total += int64(x.n)
		} else {
			total += int64(b.Stats().KeyN) + int64(x.n)
		}
		return nil
	})
	return names, total, err
}

// chunkWriter writes the converted records into the new file, committing
// after every Chunk old records along with the position reached.
type chunkWriter struct {
	r           *rewriter
	from        uint64
	tx          *bolt.Tx
	buckets     map[string]*appendBucket // touched in tx
	n           int                      // old records in tx
	done, total int64
}

// appendBucket is a bucket of the new file within one transaction: while
// the keys put arrive above its last one, its pages are filled whole.
type appendBucket struct {
	b    *bolt.Bucket
	last []byte
}

func (w *chunkWriter) begin() error {
	if w.tx != nil {
		return nil
	}
	tx, err := w.r.new.Begin(true)
	if err != nil {
		return err
	}
	w.tx, w.buckets, w.n = tx, map[string]*appendBucket{}, 0
	return nil
}

func (w *chunkWriter) rollback() {
	if w.tx != nil {
		w.tx.Rollback()
		w.tx = nil
	}
}

// copyBucket converts the records of the old bucket name that sort after
// after (all of them when nil).
func (w *chunkWriter) copyBucket(name, after []byte) error {
	ob := w.r.otx.Bucket(name)
	if err := w.begin(); err != nil {
		return err
	}
	// The bucket and its sequence (the audit trail's next number) go over
	// as they are, also when it holds no records.
	nb, err := w.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	x := w.r.extra.of(name)
	if err := x.wait(); err != nil {
		return err
	}
	if err := nb.SetSequence(max(ob.Sequence(), x.seq)); err != nil {
		return err
	}
	c := ob.Cursor()
	k, v := seekAfter(c, nil, after)
	if x.replace {
		k = nil // the merged records are the whole bucket
	}
	for k != nil || x.more() {
		xk, xv, take := x.before(k)
		if take {
			if err := w.put(name, xk, xv); err != nil {
				return err
			}
			continue
		}
		if xk != nil {
			return fmt.Errorf("key %q: in the store already, and among the records added", k)
		}
		if v == nil {
			return fmt.Errorf("key %q: a nested bucket, which schema %d does not have", k, w.from)
		}
		if err := w.put(name, k, v); err != nil {
			return err
		}
		k, v = c.Next()
	}
	return nil
}

// put converts one old record and commits the chunk when it is full.
func (w *chunkWriter) put(bucket, k, v []byte) error {
	if err := w.begin(); err != nil {
		return err
	}
	if err := w.r.kind.convert(bucket, k, v, w.emit); err != nil {
		return fmt.Errorf("key %q: %w", k, err)
	}
	w.n++
	w.done++
	if w.n < w.r.o.Chunk {
		return nil
	}
	return w.commit(bucket, k)
}

// emit is the conversion's output: one record of the new file.
func (w *chunkWriter) emit(bucket, k, v []byte) error {
	ab := w.buckets[string(bucket)]
	if ab == nil {
		b, err := w.tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		ab = &appendBucket{b: b}
		ab.last, _ = b.Cursor().Last()
		b.FillPercent = 1.0
		w.buckets[string(bucket)] = ab
	}
	if !w.r.kind.inOrder && ab.last != nil && bytes.Compare(k, ab.last) <= 0 {
		ab.b.FillPercent = bolt.DefaultFillPercent // not appended: leave room, as bbolt does
	}
	ab.last = k
	return ab.b.Put(k, v)
}

// commit writes the position (the last old record done) with the chunk.
func (w *chunkWriter) commit(bucket, k []byte) error {
	meta, err := w.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	for _, kv := range [][2][]byte{{keyUpgradeFrom, u64(w.from)}, {keyUpgradeSource, u64(uint64(w.r.otx.ID()))},
		{keyUpgradeBucket, bucket}, {keyUpgradeKey, k}, {keyUpgradeDone, u64(uint64(w.done))}} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	err = w.tx.Commit()
	w.tx = nil
	if err != nil {
		return err
	}
	if w.r.o.Progress != nil {
		w.r.o.Progress(UpgradeProgress{Bucket: string(bucket), Done: w.done, Total: w.total})
	}
	return nil
}

// finish commits the last records with what a store opened by this errpd
// expects (every bucket) and the schema version, and
// clears the position: the file is complete.
func (w *chunkWriter) finish() error {
	if err := w.begin(); err != nil {
		return err
	}
	// The schema version is written last, in the transaction that clears
	// the position: a file cut short never passes for a finished one.
	meta, err := w.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keySchema, u64(SchemaVersion)); err != nil {
		return err
	}
	db := &DB{path: w.r.newPath}
	if err := db.init(w.tx); err != nil {
		return fmt.Errorf("after conversion: %w", err)
	}
	for _, k := range positionKeys {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	err = w.tx.Commit()
	w.tx = nil
	if err == nil && w.r.o.Progress != nil {
		w.r.o.Progress(UpgradeProgress{Done: w.done, Total: w.total})
	}
	return err
}

// swap puts the new file in the old one's place: synced first, the old
// file linked to the name it keeps (never over an existing file), then
// the new one renamed over the store's name and the directory synced. At
// every instant the store's name holds a whole store, old or new.
func (r *rewriter) swap() error {
	if err := r.new.Sync(); err != nil {
		return fmt.Errorf("store %s: %w", r.newPath, err)
	}
	kept, err := r.kind.keep(r)
	if err != nil {
		return err
	}
	if err := os.Rename(r.newPath, r.path); err != nil {
		return fmt.Errorf("store %s: putting the new file in place: %w", r.path, err)
	}
	if err := syncDir(filepath.Dir(r.path)); err != nil {
		return fmt.Errorf("store %s: %w", r.path, err)
	}
	r.res.Backup = kept
	if fi, err := os.Stat(r.path); err == nil {
		r.res.NewSize = fi.Size()
	}
	return nil
}

// linkOld gives the old file the name name by a hard link, which fails
// rather than replace a file there; true when name holds it now, also
// from a killed swap's link. False, nil: another file has that name.
func (r *rewriter) linkOld(name string) (bool, error) {
	err := os.Link(r.path, name)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, fmt.Errorf("store %s: keeping the old file as %s: %w", r.path, name, err)
	}
	fi, err := os.Stat(name)
	return err == nil && os.SameFile(fi, r.oldStat), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
