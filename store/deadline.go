package store

import (
	"bytes"
	"errors"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The read indexes: they let a report read only what it shows.
//
// bucketDeadline orders every step by its deadline (the end of its window,
// what a report's period is about): deadlineKey, empty value. A step's
// deadline moves when its cycle is replanned, so writeStep keeps it in line.
//
// bucketTLD lists the domains under each TLD that have steps: tldKey, empty
// value. A domain's name never changes, so an entry is written once, with
// the domain's first step, and never removed (steps are never deleted).
var (
	bucketDeadline = []byte("deadline")
	bucketTLD      = []byte("tld")
)

// keyReadFill in the meta bucket marks the read indexes as incomplete: a
// store written before they existed gets them from its steps, in chunks of
// their own transactions (backfillDeadline), and the value is the last step
// key done ("k" + key, so that the start is not an empty value). Readers use
// the indexes only once the mark is gone.
var keyReadFill = []byte("read_index_fill")

// backfillChunk is how many steps one backfill transaction indexes.
const backfillChunk = 50_000

// deadlineKey is a step's entry in the deadline index: its deadline (8
// bytes, big-endian unix seconds) + its step key, as dueKey builds them.
func deadlineKey(s *Step) []byte { return dueKey(s.Deadline, s.ID) }

// tldKey is a domain's entry in the TLD index: the TLD, a 0x00, then the
// prefix every step key of the domain starts with, so that the domains of
// one TLD come in the order of their steps in the steps bucket.
func tldKey(domain string) []byte {
	tld := domain[strings.LastIndexByte(domain, '.')+1:]
	k := make([]byte, 0, len(tld)+1+len(domain)+1)
	k = append(k, tld...)
	k = append(k, 0)
	return append(k, domainStepPrefix(domain)...)
}

// domainStepPrefix is the prefix of the step keys of one domain.
func domainStepPrefix(domain string) []byte { return []byte(domain + "/") }

// initReadIndexes creates the read indexes at open. When the store has
// steps but no deadline index (it was written before there was one), the
// index is marked incomplete, for fillReadIndexes.
func initReadIndexes(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketTLD); err != nil {
		return err
	}
	if tx.Bucket(bucketDeadline) != nil {
		return nil
	}
	if _, err := tx.CreateBucket(bucketDeadline); err != nil {
		return err
	}
	if k, _ := tx.Bucket(bucketSteps).Cursor().First(); k == nil {
		return nil // a new store: nothing to fill
	}
	return tx.Bucket(bucketMeta).Put(keyReadFill, []byte("k"))
}

// fillReadIndexes completes the read indexes of a store marked incomplete,
// one short transaction per chunk of steps; a kill in between leaves the
// mark at the last chunk done, and the next open goes on from there.
func (db *DB) fillReadIndexes(chunk int) error {
	for {
		done, err := db.fillReadChunk(chunk)
		if err != nil || done {
			return err
		}
	}
}

// fillReadChunk indexes the next chunk of steps after the mark and moves
// the mark, or drops it when no step is left; done is true then.
func (db *DB) fillReadChunk(chunk int) (done bool, err error) {
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		mark := meta.Get(keyReadFill)
		if mark == nil {
			done = true
			return nil
		}
		next, err := backfillDeadline(tx, bytes.Clone(mark[1:]), chunk)
		if err != nil {
			return err
		}
		if next == nil {
			done = true
			return meta.Delete(keyReadFill)
		}
		return meta.Put(keyReadFill, append([]byte("k"), next...))
	})
	return done, err
}

// backfillDeadline indexes up to limit steps whose key sorts after after
// (empty: from the first) in the deadline and TLD indexes, and returns the
// last key it indexed, or nil when no step was left.
func backfillDeadline(tx *bolt.Tx, after []byte, limit int) ([]byte, error) {
	steps, deadline, tlds := tx.Bucket(bucketSteps), tx.Bucket(bucketDeadline), tx.Bucket(bucketTLD)
	c := steps.Cursor()
	k, _ := seekAfter(c, nil, after)
	var last []byte
	for n := 0; k != nil && n < limit; k, _ = c.Next() {
		var s Step
		if _, err := getJSON(steps, k, &s); err != nil {
			return nil, err
		}
		if err := deadline.Put(deadlineKey(&s), nil); err != nil {
			return nil, err
		}
		if err := tlds.Put(tldKey(s.Domain), nil); err != nil {
			return nil, err
		}
		last = bytes.Clone(k)
		n++
	}
	return last, nil
}

