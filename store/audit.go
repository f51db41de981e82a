package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// Record is one entry of the audit trail: a step's state change, written in
// the same transaction as the change itself. Records form a hash chain: each
// holds the hash of the one before, so that an edited or removed record
// breaks every hash after it.
type Record struct {
	Seq    uint64          `json:"seq"`
	At     time.Time       `json:"at"`
	Step   string          `json:"step"`
	From   scheduler.State `json:"from,omitempty"`
	To     scheduler.State `json:"to"`
	Detail string          `json:"detail,omitempty"`
	Prev   string          `json:"prev"` // hex SHA-256 of the previous record; empty for the first
	Hash   string          `json:"hash"` // hex SHA-256 of this record with Hash empty
}

var keyAuditHead = []byte("audit_head")

// ComputeHash is the record's hash over its JSON with Hash left empty.
func (r Record) ComputeHash() string {
	r.Hash = ""
	raw, _ := json.Marshal(r) // a struct of strings, numbers and times cannot fail
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

func (t *Tx) appendAudit(r Record) error {
	b := t.tx.Bucket(bucketAudit)
	// Keys only ever grow and records are never rewritten: fill pages
	// instead of splitting them in half, which would leave the audit
	// trail's pages half empty.
	b.FillPercent = 1.0
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	meta := t.tx.Bucket(bucketMeta)
	r.Seq, r.At = seq, t.now
	r.Prev = string(meta.Get(keyAuditHead))
	r.Hash = r.ComputeHash()
	if err := meta.Put(keyAuditHead, []byte(r.Hash)); err != nil {
		return err
	}
	return putJSON(b, u64(seq), r)
}

// Audit calls fn for every audit record from sequence number from on, in order.
func (t *Tx) Audit(from uint64, fn func(Record) error) error {
	b := t.tx.Bucket(bucketAudit)
	c := b.Cursor()
	for k, _ := c.Seek(u64(from)); k != nil; k, _ = c.Next() {
		var r Record
		if _, err := getJSON(b, k, &r); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func bytesToU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
