package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// Tx is one bbolt transaction with errpd's operations on it. Everything
// done inside one Update commits, with one fsync, or not at all.
type Tx struct {
	tx    *bolt.Tx
	now   time.Time // one clock reading per transaction, in UTC
	steps int       // steps read by id, for Options.TxSteps

	planning *planning // a new cycle's steps being planned: one audit record for them (audit.go)
	// keyID and key are the last step id stepKey made a key of.
	keyID string
	key   []byte
}

// stepKey is idKey(id), kept for the step last asked for: writeStep and
// the indexes it keeps need a step's key five times over, and making one
// parses the id's stamp (a fifteenth of a bulk load's planning). The key
// returned is shared: not to be changed.
func (t *Tx) stepKey(id string) []byte {
	if t.key == nil || t.keyID != id {
		t.keyID, t.key = id, idKey(id)
	}
	return t.key
}

// stepTimeKey is dueKey(at, id) through stepKey.
func (t *Tx) stepTimeKey(at time.Time, id string) []byte {
	return append(timeKey(at), t.stepKey(id)...)
}

// Update runs fn in a read-write transaction. A damaged page met on the
// way is a *DamagedError, and the transaction is rolled back.
func (db *DB) Update(fn func(*Tx) error) error {
	return db.guard(func() error {
		return db.bolt.Update(func(tx *bolt.Tx) error {
			t := writeTx(tx, db.now)
			defer db.counted(t)
			if err := fn(t); err != nil || db.fault == nil {
				return err
			}
			return db.fault()
		})
	})
}

// View runs fn in a read-only transaction. A damaged page met on the way
// is a *DamagedError.
func (db *DB) View(fn func(*Tx) error) error {
	return db.guard(func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			t := &Tx{tx: tx, now: db.now().UTC()}
			defer db.counted(t)
			return fn(t)
		})
	})
}

// counted reports a transaction's step reads to Options.TxSteps.
func (db *DB) counted(t *Tx) {
	if db.txSteps != nil {
		db.txSteps(t.steps)
	}
}

// Now is the transaction's clock reading.
func (t *Tx) Now() time.Time { return t.now }

// Domain returns a stored domain by A-label.
func (t *Tx) Domain(name string) (Domain, bool, error) {
	var d Domain
	ok, err := getJSON(t.tx.Bucket(bucketDomains), []byte(name), &d)
	return d, ok, err
}

// Domains calls fn for every domain in name order.
func (t *Tx) Domains(fn func(Domain) error) error {
	return t.tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
		var d Domain
		if _, err := getJSON(t.tx.Bucket(bucketDomains), k, &d); err != nil {
			return err
		}
		return fn(d)
	})
}

// Cycle returns a cycle by key.
func (t *Tx) Cycle(key string) (Cycle, bool, error) {
	var c Cycle
	ok, err := getJSON(t.tx.Bucket(bucketCycles), idKey(key), &c)
	return c, ok, err
}

// Step returns a step by id.
func (t *Tx) Step(id string) (Step, bool, error) {
	t.steps++
	var s Step
	ok, err := getJSON(t.tx.Bucket(bucketSteps), idKey(id), &s)
	return s, ok, err
}

// Steps returns a cycle's steps in timeline order (their ids sort so).
func (t *Tx) Steps(cycle string) ([]Step, error) {
	var out []Step
	prefix, exact := prefixKey(cycle + "/")
	b := t.tx.Bucket(bucketSteps)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var s Step
		if err := decodeValue(k, v, &s); err != nil {
			return nil, err
		}
		if exact || s.Cycle == cycle {
			out = append(out, s)
		}
	}
	return out, nil
}

// AllSteps calls fn for every step in id order.
func (t *Tx) AllSteps(fn func(Step) error) error {
	b := t.tx.Bucket(bucketSteps)
	return b.ForEach(func(k, _ []byte) error {
		var s Step
		if _, err := getJSON(b, k, &s); err != nil {
			return err
		}
		return fn(s)
	})
}

// ErrConflict is returned by Transition when a step is not in the state the
// caller expected: another actor moved it first.
var ErrConflict = errors.New("step is not in the expected state")

