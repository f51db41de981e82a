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

// An older store is upgraded by writing its successor beside it, record by
// record in key order, and swapping the two names at the end. The old file
// is never written: it stays beside the new one as the backup
// (PATH.schema1-backup). A killed upgrade leaves PATH.upgrading with its
// position in its meta bucket, and the next Upgrade carries on from there.

// OldSchemaError is Open's answer for a file written by an older errpd:
// it must be upgraded (Upgrade; `errpd migrate`) before it is used.
type OldSchemaError struct {
	Path    string
	Version uint64
}

func (e *OldSchemaError) Error() string {
	return fmt.Sprintf("store %s has schema version %d, this errpd needs %d: upgrade it with `errpd migrate` "+
		"(errpd serve and errpd import also do it on start); the old file stays beside it as %s",
		e.Path, e.Version, SchemaVersion, backupName(e.Path, e.Version, 0))
}

// Suffixes of the files an upgrade writes beside the store.
const upgradingSuffix = ".upgrading"

// The new file's meta keys that hold an upgrade's position; the last
// transaction deletes them, so a finished file has none.
var (
	keyUpgradeFrom   = []byte("upgrade_from")   // the old file's schema version
	keyUpgradeBucket = []byte("upgrade_bucket") // bucket of the last record done
	keyUpgradeKey    = []byte("upgrade_key")    // its key
	keyUpgradeDone   = []byte("upgrade_done")   // records done so far
)

// DefaultUpgradeChunk is how many old records one transaction of the new
// file takes: large enough that its fsync is cheap per record, small enough
// that a killed upgrade loses little work and memory stays flat.
const DefaultUpgradeChunk = 4096

// UpgradeOptions tune Upgrade.
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

// UpgradeProgress is where an upgrade stands.
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
// writers (of any version) out while the upgrade reads it.
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

// Upgrade rewrites the store at path in this errpd's schema, when it holds
// an older one; a missing file or a current one is left alone (From 0).
// The new file is written beside the old one (PATH.upgrading), in
// transactions of o.Chunk records, each through upgradeV1; then it is
// synced, the old file is kept as PATH.schemaN-backup (another name if
// that is taken: a backup is never overwritten) and the new one takes its
// name. Killed at any point, the next Upgrade resumes where the last
// committed chunk ended.
func Upgrade(path string, o UpgradeOptions) (Upgraded, error) {
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
	// Stat before open: if another upgrade swaps the names in between,
	// the file opened is the new one, whose schema needs nothing.
	oldStat, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Upgraded{}, nil
	}
	old, err := openOld(path, o.Timeout)
	if err != nil {
		return Upgraded{}, err
	}
	defer old.Close()
	u := &upgrade{path: path, newPath: path + upgradingSuffix, o: o, old: old, oldStat: oldStat}
	err = guard(path, func() error {
		return old.View(func(tx *bolt.Tx) error {
			u.otx = tx
			return u.run()
		})
	})
	if err != nil {
		return u.res, err
	}
	return u.res, nil
}

// upgrade is one run of Upgrade.
type upgrade struct {
	path, newPath string
	o             UpgradeOptions
	old           *bolt.DB
	oldStat       fs.FileInfo // the old file as opened, to notice a swap by another upgrade
	otx           *bolt.Tx    // one read transaction over the whole copy
	new           *bolt.DB
	res           Upgraded
}

func (u *upgrade) run() error {
	from, err := schemaIn(u.otx)
	if err != nil {
		return fmt.Errorf("store %s: %w", u.path, err)
	}
	if from > SchemaVersion {
		return fmt.Errorf("store %s: schema version %d is newer than this errpd's %d: upgrade errpd", u.path, from, SchemaVersion)
	}
	if from == SchemaVersion {
		return nil
	}
	if from != 1 {
		return fmt.Errorf("store %s: schema version %d cannot be upgraded by this errpd (it upgrades version 1)", u.path, from)
	}
	u.res.OldSize = u.otx.Size()
	if err := u.checkRoom(); err != nil {
		return err
	}
	if err := u.openNew(); err != nil {
		return err
	}
	defer func() {
		if u.new != nil {
			u.new.Close()
		}
	}()
	if same, err := u.stillOld(); err != nil || !same {
		return err
	}
	pos, err := u.position(from)
	if err != nil {
		return err
	}
	u.res.From, u.res.Resumed = from, pos.done > 0 || pos.finished
	if !pos.finished {
		if err := u.copy(pos); err != nil {
			return err
		}
	}
	return u.swap()
}

