package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// Coverage says whether Ascio sent its own copy of a notice whose deadline
// passed without errpd's proof: a message of the notice's type that errpd
// did not upload is on the order.
type Coverage string

const (
	CoveredYes     Coverage = "yes"
	CoveredNo      Coverage = "no"
	CoveredUnknown Coverage = "unknown" // no order id, or Ascio could not be asked
)

// CoverageDelay is how long after a notice's deadline Ascio is asked
// whether it sent its own copy: a day, for its send to have happened.
const CoverageDelay = 24 * time.Hour

// The coverage checks come from two places (docs/ascio.md):
//
//   - the walk: the deadline index (deadline.go) already orders every step
//     by deadline + step key, so the checks at deadline + CoverageDelay are
//     its entries in order. keyCoverageCursor in meta is the deadline-index
//     key up to which every step has been handed to the check (empty: none);
//     a check from the walk that is dropped, recorded or postponed moves it
//     past that step. Steps answered already or skipped are passed over, as
//     they need no asking.
//   - bucketCoverage, the explicit checks: due time (8 bytes) + step key ->
//     attempts so far (8 bytes; empty for none). It holds the checks put off
//     after a failed attempt, and the steps the walk would miss because their
//     deadline key is at or before the cursor when they are written (a step
//     planned late, one owed again, one whose deadline moved behind it). It
//     stays small: no entry per step.
var bucketCoverage = []byte("coverage")

// keyCoverageCursor in meta is the walk's cursor: a deadline-index key.
var keyCoverageCursor = []byte("coverage_cursor")

// initCoverage creates the explicit checks' bucket at open. A store written
// before it existed needs no backfill: its cursor is empty, so the walk
// hands every step to the check once.
func initCoverage(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketCoverage)
	return err
}

// needsCheck reports whether a step may need a coverage check: not answered
// yet, not skipped (the check would drop it).
func needsCheck(s *Step) bool {
	return s.CoveredByAscio == "" && s.State != scheduler.StateSkipped
}

// coverageCursor is the walk's cursor (nil: nothing walked yet).
func (t *Tx) coverageCursor() []byte { return t.tx.Bucket(bucketMeta).Get(keyCoverageCursor) }

// walked reports whether the walk has passed the deadline-index key k.
func (t *Tx) walked(k []byte) bool {
	cur := t.coverageCursor()
	return cur != nil && bytes.Compare(k, cur) <= 0
}

// indexCoverage gives a step the walk would miss an explicit check at its
// deadline plus CoverageDelay: a new one (or a skipped one owed again)
// whose deadline key is already behind the cursor, or one whose deadline
// moved from ahead of the cursor to behind it. Any other step is found by
// the walk: nothing is written.
func (t *Tx) indexCoverage(old, s *Step) error {
	if !needsCheck(s) || !t.walked(t.stepTimeKey(s.Deadline, s.ID)) {
		return nil
	}
	revived := old != nil && old.State == scheduler.StateSkipped
	moved := old != nil && !old.Deadline.Equal(s.Deadline) && !t.walked(t.stepTimeKey(old.Deadline, old.ID))
	if old != nil && !revived && !moved {
		return nil // its check was handed over already
	}
	return t.putCoverage(s.Deadline.Add(CoverageDelay), s.ID, 0)
}

func (t *Tx) putCoverage(at time.Time, id string, n int) error {
	return t.tx.Bucket(bucketCoverage).Put(dueKey(at, id), attempts(n))
}

// CoverageCheck is one step whose coverage check is due.
type CoverageCheck struct {
	Step     Step
	Due      time.Time // when it fell due
	Attempts int       // GetMessages calls that failed so far
	walk     []byte    // its deadline-index key when it came from the walk
}

// CoverageDue returns up to limit coverage checks due at or before at,
// earliest first: the explicit checks merged with the walk of the deadline
// index after the cursor, seeks both, not a scan of the steps.
func (t *Tx) CoverageDue(at time.Time, limit int) ([]CoverageCheck, error) {
	end := timeKey(at)
	b := t.tx.Bucket(bucketCoverage)
	if b == nil { // a store opened read-only before its first writable open
		return nil, nil
	}
	ec := b.Cursor()
	ek, ev := ec.First()
	w := t.coverageWalk(end)
	var out []CoverageCheck
	for len(out) < limit {
		wc, err := w.peek()
		if err != nil {
			return nil, err
		}
		explicit := ek != nil && bytes.Compare(ek[:8], end) <= 0
		if explicit && (wc == nil || bytes.Compare(ek, wc.dueKey) < 0) {
			c, err := t.explicitCheck(ek, ev)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
			ek, ev = ec.Next()
			continue
		}
		if wc == nil {
			break
		}
		out = append(out, wc.check)
		w.next()
	}
	return out, nil
}

