package store

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// upgradeV1 converts one record of a schema-1 file (bucket, key, value as
// schema 1 wrote them: string ids in keys, JSON values) to schema 2 and
// hands the result to emit, which writes it to the new file. The upgrade
// driver calls it for every record of every bucket, in any order; it
// emits nothing for meta's schema_version, which the driver writes last,
// so that a half-written file is never taken for an upgraded one.
//
//   - domains: the value re-encoded (the name stays the key);
//   - cycles, steps, messages: the id becomes its key (keys.go), the
//     value is re-encoded; each step also gets its entries in the read
//     indexes new in schema 2 (deadline and TLD, deadline.go);
//   - due, uploads, coverage, renewal_checks: time (8 bytes) + id, the id
//     becoming its key; the value as it is; of coverage only the checks
//     put off after a failed attempt (attempts > 0), see below;
//   - active, purged: the id becomes its key; verp: the value does;
//   - audit: kept as it is: a schema-1 record stays JSON, its hash the
//     one computed over that JSON (Record.Schema1); the chain's head in
//     meta, the hex hash of the last one, is unchanged;
//   - meta (but schema_version), inbox, counts and any bucket this errpd
//     does not know: as they are.
func upgradeV1(bucket []byte, k, v []byte, emit func(bucket, k, v []byte) error) error {
	fail := func(err error) error {
		return fmt.Errorf("upgrading bucket %s, key %q: %w", bucket, k, err)
	}
	switch string(bucket) {
	case string(bucketMeta):
		if bytes.Equal(k, keySchema) {
			return nil
		}
	case string(bucketDomains):
		var d Domain
		if err := json.Unmarshal(v, &d); err != nil {
			return fail(err)
		}
		if d.Name != string(k) {
			return fail(fmt.Errorf("the value names domain %q", d.Name))
		}
		return emit(bucket, k, d.marshal())
	case string(bucketCycles):
		var c Cycle
		if err := json.Unmarshal(v, &c); err != nil {
			return fail(err)
		}
		if c.Key != string(k) || c.Domain+"/"+c.Expiry.UTC().Format(stamp) != c.Key {
			return fail(fmt.Errorf("the value says cycle %q of %q at %s", c.Key, c.Domain, c.Expiry))
		}
		return emit(bucket, idKey(c.Key), c.marshal())
	case string(bucketSteps):
		var s Step
		if err := json.Unmarshal(v, &s); err != nil {
			return fail(err)
		}
		if s.ID != string(k) {
			return fail(fmt.Errorf("the value says step %q", s.ID))
		}
		raw, err := s.marshal()
		if err != nil {
			return fail(err)
		}
		if err := emit(bucket, idKey(s.ID), raw); err != nil {
			return err
		}
		// The read indexes (deadline.go) are new in schema 2: each step
		// gets its entries as it is converted.
		if err := emit(bucketDeadline, deadlineKey(&s), nil); err != nil {
			return err
		}
		return emit(bucketTLD, tldKey(s.Domain), nil)
	case string(bucketMessages):
		var m Message
		if err := json.Unmarshal(v, &m); err != nil {
			return fail(err)
		}
		raw, err := m.marshal()
		if err != nil {
			return fail(err)
		}
		return emit(bucket, idKey(string(k)), raw)
	case string(bucketCoverage):
		// Schema 1 kept an entry per step; schema 2 walks the deadline
		// index instead (coverage.go), from an empty cursor: every step
		// is handed to the check once more. That is harmless: a step
		// answered already has covered_by_ascio set and is passed over,
		// and the check drops the others that need no asking by the same
		// rules as before (proved in time, not owed, no Ascio type). Only
		// the checks put off after a failed attempt are kept, with their
		// count; the walk may ask for such a step once more, and the
		// first answer recorded stays (RecordCoverage).
		if len(v) != 8 || bytesToU64(v) == 0 {
			return nil
		}
		fallthrough
	case string(bucketDue), string(bucketUploads), string(bucketRenewal):
		if len(k) <= 8 {
			return fail(fmt.Errorf("key is not time + id"))
		}
		return emit(bucket, append(bytes.Clone(k[:8]), idKey(string(k[8:]))...), v)
	case string(bucketActive), string(bucketPurged):
		return emit(bucket, idKey(string(k)), v)
	case string(bucketVERP):
		return emit(bucket, k, idKey(string(v)))
	}
	return emit(bucket, k, v)
}