// checkRoom refuses to start when the disk cannot take the new file. Its
// size is estimated as the old file's (a converted record is never larger
// than the old one), less what a killed run has written already.
func (u *upgrade) checkRoom() error {
	need := u.res.OldSize
	if fi, err := os.Stat(u.newPath); err == nil {
		need -= fi.Size()
	}
	dir := filepath.Dir(u.path)
	free, err := u.o.FreeSpace(dir)
	if err != nil {
		return fmt.Errorf("store %s: free space in %s: %w", u.path, dir, err)
	}
	if need > 0 && free < uint64(need) {
		return fmt.Errorf("store %s: upgrading it needs about %d MB free in %s for the new file (the size of the old one), "+
			"only %d MB are free: free some space there and run it again; the old file is unchanged",
			u.path, (need+1<<20-1)>>20, dir, free>>20)
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

// openNew opens (or creates) PATH.upgrading, holding its lock: two
// upgrades of one store take turns on it. A file damaged there (a power
// cut mid-write) holds nothing the old file does not: it starts afresh.
func (u *upgrade) openNew() error {
	if err := checkFile(u.newPath, u.o.Timeout); errors.As(err, new(*DamagedError)) {
		if err := os.Remove(u.newPath); err != nil {
			return fmt.Errorf("store %s: removing the damaged %s: %w", u.path, u.newPath, err)
		}
	} else if errors.Is(err, ErrLocked) {
		return lockedError(u.newPath, waitedFor(u.o.Timeout, ": another errpd is upgrading the store"))
	} else if err != nil {
		return err
	}
	err := guard(u.newPath, func() (err error) {
		u.new, err = bolt.Open(u.newPath, 0o600, &bolt.Options{Timeout: u.o.Timeout, PreLoadFreelist: true})
		return err
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return lockedError(u.newPath, waitedFor(u.o.Timeout, ": another errpd is upgrading the store"))
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", u.newPath, err)
	}
	return nil
}

// stillOld checks, once the new file's lock is held, that the old file is
// still at path: an upgrade that waited for another one's lock finds the
// store upgraded already, and leaves it (the file it holds as
// PATH.upgrading is then the other's result under its new name).
func (u *upgrade) stillOld() (bool, error) {
	now, err := os.Stat(u.path)
	if err != nil {
		return false, fmt.Errorf("store %s: %w", u.path, err)
	}
	return os.SameFile(now, u.oldStat), nil
}

// upgradePos is where a killed upgrade stopped: the last record done.
type upgradePos struct {
	bucket, key []byte // nil: nothing done yet
	done        int64
	finished    bool // all copied and the position cleared: only the swap is left
}

// position reads the new file's position; an empty new file starts at
// the beginning.
func (u *upgrade) position(from uint64) (upgradePos, error) {
	var p upgradePos
	err := u.new.View(func(tx *bolt.Tx) error {
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
				return fmt.Errorf("%s is neither an upgrade in progress nor a finished one (%v, schema %d): move it away and run again", u.newPath, err, v)
			}
			p.finished = true
			return nil
		}
		if len(f) != 8 || binary.BigEndian.Uint64(f) != from {
			return fmt.Errorf("%s is an upgrade from another schema than the store's %d: move it away and run again", u.newPath, from)
		}
		p.bucket = bytes.Clone(meta.Get(keyUpgradeBucket))
		p.key = bytes.Clone(meta.Get(keyUpgradeKey))
		if d := meta.Get(keyUpgradeDone); len(d) == 8 {
			p.done = int64(binary.BigEndian.Uint64(d))
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("store %s: %w", u.path, err)
	}
	return p, nil
}

// copy converts every old record after pos, bucket by bucket in name
// order and each bucket in key order, a chunk per transaction.
func (u *upgrade) copy(pos upgradePos) error {
	names, total, err := u.oldBuckets()
	if err != nil {
		return err
	}
	u.res.Total = total
	w := &chunkWriter{u: u, from: u.res.From, done: pos.done, total: total}
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
			return fmt.Errorf("store %s: upgrading bucket %s: %w", u.path, name, err)
		}
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("store %s: %w", u.newPath, err)
	}
	u.res.Converted = w.done - pos.done
	return nil
}

// oldBuckets lists the old file's buckets in name order and counts their
// records, for the progress.
func (u *upgrade) oldBuckets() ([][]byte, int64, error) {
	var names [][]byte
	var total int64
	err := u.otx.ForEach(func(name []byte, b *bolt.Bucket) error {
		names = append(names, bytes.Clone(name))
		total += int64(b.Stats().KeyN)
		return nil
	})
	return names, total, err
}

// chunkWriter writes the converted records into the new file, committing
// after every Chunk old records along with the position reached.
type chunkWriter struct {
	u           *upgrade
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
	tx, err := w.u.new.Begin(true)
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
	ob := w.u.otx.Bucket(name)
	if err := w.begin(); err != nil {
		return err
	}
	// The bucket and its sequence (the audit trail's next number) go over
	// as they are, also when it holds no records.
	nb, err := w.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return err
	}
	if err := nb.SetSequence(ob.Sequence()); err != nil {
		return err
	}
	c := ob.Cursor()
	k, v := c.First()
	if after != nil {
		if k, v = c.Seek(after); bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if v == nil {
			return fmt.Errorf("key %q: a nested bucket, which schema %d does not have", k, w.from)
		}
		if err := w.put(name, k, v); err != nil {
			return err
		}
	}
	return nil
}

