package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// The daemon's scans of its indexes (the sweep of the due index, the
// recovery of the steps caught mid-action) work in bounded chunks, each in
// its own short transaction: after a week of downtime hundreds of
// thousands of steps may be due at once, and neither the daemon's memory
// nor one write transaction's dirty pages may grow with them. A Mark says
// where the next chunk goes on.

// Mark is a position in an index, to go on after in the next chunk. The
// zero Mark is the index's start.
type Mark struct{ key []byte }

// seekAfter positions c on the first key after after; with after empty (a
// first chunk), on the first key at or after start, or the very first with
// start nil. Every scan in chunks starts its chunk here.
func seekAfter(c *bolt.Cursor, start, after []byte) (k, v []byte) {
	switch {
	case len(after) > 0:
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	case start != nil:
		k, v = c.Seek(start)
	default:
		k, v = c.First()
	}
	return k, v
}

// keysAfter returns up to limit keys of b after m for which keep holds,
// each copied out of the transaction, and the Mark after the last. more
// reports whether keep held for a key after those.
func keysAfter(b *bolt.Bucket, m Mark, limit int, keep func(k []byte) bool) (keys [][]byte, next Mark, more bool) {
	c := b.Cursor()
	next = m
	for k, _ := seekAfter(c, nil, m.key); k != nil && keep(k); k, _ = c.Next() {
		if len(keys) == limit {
			return keys, next, true
		}
		next = Mark{key: bytes.Clone(k)}
		keys = append(keys, next.key)
	}
	return keys, next, false
}

// Sweep moves every waiting step whose deadline has passed to missed (or to
// in_doubt when an earlier send of it may have been delivered) and every
// planned step whose window opened to due, all in this transaction. It
// returns the steps it marked missed and those it put in doubt. The daemon
// sweeps with SweepAfter, a chunk per transaction; this is for a small
// store (tests, tools).
func (t *Tx) Sweep() (missed, inDoubt []Step, err error) {
	for m, more := (Mark{}), true; more; {
		var ms, ds []Step
		m, more, ms, ds, err = t.SweepAfter(m, int(^uint(0)>>1))
		missed, inDoubt = append(missed, ms...), append(inDoubt, ds...)
		if err != nil {
			return missed, inDoubt, err
		}
	}
	return missed, inDoubt, nil
}

// SweepAfter is one chunk of a sweep: it looks at up to limit waiting steps
// whose send time is at or before the transaction's clock, from the entry
// of the due index after m on, and moves each as Sweep does. It returns
// the Mark to go on after, whether more entries wait before the clock, and
// the steps it marked missed and put in doubt.
func (t *Tx) SweepAfter(m Mark, limit int) (next Mark, more bool, missed, inDoubt []Step, err error) {
	end := timeKey(t.now)
	keys, next, more := keysAfter(t.tx.Bucket(bucketDue), m, limit, func(k []byte) bool {
		return bytes.Compare(k[:8], end) <= 0
	})
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = mustID(k[8:])
	}
	due, err := t.stepsNamed(ids, "due index")
	if err != nil {
		return m, false, nil, nil, err
	}
	for _, s := range due {
		switch {
		case !t.now.Before(s.Deadline) && s.MayHaveGone:
			// Its window closed while a resend waited, but an earlier send
			// may have been delivered: not missed, in doubt, for an operator.
			s, err = t.Transition(s.ID, []scheduler.State{s.State}, scheduler.StateInDoubt, "", func(s *Step) {
				s.Reason = mayHaveGoneAtDeadline
			})
			inDoubt = append(inDoubt, s)
		case !t.now.Before(s.Deadline):
			s, err = t.Transition(s.ID, []scheduler.State{s.State}, scheduler.StateMissed, "", func(s *Step) {
				s.Reason = "deadline passed before the notice was sent"
			})
			missed = append(missed, s)
		case s.State == scheduler.StatePlanned && !t.now.Before(s.Opens):
			_, err = t.Transition(s.ID, []scheduler.State{scheduler.StatePlanned}, scheduler.StateDue, "window opened", nil)
		}
		if err != nil {
			return m, false, missed, inDoubt, err
		}
	}
	return next, more, missed, inDoubt, nil
}

// mayHaveGoneAtDeadline is why a step is in doubt when its window closed
// before a resend of a message that may have been delivered.
const mayHaveGoneAtDeadline = "deadline passed before a resend; an earlier send may have been delivered"

// Active returns the steps caught mid-action: sending, uploading or in
// doubt, all of them. The daemon reads them with ActiveAfter, a chunk per
// transaction: steps in doubt wait for an operator and may pile up.
func (t *Tx) Active() ([]Step, error) {
	var out []Step
	for m, more := (Mark{}), true; more; {
		var err error
		m, more, err = t.ActiveAfter(m, int(^uint(0)>>1), func(s Step) error {
			out = append(out, s)
			return nil
		})
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// ActiveAfter calls fn for up to limit steps caught mid-action, from the
// entry of the active index after m on, in id order. fn may move the step
// it is given (the chunk's ids are read before the first call). It returns
// the Mark to go on after and whether more entries follow.
func (t *Tx) ActiveAfter(m Mark, limit int, fn func(Step) error) (next Mark, more bool, err error) {
	keys, next, more := keysAfter(t.tx.Bucket(bucketActive), m, limit, func([]byte) bool { return true })
	for _, k := range keys {
		s, ok, err := t.Step(mustID(k))
		if err != nil {
			return m, false, err
		}
		if !ok {
			continue // as Active always did: an entry without its step is no work
		}
		if err := fn(s); err != nil {
			return m, false, err
		}
	}
	return next, more, nil
}
