package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
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

// DeadlineRefsAfter is DeadlinesAfter giving refs instead of ids.
func (t *Tx) DeadlineRefsAfter(from, to time.Time, after string, limit int, fn func(StepRef) error) (string, error) {
	if !t.ReadIndexes() {
		return "", errNoReadIndexes
	}
	return t.deadlineKeysAfter(from, to, after, limit, func(k []byte) error { return fn(StepRef(k)) })
}

// StepsByRef calls fn with the step at each ref, in the order given (sort
// them first: then one cursor reads them with a step to the next key where
// it can, instead of a descent of the tree each). A ref without a step is
// an error naming the index it came from.
func (t *Tx) StepsByRef(refs []StepRef, index string, fn func(Step) error) error {
	c := t.tx.Bucket(bucketSteps).Cursor()
	var k, v []byte
	for _, r := range refs {
		t.steps++
		if k != nil {
			k, v = c.Next()
		}
		if k == nil || string(k) != string(r) {
			k, v = c.Seek([]byte(r))
		}
		if k == nil || string(k) != string(r) {
			return fmt.Errorf("%s names step %s, which does not exist", index, mustID([]byte(r)))
		}
		var s Step
		if err := decodeValue(k, v, &s); err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

// StepCursor finds the next open step of cycle after cycle in one read
// transaction with one cursor: a listing of domains in name order asks for
// cycles whose steps lie close together in the steps bucket, so the cursor
// mostly steps forward to them instead of allocating a cursor and
// descending the tree for each (StepsAfter).
type StepCursor struct {
	t    *Tx
	c    *bolt.Cursor
	k, v []byte
}

// StepCursor starts a StepCursor on the transaction's steps.
func (t *Tx) StepCursor() *StepCursor {
	return &StepCursor{t: t, c: t.tx.Bucket(bucketSteps).Cursor()}
}

// stepsAhead is how many keys FirstOpen steps over before it seeks.
const stepsAhead = 8

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

// seek puts the cursor on the first key at or after p: a few steps forward
// when p is just ahead, a seek otherwise.
func (sc *StepCursor) seek(p []byte) {
	if sc.k != nil && bytes.Compare(sc.k, p) < 0 {
		for range stepsAhead {
			if sc.k, sc.v = sc.c.Next(); sc.k == nil || bytes.Compare(sc.k, p) >= 0 {
				return
			}
		}
	}
	sc.k, sc.v = sc.c.Seek(p)
}

// errStop ends a scan that found what it looked for.
var errStop = errors.New("stop")

// Lookups reads cycles and domains by key in one read transaction with one
// cursor each, for a reader that looks up one per row (a report): bbolt's
// Get makes a cursor, and grows its stack, for every lookup.
type Lookups struct {
	cycles, domains *bolt.Cursor
}

// Lookups starts cursors on the transaction's cycles and domains.
func (t *Tx) Lookups() *Lookups {
	return &Lookups{cycles: t.tx.Bucket(bucketCycles).Cursor(), domains: t.tx.Bucket(bucketDomains).Cursor()}
}

// Cycle is Tx.Cycle.
func (l *Lookups) Cycle(key string) (Cycle, bool, error) {
	var c Cycle
	ok, err := lookup(l.cycles, idKey(key), &c)
	return c, ok, err
}

// Domain is Tx.Domain.
func (l *Lookups) Domain(name string) (Domain, bool, error) {
	var d Domain
	ok, err := lookup(l.domains, []byte(name), &d)
	return d, ok, err
}

// lookup decodes the value at key into v, as getJSON does.
func lookup(c *bolt.Cursor, key []byte, v any) (bool, error) {
	k, raw := c.Seek(key)
	if k == nil || !bytes.Equal(k, key) || raw == nil {
		return false, nil
	}
	return true, decodeValue(key, raw, v)
}