// put converts one old record and commits the chunk when it is full.
func (w *chunkWriter) put(bucket, k, v []byte) error {
	if err := w.begin(); err != nil {
		return err
	}
	if err := upgradeV1(bucket, k, v, w.emit); err != nil {
		return fmt.Errorf("key %q: %w", k, err)
	}
	w.n++
	w.done++
	if w.n < w.u.o.Chunk {
		return nil
	}
	return w.commit(bucket, k)
}

// emit is upgradeV1's output: one record of the new file.
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
	if ab.last != nil && bytes.Compare(k, ab.last) <= 0 {
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
	for _, kv := range [][2][]byte{{keyUpgradeFrom, u64(w.from)}, {keyUpgradeBucket, bucket}, {keyUpgradeKey, k},
		{keyUpgradeDone, u64(uint64(w.done))}} {
		if err := meta.Put(kv[0], kv[1]); err != nil {
			return err
		}
	}
	err = w.tx.Commit()
	w.tx = nil
	if err != nil {
		return err
	}
	if w.u.o.Progress != nil {
		w.u.o.Progress(UpgradeProgress{Bucket: string(bucket), Done: w.done, Total: w.total})
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
	// the position: a file cut short never passes for an upgraded one.
	meta, err := w.tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keySchema, u64(SchemaVersion)); err != nil {
		return err
	}
	db := &DB{path: w.u.newPath}
	if err := db.init(w.tx); err != nil {
		return fmt.Errorf("after conversion: %w", err)
	}
	for _, k := range [][]byte{keyUpgradeFrom, keyUpgradeBucket, keyUpgradeKey, keyUpgradeDone} {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	err = w.tx.Commit()
	w.tx = nil
	if err == nil && w.u.o.Progress != nil {
		w.u.o.Progress(UpgradeProgress{Done: w.done, Total: w.total})
	}
	return err
}

// swap puts the new file in the old one's place: synced first, the old
// file linked to its backup name (never over an existing file), then the
// new one renamed over the store's name and the directory synced. At
// every instant the store's name holds a whole store, old or new.
func (u *upgrade) swap() error {
	if err := u.new.Sync(); err != nil {
		return fmt.Errorf("store %s: %w", u.newPath, err)
	}
	backup, err := u.keepBackup()
	if err != nil {
		return err
	}
	if err := os.Rename(u.newPath, u.path); err != nil {
		return fmt.Errorf("store %s: putting the upgraded file in place: %w", u.path, err)
	}
	if err := syncDir(filepath.Dir(u.path)); err != nil {
		return fmt.Errorf("store %s: %w", u.path, err)
	}
	u.res.Backup = backup
	if fi, err := os.Stat(u.path); err == nil {
		u.res.NewSize = fi.Size()
	}
	return nil
}

// keepBackup gives the old file its backup name by a hard link, which
// fails rather than replace a file there: a backup already there (from an
// earlier upgrade) is kept, and the next free name taken. A link left by
// a killed swap is found and used.
func (u *upgrade) keepBackup() (string, error) {
	for i := 0; i < 100; i++ {
		name := backupName(u.path, u.res.From, i)
		err := os.Link(u.path, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("store %s: keeping the old file as %s: %w", u.path, name, err)
		}
		if fi, err := os.Stat(name); err == nil && os.SameFile(fi, u.oldStat) {
			return name, nil
		}
	}
	return "", fmt.Errorf("store %s: no free backup name beside it (%s and 99 more are taken)", u.path, backupName(u.path, u.res.From, 0))
}

// backupName is PATH.schemaN-backup, and PATH.schemaN-backup.I after it.
func backupName(path string, from uint64, i int) string {
	name := fmt.Sprintf("%s.schema%d-backup", path, from)
	if i > 0 {
		name += fmt.Sprintf(".%d", i+1)
	}
	return name
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