// Transition moves a step from one of the states in from to the state to,
// letting change fill in the step's other fields, and appends the audit
// record in the same transaction. A step in any other state is left alone
// and ErrConflict returned, so that two actors cannot both act on one step.
func (t *Tx) Transition(id string, from []scheduler.State, to scheduler.State, detail string, change func(*Step)) (Step, error) {
	s, ok, err := t.Step(id)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("step %s: no such step", id)
	}
	allowed := false
	for _, f := range from {
		allowed = allowed || s.State == f
	}
	if !allowed {
		return s, fmt.Errorf("step %s is %s, not %s: %w", id, s.State, scheduler.JoinStates(from, " or "), ErrConflict)
	}
	prev := s
	s.State = to
	if change != nil {
		change(&s)
	}
	return s, t.putStep(&prev, &s, detail)
}

// putStep is the one function that writes a step: Transition and the
// planner (calendar.go) both end here. It refuses a move along no edge of
// the state machine (transition.go), writes the step, keeps the due index
// in line with it and appends an audit record when its state changed. old
// is nil for a new step.
func (t *Tx) putStep(old, s *Step, detail string) error {
	var from scheduler.State // New
	if old != nil {
		from = old.State
	}
	if err := checkEdge(s.ID, from, s.State); err != nil {
		return err
	}
	return t.writeStep(old, s, from, detail)
}

// annotate writes a record about a stored step that leaves its state as it
// is (what Ascio's messages said of it, a bounce): not a move of the state
// machine, so no edge is checked, but one is refused if the state changed.
// The caller appends the audit record saying what was recorded.
func (t *Tx) annotate(old, s *Step) error {
	if s.State != old.State {
		return &IllegalTransitionError{Step: s.ID, From: old.State, To: s.State}
	}
	return t.writeStep(old, s, old.State, "")
}

// writeStep writes s over old (nil: new), moving it from state from: the
// step, its due, upload, coverage, deadline and TLD index entries, the counts, and an
// audit record when the state changed.
func (t *Tx) writeStep(old, s *Step, from scheduler.State, detail string) (err error) {
	s.Updated = t.now
	due := t.tx.Bucket(bucketDue)
	if old != nil && old.State.Waiting() {
		if err := due.Delete(t.stepTimeKey(old.SendAt, old.ID)); err != nil {
			return err
		}
	}
	if s.State.Waiting() {
		if err := due.Put(t.stepTimeKey(s.SendAt, s.ID), nil); err != nil {
			return err
		}
	}
	uploads := t.tx.Bucket(bucketUploads)
	if old != nil && old.State == scheduler.StateSent {
		if err := uploads.Delete(t.stepTimeKey(old.NextUpload, old.ID)); err != nil {
			return err
		}
	}
	if s.State == scheduler.StateSent {
		if err := uploads.Put(t.stepTimeKey(s.NextUpload, s.ID), nil); err != nil {
			return err
		}
	}
	if err := t.indexCoverage(old, s); err != nil {
		return err
	}
	if err := t.indexVERP(old, s); err != nil {
		return err
	}
	if err := t.indexDeadline(old, s); err != nil {
		return err
	}
	if err := putJSON(t.tx.Bucket(bucketSteps), t.stepKey(s.ID), s); err != nil {
		return err
	}
	if from == s.State {
		return nil
	}
	if err := t.count(from, s.State); err != nil {
		return err
	}
	active := t.tx.Bucket(bucketActive)
	switch {
	case s.State == scheduler.StateSending || s.State == scheduler.StateUploading || s.State == scheduler.StateInDoubt:
		err = active.Put(t.stepKey(s.ID), nil)
	case old != nil: // a new step has no entry to drop
		err = active.Delete(t.stepKey(s.ID))
	}
	if err != nil {
		return err
	}
	if detail == "" {
		detail = s.Reason
	}
	if from == New && t.planning != nil && s.Cycle == t.planning.cycle {
		t.planning.steps = append(t.planning.steps, PlannedStep{Notice: s.Notice, State: s.State, Detail: detail})
		return nil
	}
	return t.appendAudit(Record{Step: s.ID, From: from, To: s.State, Detail: detail})
}

// dueKey orders the due index by send time, then step id (or cycle key:
// the renewal index); the id is its key (keys.go).
func dueKey(at time.Time, id string) []byte {
	return append(timeKey(at), idKey(id)...)
}

