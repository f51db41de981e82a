package store

import (
	"time"
)

// bucketPurged records which steps' messages retention purged: StepID ->
// the sequence number (8 bytes) of the audit record that says so. Verify
// reads it to tell a purged message from a removed one. It is created by the
// first purge, so stores that never purged do not have it.
var bucketPurged = []byte("purged")

// purgeDetail is the audit record's detail for a purge.
const purgeDetail = "message purged (retention)"

// purgeChunk bounds one write transaction of a purge: the daemon's own
// writes wait for it.
const purgeChunk = 1000

// LeftHold is how long after a domain left the calendar (deleted,
// transferred away, dropped by a full sync) its messages are kept: two
// years, as ICANN's data retention asks of a registrar for a registration
// it no longer sponsors.
const LeftHold = 2 * 365 * 24 * time.Hour

// Retention says which messages PurgeMessages may delete: those of steps in
// a final state whose notice (its send, or its deadline when never sent) is
// older than SentBefore, and whose domain left the calendar before
// LeftBefore. A domain still in the calendar (or unknown to the store)
// keeps every message.
type Retention struct {
	SentBefore time.Time // now less audit.retention
	LeftBefore time.Time // now less LeftHold
}

// RetentionAt is the rule at now with audit.retention keep.
func RetentionAt(now time.Time, keep time.Duration) Retention {
	return Retention{SentBefore: now.Add(-keep), LeftBefore: now.Add(-LeftHold)}
}

// PurgeMessages deletes the raw messages the retention rule r lets go.
// Only steps in a final state lose their bytes; a step still to be sent,
// uploaded or resolved keeps them. Each purge appends
// an audit record (the step's state unchanged, detail "message purged
// (retention)") in the same transaction as the deletion, and notes the
// record's sequence in the purged bucket, so that Verify can tell it from a
// removal. It works in chunks of short transactions and returns how many
// messages it purged.
func (db *DB) PurgeMessages(r Retention) (int, error) {
	total, after := 0, ""
	for {
		var n int
		var done bool
		err := db.Update(func(t *Tx) error {
			n, done = 0, false
			c := t.tx.Bucket(bucketMessages).Cursor()
			var k []byte
			if after == "" {
				k, _ = c.First()
			} else {
				k, _ = c.Seek(idKey(after))
				if k != nil && mustID(k) == after {
					k, _ = c.Next()
				}
			}
			var ids []string
			seen := 0
			for ; k != nil && seen < purgeChunk; k, _ = c.Next() {
				seen++
				after = mustID(k)
				ids = append(ids, after)
			}
			done = k == nil
			var purged []Step
			domains := map[string]bool{} // domain -> left before r.LeftBefore
			for _, id := range ids {
				s, ok, err := t.Step(id)
				if err != nil {
					return err
				}
				if !ok || !purgeable(s, r.SentBefore) {
					continue
				}
				gone, seen := domains[s.Domain]
				if !seen {
					d, found, err := t.Domain(s.Domain)
					if err != nil {
						return err
					}
					gone = found && d.left().Before(r.LeftBefore)
					domains[s.Domain] = gone
				}
				if gone {
					purged = append(purged, s)
				}
			}
			if len(purged) == 0 {
				return nil
			}
			pb, err := t.tx.CreateBucketIfNotExists(bucketPurged)
			if err != nil {
				return err
			}
			msgs, audit := t.tx.Bucket(bucketMessages), t.tx.Bucket(bucketAudit)
			for _, s := range purged {
				if err := msgs.Delete(idKey(s.ID)); err != nil {
					return err
				}
				if err := t.appendAudit(Record{Step: s.ID, From: s.State, To: s.State, Detail: purgeDetail}); err != nil {
					return err
				}
				if err := pb.Put(idKey(s.ID), u64(audit.Sequence())); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if done {
			return total, nil
		}
	}
}

func purgeable(s Step, before time.Time) bool {
	if !s.State.Final() {
		return false
	}
	at := s.SentAt
	if at.IsZero() {
		at = s.Deadline
	}
	return at.Before(before)
}

// Purged reports whether retention purged a step's message.
func (t *Tx) Purged(stepID string) bool {
	b := t.tx.Bucket(bucketPurged)
	return b != nil && b.Get(idKey(stepID)) != nil
}

// left is when the domain left the calendar: its Departure, or for one
// stopped before departures were recorded, its last update (the stop);
// a far future time while it is still in the calendar.
func (d Domain) left() time.Time {
	switch {
	case d.Left != nil:
		return d.Left.At
	case d.Stopped != "":
		return d.Updated
	}
	return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC) // still in the calendar
}
