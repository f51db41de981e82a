// Package store keeps errpd's state in one bbolt file: the domains of the
// calendar, their cycles (one per expiry), the steps of each cycle with their
// state, a due index keyed by send time, read indexes by deadline and by
// TLD (for reports), the exact bytes of every message sent, and the
// hash-chained audit trail. Every bucket is created at open; keys are
// sortable; values are in the protobuf wire format
// (docs/store_encoding.md), which `protoc --decode_raw` reads.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout of the buckets below. Open refuses a file
// written by a newer errpd, and one written by an older one until it is
// upgraded (Upgrade, store/upgrade_file.go). Schema 2 (docs/store_encoding.md): values in the protobuf wire
// format, step and cycle keys binary (keys.go), compact audit records;
// schema 1 wrote JSON values and the string ids as keys.
const SchemaVersion = 2

var (
	bucketMeta = []byte("meta") // schema version, audit chain head
	// A StepID or CycleKey in a key or value below is its key (keys.go).
	bucketDomains  = []byte("domains")  // A-label -> Domain
	bucketCycles   = []byte("cycles")   // CycleKey -> Cycle
	bucketSteps    = []byte("steps")    // StepID -> Step
	bucketDue      = []byte("due")      // send_at (8 bytes, big-endian unix seconds) + StepID -> ""
	bucketMessages = []byte("messages") // StepID -> Message (compressed raw bytes)
	bucketAudit    = []byte("audit")    // sequence (8 bytes, big-endian) -> Record
	bucketInbox    = []byte("inbox")    // Ascio message id -> time applied
	bucketUploads  = []byte("uploads")  // next upload attempt (8 bytes) + StepID -> "", for sent steps
	bucketActive   = []byte("active")   // StepID -> "", for steps sending, uploading or in doubt
	bucketCounts   = []byte("counts")   // state -> number of steps in it (8 bytes)
	// bucketVERP (store/bounce.go): ShortID -> StepID, for bounces
	// bucketFlagged (store/flagged.go): A-label -> "", the flagged domains
	// bucketDeadline, bucketTLD (store/deadline.go): the read indexes,
	// created by initReadIndexes, which must see whether they existed

	allBuckets = [][]byte{bucketMeta, bucketDomains, bucketCycles, bucketSteps, bucketDue, bucketMessages,
		bucketAudit, bucketInbox, bucketUploads, bucketActive, bucketCounts, bucketVERP, bucketFlagged}

	keySchema = []byte("schema_version")
)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("store is in use by another errpd process")

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock held by another process.
	Timeout time.Duration
	// NoWait fails at once when another process holds the lock: a daemon
	// holds it for as long as it runs, so waiting for it is pointless.
	NoWait bool
	// ReadOnly opens the file with a shared lock, for readers.
	ReadOnly bool
	// Now is the clock used to stamp records; time.Now when nil.
	Now func() time.Time
	// NoSync skips fsync; only for benchmarks and tests of throughput.
	NoSync bool
	// WriteFault, when set, is asked before each group commit; an error
	// fails that commit for all its writers, as a full disk would. Tests
	// use it to exercise store write failures anywhere.
	WriteFault func() error
	// TxSteps, when set, is told after each transaction of Update and View
	// how many steps it read by id (Tx.Step and what builds on it: Due,
	// the sweep, Active). Tests hold the daemon's scans to bounded chunks
	// with it.
	TxSteps func(read int)
}

// DB is an open store.
type DB struct {
	bolt   *bolt.DB
	path   string // as given to Open, for errors
	now    func() time.Time
	commit *committer // nil when read-only
	fault  func() error
	// txSteps is Options.TxSteps.
	txSteps func(int)
}

// Open opens the store at path, creating it if no file is there. A file
// that is there but does not hold together (empty, truncated, a damaged
// meta page) is refused with a *DamagedError.
func Open(path string, o Options) (*DB, error) {
	// A rewrite (errpd compact, migrate) that renames its new file over
	// the store while Open waits for the old file's lock leaves it holding
	// a file no longer at path, whose writes would be lost: it opens again
	// the file now there.
	for i := 0; ; i++ {
		db, err := open(path, o)
		if !errors.Is(err, errReplaced) || i == 2 {
			return db, err
		}
	}
}

