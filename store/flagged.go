package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// The contact-flag index lists the domains whose record holds a contact
// flag (ContactFlag), so that a report, which shows the flag on every row,
// looks up only those domains instead of every row's (a month's report
// among a million domains read the whole domains bucket for a handful of
// flags: a tenth of its time).
//
// A flag is never taken off a record (Upsert keeps it), so the index only
// grows: putDomain adds a flagged domain. An errpd from before the index
// writes flags without it; so the index counts as complete only while
// meta's flag_index_head is the audit chain's head (audit_head), which
// appendAudit moves on with every record while it is complete, and a flag
// is always set with an audit record (RecordBounce). A record appended by
// an older errpd leaves it behind, as would a chain cut back and written
// again: the index is no longer trusted (Lookups reads every domain again)
// until a writable Open refills it.
var (
	bucketFlagged = []byte("flagged") // A-label -> "", for every domain whose record holds a contact flag
	keyFlagIndex  = []byte("flag_index_head")
)

// putDomain stores d, and lists it in the contact-flag index when it is
// flagged: the one way a domain is written.
func (t *Tx) putDomain(d Domain) error {
	if err := putJSON(t.tx.Bucket(bucketDomains), []byte(d.Name), d); err != nil {
		return err
	}
	if d.Flag == nil {
		return nil
	}
	return t.tx.Bucket(bucketFlagged).Put([]byte(d.Name), nil)
}

// flagIndexComplete reports whether the contact-flag index lists every
// flagged domain: it was filled, and no audit record was appended since
// without moving its head on (a new store has neither head).
func flagIndexComplete(tx *bolt.Tx) bool {
	meta := tx.Bucket(bucketMeta)
	return tx.Bucket(bucketFlagged) != nil && bytes.Equal(meta.Get(keyFlagIndex), meta.Get(keyAuditHead))
}

// keepFlagIndex moves the index's head on to the record being appended,
// whose predecessor is prev, when the index was complete before it.
func keepFlagIndex(meta *bolt.Bucket, prev, head string) error {
	if string(meta.Get(keyFlagIndex)) != prev {
		return nil
	}
	return meta.Put(keyFlagIndex, []byte(head))
}

// fillFlagIndex lists every flagged domain in the contact-flag index when
// it is not complete (a store written before it, or since by an errpd
// without it): one read of the domains bucket, which only walks each value
// for the flag's field.
func (db *DB) fillFlagIndex() error {
	var flagged [][]byte
	complete := false
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if complete = flagIndexComplete(tx); complete {
			return nil
		}
		return tx.Bucket(bucketDomains).ForEach(func(k, v []byte) error {
			if hasField(v, dFlag) {
				flagged = append(flagged, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || complete {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFlagged)
		for _, name := range flagged {
			if err := b.Put(name, nil); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		return meta.Put(keyFlagIndex, bytes.Clone(meta.Get(keyAuditHead)))
	})
}