func (t *Tx) explicitCheck(k, v []byte) (CoverageCheck, error) {
	id := mustID(k[8:])
	s, ok, err := t.Step(id)
	if err != nil {
		return CoverageCheck{}, err
	}
	if !ok {
		return CoverageCheck{}, fmt.Errorf("coverage index names step %s, which does not exist", id)
	}
	n := 0
	if len(v) == 8 {
		n = int(bytesToU64(v))
	}
	return CoverageCheck{Step: s, Due: keyTime(k), Attempts: n}, nil
}

func keyTime(k []byte) time.Time { return time.Unix(int64(bytesToU64(k[:8])), 0).UTC() }

// walkCheck is the walk's next check and its key in the explicit checks'
// order (due time + step key), to merge the two.
type walkCheck struct {
	check  CoverageCheck
	dueKey []byte
}

// coverageWalker reads the deadline index after the cursor, passing over
// the steps that need no check, up to the checks due at or before end.
type coverageWalker struct {
	t    *Tx
	c    *bolt.Cursor
	k    []byte
	end  []byte
	cur  *walkCheck
	done bool
}

func (t *Tx) coverageWalk(end []byte) *coverageWalker {
	w := &coverageWalker{t: t, end: end}
	if !t.ReadIndexes() { // read-only, before the indexes were complete
		w.done = true
		return w
	}
	w.c = t.tx.Bucket(bucketDeadline).Cursor()
	w.k, _ = seekAfter(w.c, nil, t.coverageCursor())
	return w
}

// peek is the walk's next due check, nil when none is left.
func (w *coverageWalker) peek() (*walkCheck, error) {
	for w.cur == nil && !w.done && w.k != nil {
		due := u64(bytesToU64(w.k[:8]) + uint64(CoverageDelay/time.Second))
		if bytes.Compare(due, w.end) > 0 {
			w.done = true
			break
		}
		var s Step
		ok, err := getJSON(w.t.tx.Bucket(bucketSteps), w.k[8:], &s)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("deadline index names step %s, which does not exist", mustID(w.k[8:]))
		}
		if needsCheck(&s) {
			key := bytes.Clone(w.k)
			w.cur = &walkCheck{
				check:  CoverageCheck{Step: s, Due: keyTime(due), walk: key},
				dueKey: append(due, key[8:]...),
			}
		}
		w.k, _ = w.c.Next()
	}
	return w.cur, nil
}

func (w *coverageWalker) next() { w.cur = nil }

// NextCoverage is the earliest coverage check; false if none waits.
func (t *Tx) NextCoverage() (time.Time, bool) {
	first, ok := t.firstDue(bucketCoverage)
	w := t.coverageWalk(u64(1<<63 - 1))
	if wc, err := w.peek(); err == nil && wc != nil && (!ok || wc.check.Due.Before(first)) {
		return wc.check.Due, true
	}
	return first, ok
}

// firstDue is the time of the earliest entry of a due index keyed by
// time; false if it is empty (or not created yet: read-only).
func (t *Tx) firstDue(name []byte) (time.Time, bool) {
	b := t.tx.Bucket(name)
	if b == nil {
		return time.Time{}, false
	}
	k, _ := b.Cursor().First()
	if k == nil {
		return time.Time{}, false
	}
	return keyTime(k), true
}

// DropCoverage removes a check that needs no asking (errpd's proof was in
// time, the notice was not owed, or Ascio has no type for it).
func (t *Tx) DropCoverage(c CoverageCheck) error {
	if c.walk != nil {
		return t.advanceCoverage(c.walk)
	}
	return t.tx.Bucket(bucketCoverage).Delete(dueKey(c.Due, c.Step.ID))
}