// timeKey is the 8-byte prefix of the time-ordered indexes (due, uploads,
// deadline, coverage, renewal): big-endian unix seconds, a time before
// 1970 as 0. A scan up to a time compares keys' first 8 bytes with it.
func timeKey(at time.Time) []byte { return u64(uint64(max(at.Unix(), 0))) }

// Due returns up to limit waiting steps whose send time is at or before at,
// earliest first: a seek in the due index, not a scan of the steps.
func (t *Tx) Due(at time.Time, limit int) ([]Step, error) {
	return t.stepsNamed(t.DueIDs(at, limit), "due index")
}

// NextDue is the earliest send time in the due index; false if none waits.
func (t *Tx) NextDue() (time.Time, bool) {
	k, _ := t.tx.Bucket(bucketDue).Cursor().First()
	if k == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(bytesToU64(k[:8])), 0).UTC(), true
}

// SeenMessage reports whether an Ascio message was already applied.
func (t *Tx) SeenMessage(id string) bool {
	return t.tx.Bucket(bucketInbox).Get([]byte(id)) != nil
}

// MarkMessage records that an Ascio message was applied, in the same
// transaction as its effect, so that a replay changes nothing.
func (t *Tx) MarkMessage(id string) error {
	return t.tx.Bucket(bucketInbox).Put([]byte(id), []byte(t.now.Format(time.RFC3339)))
}

// count moves one step from one state's count to another's.
func (t *Tx) count(from, to scheduler.State) error {
	b := t.tx.Bucket(bucketCounts)
	if from != "" {
		if v := b.Get([]byte(from)); len(v) == 8 && bytesToU64(v) > 0 {
			if err := b.Put([]byte(from), u64(bytesToU64(v)-1)); err != nil {
				return err
			}
		}
	}
	var n uint64
	if v := b.Get([]byte(to)); len(v) == 8 {
		n = bytesToU64(v)
	}
	return b.Put([]byte(to), u64(n+1))
}

// Counts is the number of steps in each state, kept as steps move, so that
// metrics and summaries need no scan.
func (t *Tx) Counts() map[scheduler.State]uint64 {
	out := map[scheduler.State]uint64{}
	t.tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
		out[scheduler.State(k)] = bytesToU64(v)
		return nil
	})
	return out
}

// UploadsDue returns up to limit sent steps whose next upload attempt is at
// or before at, earliest first.
func (t *Tx) UploadsDue(at time.Time, limit int) ([]Step, error) {
	return t.stepsNamed(t.UploadIDs(at, limit), "upload index")
}

// stepsNamed reads the steps an index names; a name without a step means
// the index and the steps disagree, which is an error, not a skip.
func (t *Tx) stepsNamed(ids []string, index string) ([]Step, error) {
	out := make([]Step, 0, len(ids))
	for _, id := range ids {
		s, ok, err := t.Step(id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s names step %s, which does not exist", index, id)
		}
		out = append(out, s)
	}
	return out, nil
}

// NextUpload is the earliest next upload attempt; false if no step waits.
func (t *Tx) NextUpload() (time.Time, bool) {
	k, _ := t.tx.Bucket(bucketUploads).Cursor().First()
	if k == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(bytesToU64(k[:8])), 0).UTC(), true
}

// DomainSteps calls fn for every step of every cycle of one domain, oldest
// cycle first.
func (t *Tx) DomainSteps(domain string, fn func(Step) error) error {
	b := t.tx.Bucket(bucketSteps)
	prefix, _ := prefixKey(domain + "/")
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
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

// DueIDs is Due without decoding the steps: the ids of up to limit waiting
// steps whose send time is at or before at, earliest first.
func (t *Tx) DueIDs(at time.Time, limit int) []string {
	return indexIDs(t.tx.Bucket(bucketDue), at, limit)
}

// UploadIDs is UploadsDue without decoding the steps.
func (t *Tx) UploadIDs(at time.Time, limit int) []string {
	return indexIDs(t.tx.Bucket(bucketUploads), at, limit)
}

func indexIDs(b *bolt.Bucket, at time.Time, limit int) []string {
	var out []string
	end := timeKey(at)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
		if bytes.Compare(k[:8], end) > 0 {
			break
		}
		out = append(out, mustID(k[8:]))
	}
	return out
}
