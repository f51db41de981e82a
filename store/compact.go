package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// A store is compacted by the rewrite driver (rewrite.go) with every
// record as it is: written in key order with every page filled, the new
// file takes what bbolt needs and no more, where keys that arrived in
// random places left pages about 70% full, and pages freed (by retention's
// purge) stay in the file for good.

// CompactOptions tune Compact: those of the driver, and where the old
// file goes.
type CompactOptions struct {
	UpgradeOptions
	// Keep, when set, is where the old file is kept after the swap (a hard
	// link: on the store's file system, never over another file). When
	// empty the old file is removed: it holds the same records.
	Keep string
}

// Compacted says what Compact did.
type Compacted struct {
	Schema  uint64 // the store's schema version; 0 when there was no file
	Total   int64  // records in the store
	Copied  int64  // records copied by this call (less than Total when resumed)
	Resumed bool   // a killed compaction's file was carried on
	Kept    string // where the old file is kept; "" when it was removed
	OldSize int64  // bytes
	NewSize int64
}

// compactKind is the rewrite that Compact does: every record copied as it
// is, every bucket in key order, so every page is filled.
func compactKind(keep string) rewriteKind {
	return rewriteKind{
		suffix:  ".compacting",
		verb:    "compacting",
		accept:  acceptCurrent("compacting"),
		convert: func(bucket, k, v []byte, emit func(bucket, k, v []byte) error) error { return emit(bucket, k, v) },
		inOrder: true,
		keep: func(r *rewriter) (string, error) {
			if keep == "" {
				return "", nil // the rename drops the old file
			}
			ok, err := r.linkOld(keep)
			if err == nil && !ok {
				err = fmt.Errorf("store %s: %s exists already: the old file is not kept over it", r.path, keep)
			}
			if err != nil {
				return "", err
			}
			return keep, nil
		},
		// The store is written to between two runs as soon as a daemon
		// runs on it: a finished copy found beside it proves nothing.
		redoFinished: true,
	}
}

// acceptCurrent is the accept of a rewrite that takes a store of this
// errpd's schema only (compact, load; verb names it): an older one is
// upgraded first, which compacts it too.
func acceptCurrent(verb string) func(path string, from uint64) (bool, error) {
	return func(path string, from uint64) (bool, error) {
		if from < SchemaVersion {
			return false, fmt.Errorf("%s: %w", verb, &OldSchemaError{Path: path, Version: from})
		}
		return true, nil
	}
}

// Compact rewrites the store at path in key order with every page filled,
// beside it (PATH.compacting), in transactions of o.Chunk records; then
// the new file is synced and takes the store's name. The old file is
// removed, or kept at o.Keep. Killed at any point, the next Compact
// resumes where the last committed chunk ended, unless the store was
// written to in between (then it starts again). A missing file is left
// alone (Schema 0); a store of an older schema is refused
// (*OldSchemaError): `errpd migrate` rewrites it anyway.
func Compact(path string, o CompactOptions) (Compacted, error) {
	if err := checkKeep(path, o.Keep); err != nil {
		return Compacted{}, err
	}
	res, err := rewriteFile(path, o.UpgradeOptions, compactKind(o.Keep))
	return Compacted{Schema: res.From, Total: res.Total, Copied: res.Converted, Resumed: res.Resumed,
		Kept: res.Backup, OldSize: res.OldSize, NewSize: res.NewSize}, err
}

// checkKeep refuses, before any work, a place to keep the old file that
// the swap's hard link could not take: a file already there (other than
// the store itself, linked by a killed run), or another file system.
func checkKeep(path, keep string) error {
	if keep == "" {
		return nil
	}
	store, err := os.Stat(path)
	if err != nil {
		return nil // no store: nothing to keep
	}
	if fi, err := os.Stat(keep); err == nil && !os.SameFile(fi, store) {
		return fmt.Errorf("--keep %s: a file exists there already: name a new one", keep)
	}
	dir, err := os.Stat(filepath.Dir(keep))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("--keep %s: no directory %s", keep, filepath.Dir(keep))
	}
	if err != nil {
		return fmt.Errorf("--keep %s: %w", keep, err)
	}
	if deviceOf(dir) != deviceOf(store) {
		return fmt.Errorf("--keep %s: not on the file system of the store %s: the old file is kept by a hard link", keep, path)
	}
	return nil
}

func deviceOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}