// indexDeadline keeps a step's entries in the read indexes in line as it
// is written over old (nil: new).
func (t *Tx) indexDeadline(old, s *Step) error {
	b := t.tx.Bucket(bucketDeadline)
	if old != nil && !old.Deadline.Equal(s.Deadline) {
		if err := b.Delete(t.stepTimeKey(old.Deadline, old.ID)); err != nil {
			return err
		}
		if _, err := b.NextSequence(); err != nil { // DeadlineMoves
			return err
		}
	}
	if old == nil || !old.Deadline.Equal(s.Deadline) {
		if err := b.Put(t.stepTimeKey(s.Deadline, s.ID), nil); err != nil {
			return err
		}
	}
	if old != nil {
		return nil
	}
	tlds := t.tx.Bucket(bucketTLD)
	if k := tldKey(s.Domain); tlds.Get(k) == nil {
		return tlds.Put(k, nil)
	}
	return nil
}

// DeadlineMoves counts the times a step's deadline moved (its entry in the
// deadline index taken out and put back elsewhere; the index's bucket
// sequence). A walk of the index in several read transactions, which may
// meet a moved step twice or not at all, is right when the count did not
// change while it walked. 0 without the index.
func (t *Tx) DeadlineMoves() uint64 {
	if b := t.tx.Bucket(bucketDeadline); b != nil {
		return b.Sequence()
	}
	return 0
}

// ReadIndexes reports whether the deadline and TLD indexes are complete:
// false for a store opened read-only before an errpd that keeps them ever
// opened it for writing, and while they are being filled.
func (t *Tx) ReadIndexes() bool {
	return t.tx.Bucket(bucketDeadline) != nil && t.tx.Bucket(bucketTLD) != nil &&
		t.tx.Bucket(bucketMeta).Get(keyReadFill) == nil
}

// errNoReadIndexes is returned by the index reads on a store without
// complete read indexes; callers ask ReadIndexes first.
var errNoReadIndexes = errors.New("the store's read indexes are not complete")

// DeadlinesAfter calls fn with the id of up to limit steps whose deadline
// is in [from, to) (a zero time leaves that end open), in deadline order,
// starting after the cursor after ("" starts at from). It returns the
// cursor of the last step it read, or "" when there were none: long reads
// call it in a loop, one short read transaction per chunk. The cursor is
// opaque.
func (t *Tx) DeadlinesAfter(from, to time.Time, after string, limit int, fn func(id string) error) (string, error) {
	if !t.ReadIndexes() {
		return "", errNoReadIndexes
	}
	return t.deadlineKeysAfter(from, to, after, limit, func(k []byte) error { return fn(mustID(k)) })
}

// deadlineKeysAfter walks the deadline index as DeadlinesAfter says,
// calling fn with each entry's step key (valid only during the call).
func (t *Tx) deadlineKeysAfter(from, to time.Time, after string, limit int, fn func(k []byte) error) (string, error) {
	c := t.tx.Bucket(bucketDeadline).Cursor()
	k, _ := seekAfter(c, dueKey(from, ""), []byte(after))
	var end []byte
	if !to.IsZero() {
		end = timeKey(to)
	}
	var last []byte // valid in the transaction: made a string once, at the end
	for n := 0; k != nil && n < limit; k, _ = c.Next() {
		if end != nil && bytes.Compare(k[:8], end) >= 0 {
			break
		}
		last = k
		if err := fn(k[8:]); err != nil {
			return string(last), err
		}
		n++
	}
	return string(last), nil
}

// TLDDomainsAfter calls fn with up to limit domains under tld (an A-label
// without the dot) that have steps, in the order of their steps, starting
// after the domain after ("" starts at the first). It returns the last
// domain it read, or "" when there were none.
func (t *Tx) TLDDomainsAfter(tld, after string, limit int, fn func(domain string) error) (string, error) {
	if !t.ReadIndexes() {
		return "", errNoReadIndexes
	}
	prefix := append([]byte(tld), 0)
	c := t.tx.Bucket(bucketTLD).Cursor()
	var afterKey []byte
	if after != "" {
		afterKey = tldKey(after)
	}
	k, _ := seekAfter(c, prefix, afterKey)
	last := ""
	for n := 0; k != nil && bytes.HasPrefix(k, prefix) && n < limit; k, _ = c.Next() {
		domain := strings.TrimSuffix(string(k[len(prefix):]), "/")
		last = domain
		if err := fn(domain); err != nil {
			return last, err
		}
		n++
	}
	return last, nil
}
