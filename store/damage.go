package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/errpd/errpd/internal/failure"
)

// DamagedError says that the store's file does not hold together: it was
// truncated, emptied, or has bytes that are not what bbolt wrote. errpd
// refuses such a file rather than crash on it or, worse, start afresh over
// it; the way back is a copy written by `errpd backup`.
type DamagedError struct {
	Path    string
	Problem string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store %s is damaged: %s; errpd will not use it: stop errpd, keep this file aside for inspection "+
		"and put the newest copy written by `errpd backup` in its place, then run `errpd verify`", e.Path, e.Problem)
}

// FailureKind: no retry reads a damaged page back into shape.
func (e *DamagedError) FailureKind() failure.Kind { return failure.Permanent }

// bbolt's on-disk layout (go.etcd.io/bbolt/internal/common): every page
// starts with a 16-byte header (id, flags, count, overflow); pages 0 and 1
// are meta pages, written alternately, each with an FNV-64a checksum of
// the fields before it. bbolt writes them in the machine's byte order.
const (
	pageHeaderSize = 16
	metaSize       = 64 // magic, version, page size, flags, root (2x8), freelist, pgid, txid, checksum
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaPageFlag   = 0x04
	noFreelist     = ^uint64(0)
)

// meta is the part of a meta page that checkFile needs.
type meta struct {
	pageSize       uint32
	root, freelist uint64
	pages          uint64 // high water mark: pages in use
	txid           uint64
}

// checkFile looks at the file's meta pages before bbolt maps it. bbolt
// trusts a file it opens: pages past a truncated end fault (SIGBUS), and a
// damaged meta page makes it fall back without a word to the previous
// transaction. A missing file is fine (Open creates it); an empty one is
// not a new store but a lost one.
//
// It reads under a shared lock, so that a writer's commit in progress is
// not taken for damage; waiting longer than timeout for it is ErrLocked.
func checkFile(path string, timeout time.Duration) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	defer f.Close()
	if err := lockShared(f, timeout); errors.Is(err, ErrLocked) {
		return fmt.Errorf("store %s: %w (waited %s for its lock)", path, ErrLocked, timeout)
	} else if err != nil {
		return fmt.Errorf("store %s: locking: %w", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("store %s: %w", path, err)
	}
	size := fi.Size()
	damaged := func(format string, a ...any) error {
		return &DamagedError{Path: path, Problem: fmt.Sprintf(format, a...)}
	}
	if size == 0 {
		return damaged("the file is empty (0 bytes); errpd creates a new store only where no file exists")
	}
	m0, err0 := readMeta(f, 0)
	pageSize := int64(os.Getpagesize()) // where bbolt looks for meta page 1 when page 0 is bad
	if err0 == nil {
		pageSize = int64(m0.pageSize)
	}
	m1, err1 := readMeta(f, pageSize)
	switch {
	case err0 != nil && err1 != nil:
		return damaged("neither meta page holds (page 0: %v; page 1: %v)", err0, err1)
	case err0 != nil:
		return damaged("meta page 0 %v (bbolt would fall back to page 1 and lose what page 0 committed)", err0)
	case err1 != nil:
		return damaged("meta page 1 %v (bbolt would fall back to page 0 and lose what page 1 committed)", err1)
	}
	if m1.pageSize != m0.pageSize {
		return damaged("the meta pages disagree on the page size (%d and %d)", m0.pageSize, m1.pageSize)
	}
	for i, m := range []meta{m0, m1} {
		if m.root >= m.pages || (m.freelist >= m.pages && m.freelist != noFreelist) {
			return damaged("meta page %d points past its own end (root %d, freelist %d, %d pages)", i, m.root, m.freelist, m.pages)
		}
	}
	newest := m0
	if m1.txid > m0.txid {
		newest = m1
	}
	if want := int64(newest.pages) * pageSize; size < want {
		return damaged("truncated: the file has %d bytes, its last transaction uses %d pages of %d bytes (%d bytes)",
			size, newest.pages, pageSize, want)
	}
	return nil
}

// readMeta reads and checks the meta page at offset.
func readMeta(r io.ReaderAt, offset int64) (meta, error) {
	buf := make([]byte, pageHeaderSize+metaSize)
	if n, err := r.ReadAt(buf, offset); err != nil {
		return meta{}, fmt.Errorf("is cut short (%d of its %d bytes at offset %d)", n, len(buf), offset)
	}
	e := binary.NativeEndian
	p := buf[pageHeaderSize:]
	h := fnv.New64a()
	h.Write(p[:metaSize-8])
	m := meta{pageSize: e.Uint32(p[8:]), root: e.Uint64(p[16:]), freelist: e.Uint64(p[32:]),
		pages: e.Uint64(p[40:]), txid: e.Uint64(p[48:])}
	switch {
	case e.Uint32(p) != boltMagic:
		return m, fmt.Errorf("is not a bbolt meta page (magic %#x)", e.Uint32(p))
	case e.Uint32(p[4:]) != boltVersion:
		return m, fmt.Errorf("has bbolt format version %d, not %d", e.Uint32(p[4:]), boltVersion)
	case e.Uint64(p[56:]) != h.Sum64():
		return m, errors.New("has a checksum that does not match its content")
	case e.Uint16(buf[8:])&metaPageFlag == 0:
		return m, fmt.Errorf("is not flagged as a meta page (flags %#x)", e.Uint16(buf[8:]))
	case m.pageSize < 512 || m.pageSize&(m.pageSize-1) != 0:
		return m, fmt.Errorf("gives a page size of %d bytes", m.pageSize)
	}
	return m, nil
}

// guard runs fn, which reads or writes the memory-mapped file, so that a
// bad page is an error and not the end of the process. With
// debug.SetPanicOnFault, the SIGBUS of a page past a truncated end or the
// SIGSEGV of an offset read from garbage panics instead of killing the
// process; that panic, and the ones bbolt raises on a page that does not
// hold together, become a *DamagedError naming the file. bbolt's own View
// and Update roll the transaction back on the way out. Any other panic (a
// bug in fn) goes on, with its stack.
func (db *DB) guard(fn func() error) error { return guard(db.path, fn) }

func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if !fromDamage(r) {
			panic(r)
		}
		problem := fmt.Sprintf("a page does not hold together (%v)", r)
		if f, ok := r.(interface{ Addr() uintptr }); ok {
			problem = fmt.Sprintf("reading a page faulted at %#x: the file is shorter than its pages say, or a page points outside it", f.Addr())
		}
		err = &DamagedError{Path: path, Problem: problem}
	}()
	return fn()
}

// fromDamage tells a panic caused by the file's bytes: a memory fault
// (SetPanicOnFault gives those an address), or a panic raised inside bbolt.
// It must be called from the deferred function, while the panicking frames
// are still on the stack.
func fromDamage(r any) bool {
	if f, ok := r.(interface{ Addr() uintptr }); ok && f.Addr() != 0 {
		return true
	}
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "runtime.gopanic"), strings.HasPrefix(f.Function, "runtime.panic"),
			strings.HasPrefix(f.Function, "runtime.goPanic"), strings.HasPrefix(f.Function, "runtime.sigpanic"):
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			// The first frame below the panic is the one that raised it.
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}