// errReplaced is open's: another file took path while it waited.
var errReplaced = errors.New("the file was replaced while errpd waited for its lock")

func open(path string, o Options) (*DB, error) {
	opened, _ := os.Stat(path) // nil: no file yet
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	if o.ReadOnly {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("store %s does not exist yet (errpd import or errpd serve creates it; is --config the daemon's?)", path)
		}
	}
	// A daemon holds the lock for as long as it runs: with NoWait, one
	// try at once, else up to Timeout.
	wait, waited := o.Timeout, fmt.Sprintf(" (waited %s for its lock)", o.Timeout)
	if o.NoWait {
		wait, waited = time.Nanosecond, "" // bbolt tries once when the timeout is below its retry interval
	}
	if err := checkFile(path, wait); errors.Is(err, ErrLocked) {
		return nil, lockedError(path, waited)
	} else if err != nil {
		return nil, err
	}
	var b *bolt.DB
	err := guard(path, func() (err error) {
		// The free list is read here, under guard, also when read-only:
		// bbolt's structural check (Verify) would otherwise read it in a
		// goroutine of its own, where a fault cannot be caught.
		b, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: wait, ReadOnly: o.ReadOnly, NoSync: o.NoSync, PreLoadFreelist: true})
		return err
	})
	var damaged *DamagedError
	if errors.As(err, &damaged) {
		return nil, err
	}
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, lockedError(path, waited)
	}
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if now, err := os.Stat(path); opened != nil && (err != nil || !os.SameFile(now, opened)) {
		b.Close()
		return nil, fmt.Errorf("store %s: %w", path, errReplaced)
	}
	db := &DB{bolt: b, now: o.Now, path: path, fault: o.WriteFault, txSteps: o.TxSteps}
	err = db.guard(func() error {
		if o.ReadOnly {
			return b.View(db.checkSchema)
		}
		return b.Update(db.init)
	})
	if errors.As(err, &damaged) || errors.As(err, new(*OldSchemaError)) {
		b.Close()
		return nil, err
	}
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	if !o.ReadOnly {
		if err := db.guard(func() error { return db.fillReadIndexes(backfillChunk) }); err != nil {
			b.Close()
			return nil, fmt.Errorf("store %s: building the read indexes: %w", path, err)
		}
		if err := db.guard(db.fillFlagIndex); err != nil {
			b.Close()
			return nil, fmt.Errorf("store %s: building the contact-flag index: %w", path, err)
		}
		db.startCommitter()
	}
	return db, nil
}

func (db *DB) init(tx *bolt.Tx) error {
	// An older file is refused before anything is created in it: only
	// Upgrade writes its successor, and the old file stays as it was.
	if tx.Bucket(bucketMeta) != nil {
		if err := db.checkSchema(tx); err != nil {
			return err
		}
	}
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	if err := initRenewal(tx); err != nil {
		return err
	}
	if err := initCoverage(tx); err != nil {
		return err
	}
	if err := initReadIndexes(tx); err != nil {
		return err
	}
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keySchema) == nil {
		return meta.Put(keySchema, u64(SchemaVersion))
	}
	return db.checkSchema(tx)
}

func (db *DB) checkSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("not an errpd store (no meta bucket)")
	}
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return errors.New("not an errpd store (no schema version)")
	}
	got := binary.BigEndian.Uint64(v)
	if got > SchemaVersion {
		return fmt.Errorf("schema version %d is newer than this errpd's %d: upgrade errpd", got, SchemaVersion)
	}
	if got < SchemaVersion {
		return &OldSchemaError{Path: db.path, Version: got}
	}
	return nil
}

// Close commits the writes still queued, then closes the file.
func (db *DB) Close() error {
	db.stopCommitter()
	return db.bolt.Close()
}

// Path is the file's path.
func (db *DB) Path() string { return db.bolt.Path() }

// Bolt exposes the underlying bbolt handle, for online backup
// (tx.WriteTo) and for packages that add their own buckets.
func (db *DB) Bolt() *bolt.DB { return db.bolt }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
