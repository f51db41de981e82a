package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// StepRef is a step's place in the steps bucket as the deadline index
// holds it: opaque to callers, but refs compare (<, sort) in the order of
// the steps bucket, which is the order of their step ids. A report over a
// period collects, sorts and reads refs instead of ids, because turning a
// key into an id and back (keyID, idKey: a time format and a parse) cost a
// third of its time.
type StepRef string

// Domain is the domain of the step ref names.
func (r StepRef) Domain() string {
	s := string(r)
	if len(s) > 0 && s[0] == textKey {
		s = s[1:]
	}
	d, _, _ := strings.Cut(s, "/")
	return d
}

// DeadlineRefsAfter is DeadlinesAfter giving refs instead of ids. A ref
// is valid only during the call (StepRef(ref) keeps a copy): a month's
// report reads hundreds of thousands, and keeps them in blocks of its own
// rather than pay an allocation each.
func (t *Tx) DeadlineRefsAfter(from, to time.Time, after string, limit int, fn func(ref []byte) error) (string, error) {
	if !t.ReadIndexes() {
		return "", errNoReadIndexes
	}
	return t.deadlineKeysAfter(from, to, after, limit, fn)
}

// StepsByRef calls fn with the step at each ref, in the order given (sort
// them first: then one cursor reads them with a step to the next key where
// it can, instead of a descent of the tree each). A ref without a step is
// an error naming the index it came from.
func (t *Tx) StepsByRef(refs []StepRef, index string, fn func(Step) error) error {
	c := forward{c: t.tx.Bucket(bucketSteps).Cursor()}
	var s Step // one for all: a Step decoded into escapes, a new one a ref cost an allocation
	for _, r := range refs {
		t.steps++
		c.seek(view(string(r)))
		if c.k == nil || string(c.k) != string(r) {
			return fmt.Errorf("%s names step %s, which does not exist", index, mustID([]byte(r)))
		}
		if err := decodeValue(c.k, c.v, &s); err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// forward is a cursor for reads in key order: most keys asked for lie a few
// keys ahead of the last, where stepping on costs less than a descent of
// the tree (bbolt's Seek, with a check of every page on the way).
type forward struct {
	c    *bolt.Cursor
	k, v []byte
}

// keysAhead is how many keys forward.seek steps over before it seeks.
const keysAhead = 16

// seek puts the cursor on the first key at or after p: a few steps forward
// when p is just ahead, a seek otherwise.
func (f *forward) seek(p []byte) {
	if f.k != nil && bytes.Compare(f.k, p) < 0 {
		for range keysAhead {
			if f.k, f.v = f.c.Next(); f.k == nil || bytes.Compare(f.k, p) >= 0 {
				return
			}
		}
	} else if f.k != nil && bytes.Equal(f.k, p) {
		return
	}
	f.k, f.v = f.c.Seek(p)
}

// StepCursor finds the next open step of cycle after cycle in one read
// transaction with one cursor: a listing of domains in name order asks for
// cycles whose steps lie close together in the steps bucket, so the cursor
// mostly steps forward to them instead of allocating a cursor and
// descending the tree for each (StepsAfter).
type StepCursor struct {
	t *Tx
	forward
}

// StepCursor starts a StepCursor on the transaction's steps.
func (t *Tx) StepCursor() *StepCursor {
	return &StepCursor{t: t, forward: forward{c: t.tx.Bucket(bucketSteps).Cursor()}}
}

// FirstOpen returns the first step of cycle, in timeline order, whose state
// is not final; false when there is none.
func (sc *StepCursor) FirstOpen(cycle string) (Step, bool, error) {
	p, exact := prefixKey(cycle + "/")
	if !exact { // a cycle key that is no parsed key: the general scan
		var found Step
		ok := false
		_, err := sc.t.StepsAfter(cycle+"/", "", math.MaxInt, func(s Step) error {
			if s.State.Final() {
				return nil
			}
			found, ok = s, true
			return errStop
		})
		if err == errStop {
			err = nil
		}
		return found, ok, err
	}
	sc.seek(p)
	for ; sc.k != nil && bytes.HasPrefix(sc.k, p); sc.k, sc.v = sc.c.Next() {
		var s Step
		if err := decodeValue(sc.k, sc.v, &s); err != nil {
			return Step{}, false, err
		}
		if !s.State.Final() {
			return s, true, nil
		}
	}
	return Step{}, false, nil
}

// errStop ends a scan that found what it looked for.
var errStop = errors.New("stop")

// Lookups reads cycles and domains by key in one read transaction with one
// cursor each, for a reader that looks up one per row (a report): bbolt's
// Get makes a cursor, and grows its stack, for every lookup.
type Lookups struct {
	cycles, domains forward
	key             []byte // the last cycle key made, reused
	// flagged is on the contact-flag index when it is complete: only the
	// domains it lists are looked up for their flag.
	flagged *forward
}

// Lookups starts cursors on the transaction's cycles and domains.
func (t *Tx) Lookups() *Lookups {
	l := &Lookups{cycles: forward{c: t.tx.Bucket(bucketCycles).Cursor()}, domains: forward{c: t.tx.Bucket(bucketDomains).Cursor()}}
	if flagIndexComplete(t.tx) {
		l.flagged = &forward{c: t.tx.Bucket(bucketFlagged).Cursor()}
	}
	return l
}

// CycleFacts are what a report shows of a step's cycle.
type CycleFacts struct {
	Mode   scheduler.Mode
	Reason string // why it closed; empty while it is open
}

// CycleFacts reads the mode and closing reason of the cycle key names (a
// step's Cycle), walking its value for those two fields only: a report
// asks them for every row, and decoding the whole cycle (its key made a
// string, the registrant's strings) was a tenth of a report's CPU.
func (l *Lookups) CycleFacts(key string) (CycleFacts, bool, error) {
	l.key = appendIDKey(l.key[:0], key)
	l.cycles.seek(l.key)
	k, v := l.cycles.k, l.cycles.v
	if k == nil || !bytes.Equal(k, l.key) || v == nil {
		return CycleFacts{}, false, nil
	}
	var c CycleFacts
	if len(v) > 0 && v[0] == '{' { // schema 1's JSON
		var full Cycle
		err := decodeValue(k, v, &full)
		return CycleFacts{Mode: full.Mode, Reason: full.Reason}, err == nil, err
	}
	err := walk(v, func(f field) (err error) {
		switch f.num {
		case cMode:
			var s string
			s, err = f.enum(modeCodes)
			c.Mode = scheduler.Mode(s)
		case cReason:
			c.Reason, err = f.str()
		}
		return err
	})
	if err != nil {
		return CycleFacts{}, false, &ValueError{Bucket: "cycles", Key: mustID(k), Err: err}
	}
	return c, true, nil
}

// Domain is Tx.Domain.
func (l *Lookups) Domain(name string) (Domain, bool, error) {
	var d Domain
	ok, err := lookup(&l.domains, []byte(name), &d)
	return d, ok, err
}

// ContactFailed is the domain's ContactFailed, nil when it is not stored.
// Most domains have no contact flag (a report asks it of every domain it
// lists): with the contact-flag index complete, only the domains it lists
// are read; else each value is walked, and decoded only when it has one.
func (l *Lookups) ContactFailed(name string) (*ContactFlag, error) {
	if l.flagged != nil {
		if l.flagged.seek(view(name)); l.flagged.k == nil || string(l.flagged.k) != name {
			return nil, nil
		}
	}
	l.domains.seek(view(name))
	if l.domains.k == nil || string(l.domains.k) != name || l.domains.v == nil {
		return nil, nil
	}
	if !hasField(l.domains.v, dFlag) {
		return nil, nil
	}
	var d Domain
	if err := decodeValue(l.domains.k, l.domains.v, &d); err != nil {
		return nil, err
	}
	return d.ContactFailed(), nil
}

// view is s as bytes, without a copy, for a read that keeps nothing (a
// seek, a comparison): s must not be changed through it.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// lookup decodes the value at key into v, as getJSON does.
func lookup(c *forward, key []byte, v any) (bool, error) {
	c.seek(key)
	if c.k == nil || !bytes.Equal(c.k, key) || c.v == nil {
		return false, nil
	}
	return true, decodeValue(key, c.v, v)
}