// advanceCoverage moves the walk's cursor to k, a check the walk handed
// over. The steps between the cursor and k needed no check when the walk
// read them (checks are handled in order); one that needs one now was
// written or owed again since: it gets an explicit check, or the cursor
// would pass it unchecked.
func (t *Tx) advanceCoverage(k []byte) error {
	cur := t.coverageCursor()
	if cur != nil && bytes.Compare(k, cur) <= 0 {
		return nil
	}
	c := t.tx.Bucket(bucketDeadline).Cursor()
	for gk, _ := seekAfter(c, nil, cur); gk != nil && bytes.Compare(gk, k) < 0; gk, _ = c.Next() {
		var s Step
		if _, err := getJSON(t.tx.Bucket(bucketSteps), gk[8:], &s); err != nil {
			return err
		}
		if needsCheck(&s) {
			if err := t.putCoverage(s.Deadline.Add(CoverageDelay), s.ID, 0); err != nil {
				return err
			}
		}
	}
	return t.tx.Bucket(bucketMeta).Put(keyCoverageCursor, bytes.Clone(k))
}

// PassCoverage moves the walk's cursor over up to limit steps due at or
// before at that need no check (answered or skipped), stopping at the first
// that needs one; it returns how many it passed. The check calls it after
// the due checks, so that a run of such steps at the end of the walk is not
// read again by every later CoverageDue and NextCoverage.
func (t *Tx) PassCoverage(at time.Time, limit int) (int, error) {
	end := timeKey(at)
	if !t.ReadIndexes() {
		return 0, nil
	}
	c := t.tx.Bucket(bucketDeadline).Cursor()
	var last []byte
	n := 0
	for k, _ := seekAfter(c, nil, t.coverageCursor()); k != nil && n < limit; k, _ = c.Next() {
		if bytes.Compare(u64(bytesToU64(k[:8])+uint64(CoverageDelay/time.Second)), end) > 0 {
			break
		}
		var s Step
		if _, err := getJSON(t.tx.Bucket(bucketSteps), k[8:], &s); err != nil {
			return 0, err
		}
		if needsCheck(&s) {
			break
		}
		last = k
		n++
	}
	if last == nil {
		return 0, nil
	}
	return n, t.tx.Bucket(bucketMeta).Put(keyCoverageCursor, bytes.Clone(last))
}

// PostponeCoverage moves a check to at, counting one more failed attempt
// when failed is set (a temporary error), none when only its time moved.
func (t *Tx) PostponeCoverage(c CoverageCheck, at time.Time, failed bool) error {
	if err := t.DropCoverage(c); err != nil {
		return err
	}
	n := c.Attempts
	if failed {
		n++
	}
	if n == 0 && at.Equal(c.Step.Deadline.Add(CoverageDelay)) && !t.walked(deadlineKey(&c.Step)) {
		// Its deadline moved ahead of the cursor: the walk brings it.
		return nil
	}
	return t.putCoverage(at, c.Step.ID, n)
}

// RecordCoverage stores what Ascio's messages said about a step's notice
// and appends the audit record (the step's state unchanged) in the same
// transaction, then drops the check. A step already recorded keeps its
// answer: the check is asked once.
func (t *Tx) RecordCoverage(c CoverageCheck, v Coverage, detail string) (Step, error) {
	switch v {
	case CoveredYes, CoveredNo, CoveredUnknown:
	default:
		return Step{}, fmt.Errorf("step %s: covered_by_ascio %q is not yes, no or unknown", c.Step.ID, v)
	}
	if err := t.DropCoverage(c); err != nil {
		return Step{}, err
	}
	s, ok, err := t.Step(c.Step.ID)
	if err != nil || !ok || s.CoveredByAscio != "" {
		return s, err
	}
	prev := s
	s.CoveredByAscio = v
	if err := t.annotate(&prev, &s); err != nil {
		return s, err
	}
	return s, t.appendAudit(Record{Step: s.ID, From: s.State, To: s.State, Detail: CoverageDetail(v, detail)})
}

// CoverageDetail is the audit record's detail for a coverage answer.
func CoverageDetail(v Coverage, why string) string {
	d := "covered_by_ascio: " + string(v)
	if why != "" {
		d += ": " + why
	}
	return d
}

// attempts is a coverage entry's value: none is empty.
func attempts(n int) []byte {
	if n == 0 {
		return []byte{}
	}
	return u64(uint64(n))
}
