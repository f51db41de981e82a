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

// PurgeMessages deletes the raw messages of the steps whose notice is older
// than before: sent before it or, for a message never sent (failed), whose
// deadline is before it. Only steps in a final state lose their bytes; a
// step still to be sent, uploaded or resolved keeps them. Each purge appends
// an audit record (the step's state unchanged, detail "message purged
// (retention)") in the same transaction as the deletion, and notes the
// record's sequence in the purged bucket, so that Verify can tell it from a
// removal. It works in chunks of short transactions and returns how many
// messages it purged.
func (db *DB) PurgeMessages(before time.Time) (int, error) {
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
				k, _ = c.Seek([]byte(after))
				if k != nil && string(k) == after {
					k, _ = c.Next()
				}
			}
			var ids []string
			seen := 0
			for ; k != nil && seen < purgeChunk; k, _ = c.Next() {
				seen++
				after = string(k)
				ids = append(ids, after)
			}
			done = k == nil
			var purged []Step
			for _, id := range ids {
				s, ok, err := t.Step(id)
				if err != nil {
					return err
				}
				if ok && purgeable(s, before) {
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
				if err := msgs.Delete([]byte(s.ID)); err != nil {
					return err
				}
				if err := t.appendAudit(Record{Step: s.ID, From: s.State, To: s.State, Detail: purgeDetail}); err != nil {
					return err
				}
				if err := pb.Put([]byte(s.ID), u64(audit.Sequence())); err != nil {
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
	return b != nil && b.Get([]byte(stepID)) != nil
}
