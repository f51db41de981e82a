package store

import (
	"bytes"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// bucketRenewal is the renewal checks' due index, shaped as the coverage
// index: expiry + PlanOptions.RenewalCheck (8 bytes) + CycleKey ->
// attempts so far (8 bytes). A renew-mode cycle gets its entry when it is
// planned; the check drops those that need no asking.
var bucketRenewal = []byte("renewal_checks")

func initRenewal(tx *bolt.Tx) error {
	_, err := tx.CreateBucketIfNotExists(bucketRenewal)
	return err
}

// indexRenewal gives a renew-mode cycle its GetDomain check.
func (t *Tx) indexRenewal(c Cycle, after time.Duration) error {
	if after <= 0 || c.Mode != scheduler.ModeRenew || c.NotRenewed != nil {
		return nil
	}
	return t.tx.Bucket(bucketRenewal).Put(dueKey(c.Expiry.Add(after), c.Key), u64(0))
}

// RenewalCheck is one cycle whose renewal check is due.
type RenewalCheck struct {
	Cycle    string
	Due      time.Time
	Attempts int // GetDomain calls that failed so far
}

// RenewalChecksDue returns up to limit checks due at or before at, earliest
// first: a seek in the index, not a scan of the cycles.
func (t *Tx) RenewalChecksDue(at time.Time, limit int) []RenewalCheck {
	end := timeKey(at)
	var out []RenewalCheck
	b := t.tx.Bucket(bucketRenewal)
	if b == nil { // a store opened read-only before its first writable open
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil && len(out) < limit && bytes.Compare(k[:8], end) <= 0; k, v = c.Next() {
		out = append(out, RenewalCheck{Cycle: mustID(k[8:]), Due: time.Unix(int64(bytesToU64(k[:8])), 0).UTC(),
			Attempts: int(bytesToU64(v))})
	}
	return out
}

// NextRenewalCheck is the earliest renewal check; false if none waits.
func (t *Tx) NextRenewalCheck() (time.Time, bool) { return t.firstDue(bucketRenewal) }

// DropRenewalCheck removes a check that is done or needs no asking.
func (t *Tx) DropRenewalCheck(c RenewalCheck) error {
	return t.tx.Bucket(bucketRenewal).Delete(dueKey(c.Due, c.Cycle))
}

// PostponeRenewalCheck moves a check to at after a temporary error,
// counting one more failed attempt.
func (t *Tx) PostponeRenewalCheck(c RenewalCheck, at time.Time) error {
	if err := t.DropRenewalCheck(c); err != nil {
		return err
	}
	return t.tx.Bucket(bucketRenewal).Put(dueKey(at, c.Cycle), u64(uint64(c.Attempts+1)))
}
