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

// bucketCoverage is the coverage checks' due index: deadline + CoverageDelay
// (8 bytes) + StepID -> attempts so far (8 bytes; empty for none, as every
// entry starts: 8 bytes less in each of them). Every step gets its entry
// when it is written first; the check drops those that need no asking.
var bucketCoverage = []byte("coverage")

// initCoverage creates the coverage index at open. A store written before
// the index existed gets its entries from one scan of its steps, once.
func initCoverage(tx *bolt.Tx) error {
	if tx.Bucket(bucketCoverage) != nil {
		return nil
	}
	b, err := tx.CreateBucket(bucketCoverage)
	if err != nil {
		return err
	}
	steps := tx.Bucket(bucketSteps)
	if steps == nil {
		return nil
	}
	return steps.ForEach(func(k, _ []byte) error {
		var s Step
		if _, err := getJSON(steps, k, &s); err != nil {
			return err
		}
		if s.CoveredByAscio != "" || s.State == scheduler.StateSkipped {
			return nil
		}
		return b.Put(dueKey(s.Deadline.Add(CoverageDelay), s.ID), attempts(0))
	})
}

// indexCoverage gives a new step (and a skipped one owed again) its
// coverage check at its deadline plus CoverageDelay.
func (t *Tx) indexCoverage(old, s *Step) error {
	revived := old != nil && old.State == scheduler.StateSkipped && s.State != scheduler.StateSkipped
	if (old != nil && !revived) || s.CoveredByAscio != "" {
		return nil
	}
	return t.tx.Bucket(bucketCoverage).Put(dueKey(s.Deadline.Add(CoverageDelay), s.ID), attempts(0))
}

// CoverageCheck is one step whose coverage check is due.
type CoverageCheck struct {
	Step     Step
	Due      time.Time // the index entry's time
	Attempts int       // GetMessages calls that failed so far
}

// CoverageDue returns up to limit coverage checks due at or before at,
// earliest first: a seek in the coverage index, not a scan of the steps.
func (t *Tx) CoverageDue(at time.Time, limit int) ([]CoverageCheck, error) {
	end := u64(uint64(max(at.Unix(), 0)))
	var out []CoverageCheck
	b := t.tx.Bucket(bucketCoverage)
	if b == nil { // a store opened read-only before its first writable open
		return nil, nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
		if bytes.Compare(k[:8], end) > 0 {
			break
		}
		id := mustID(k[8:])
		s, ok, err := t.Step(id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("coverage index names step %s, which does not exist", id)
		}
		n := 0
		if len(v) == 8 {
			n = int(bytesToU64(v))
		}
		out = append(out, CoverageCheck{Step: s, Due: time.Unix(int64(bytesToU64(k[:8])), 0).UTC(), Attempts: n})
	}
	return out, nil
}

// NextCoverage is the earliest coverage check; false if none waits.
func (t *Tx) NextCoverage() (time.Time, bool) { return t.firstDue(bucketCoverage) }

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
	return time.Unix(int64(bytesToU64(k[:8])), 0).UTC(), true
}

// DropCoverage removes a check that needs no asking (errpd's proof was in
// time, the notice was not owed, or Ascio has no type for it).
func (t *Tx) DropCoverage(c CoverageCheck) error {
	return t.tx.Bucket(bucketCoverage).Delete(dueKey(c.Due, c.Step.ID))
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
	return t.tx.Bucket(bucketCoverage).Put(dueKey(at, c.Step.ID), attempts(n))
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
