package store_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestUpgradeV1EveryBucket writes a store through errpd's own operations
// (notices planned, sent, proved, failed, in doubt, bounced, covered,
// purged; a renewal check; an Ascio message applied), rewrites it as
// schema 1 wrote it (string ids in keys, JSON values, JSON audit records
// hashed over their JSON: the code of release 2a23107, kept below as
// schema1Value), converts every record of every bucket with upgradeV1 into
// a new file, and then holds the new file to the original: byte for byte
// in every bucket but the audit trail, whose records stay schema 1's and
// verify as such; and Verify passes on it.
func TestUpgradeV1EveryBucket(t *testing.T) {
	s := reporttest.Seed(t)
	seedMore(t, s)
	orig := dump(t, s.DB.Bolt())
	for _, b := range []string{"domains", "cycles", "steps", "due", "uploads", "coverage", "renewal_checks",
		"messages", "audit", "inbox", "active", "counts", "verp", "purged", "meta"} {
		if len(orig[b]) == 0 {
			t.Errorf("the seeded store has nothing in bucket %s: the test would not cover it", b)
		}
	}
	v1 := downgrade(t, orig)

	// Convert into a new file, as the migration's driver does.
	path := filepath.Join(t.TempDir(), "v2.db")
	out, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = out.Update(func(tx *bolt.Tx) error {
		for bucket, recs := range v1 {
			for _, r := range recs {
				err := store.UpgradeV1([]byte(bucket), r.k, r.v, func(b, k, v []byte) error {
					nb, err := tx.CreateBucketIfNotExists(b)
					if err != nil {
						return err
					}
					return nb.Put(k, v)
				})
				if err != nil {
					return err
				}
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), u64(store.SchemaVersion))
	})
	if err != nil {
		t.Fatal(err)
	}
	got := dump(t, out)
	out.Close()

	for bucket, recs := range orig {
		if bucket == "audit" {
			continue
		}
		if bucket == "meta" {
			recs = v1["meta"] // the chain's head is schema 1's last hash
			recs = slices.DeleteFunc(slices.Clone(recs), func(r rec) bool { return string(r.k) == "schema_version" })
			got[bucket] = slices.DeleteFunc(got[bucket], func(r rec) bool { return string(r.k) == "schema_version" })
		}
		if len(got[bucket]) != len(recs) {
			t.Errorf("bucket %s: %d records after the upgrade, %d before", bucket, len(got[bucket]), len(recs))
			continue
		}
		for i, r := range recs {
			if g := got[bucket][i]; !bytes.Equal(g.k, r.k) || !bytes.Equal(g.v, r.v) {
				t.Errorf("bucket %s, record %d: upgraded to %x = %x, want %x = %x", bucket, i, g.k, g.v, r.k, r.v)
			}
		}
	}
	for i, r := range v1["audit"] {
		if g := got["audit"][i]; !bytes.Equal(g.k, r.k) || !bytes.Equal(g.v, r.v) {
			t.Errorf("audit record %d: upgraded to %q, want schema 1's %q as it was", i+1, g.v, r.v)
		}
	}

	// The chain runs on across the upgrade: a schema-2 record after the
	// schema-1 ones.
	db, err := store.Open(path, store.Options{Now: s.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(store.Domain{Name: "after.example", Mode: scheduler.ModeExpire, Expiry: s.Now().AddDate(0, 2, 0)},
			store.PlanOptions{Policy: scheduler.DefaultPolicy()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.Verify()
	if err != nil {
		t.Fatalf("verify of the upgraded store: %v", err)
	}
	if v.Records != uint64(len(orig["audit"]))+1 || v.Messages == 0 || v.Purged != len(orig["purged"]) {
		t.Errorf("verified %+v: want %d records, messages and %d purges", v, len(orig["audit"]), len(orig["purged"]))
	}
	// The API reads the schema-1 records with their Prev and hash.
	db.View(func(tx *store.Tx) error {
		return tx.Audit(2, func(r store.Record) error {
			if r.Schema1 == (r.Seq == v.Records) || r.Prev == "" || r.Hash != r.ComputeHash() {
				t.Errorf("record %d read back as %+v", r.Seq, r)
			}
			return nil
		})
	})
}

// TestUpgradeV1RefusesGarbage: a schema-1 value that does not decode is
// an error naming the bucket and the key, not a panic or a silent skip.
func TestUpgradeV1RefusesGarbage(t *testing.T) {
	for _, b := range []string{"domains", "cycles", "steps", "messages"} {
		err := store.UpgradeV1([]byte(b), []byte("x.example"), []byte("{garbage"), func(_, _, _ []byte) error { return nil })
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(b)) || !bytes.Contains([]byte(err.Error()), []byte("x.example")) {
			t.Errorf("bucket %s: %v, want an error naming the bucket and the key", b, err)
		}
	}
}

// seedMore adds what reporttest.Seed leaves out: a bounce, a renewal
// check, an applied Ascio message, a coverage check put off after a failed
// attempt (the one kind of coverage entry schema 2 keeps) and a purge.
func seedMore(t *testing.T, s *reporttest.Store) {
	t.Helper()
	bounced := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder2)
	err := s.DB.Update(func(tx *store.Tx) error {
		if _, err := tx.RecordBounce(bounced, store.Bounce{Kind: store.BounceHard, Status: "5.1.1", At: s.Now()}); err != nil {
			return err
		}
		if err := tx.MarkMessage("ascio-1"); err != nil {
			return err
		}
		checks, err := tx.CoverageDue(s.Now().AddDate(1, 0, 0), 1)
		if err != nil || len(checks) == 0 {
			return fmt.Errorf("no coverage check to put off: %v", err)
		}
		if err := tx.PostponeCoverage(checks[0], s.Now().AddDate(0, 0, 3), true); err != nil {
			return err
		}
		exp := reporttest.Expiry().AddDate(2, 0, 0)
		_, err = tx.Upsert(store.Domain{Name: "checked.org", Mode: scheduler.ModeRenew, Expiry: exp,
			Registrant: store.Registrant{Name: "C", Email: "c@example.org"}},
			store.PlanOptions{Policy: scheduler.DefaultPolicy(), RenewalCheck: 48 * time.Hour})
		if err != nil {
			return err
		}
		return tx.Stop("proved.com", "deleted")
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Set(s.Now().AddDate(5, 0, 0))
	n, err := s.DB.PurgeMessages(store.Retention{SentBefore: s.Now(), LeftBefore: s.Now()})
	if err != nil || n == 0 {
		t.Fatalf("purge: %d, %v", n, err)
	}
}

type rec struct{ k, v []byte }

// dump reads every bucket of a file, in key order.
func dump(t *testing.T, db *bolt.DB) map[string][]rec {
	t.Helper()
	out := map[string][]rec{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			recs := []rec{}
			err := b.ForEach(func(k, v []byte) error {
				recs = append(recs, rec{bytes.Clone(k), bytes.Clone(v)})
				return nil
			})
			out[string(name)] = recs
			return err
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// downgrade rewrites a schema-2 dump as schema 1 wrote the same records.
func downgrade(t *testing.T, v2 map[string][]rec) map[string][]rec {
	t.Helper()
	id := func(k []byte) []byte {
		s, ok := store.KeyID(k)
		if !ok {
			t.Fatalf("key %x is no id", k)
		}
		return []byte(s)
	}
	out := map[string][]rec{}
	var head string
	for bucket, recs := range v2 {
		for _, r := range recs {
			k, v := r.k, r.v
			switch bucket {
			case "domains":
				v = schema1Value(t, bucket, k, v, &store.Domain{})
			case "cycles":
				v = schema1Value(t, bucket, k, v, &store.Cycle{})
				k = id(k)
			case "steps":
				v = schema1Value(t, bucket, k, v, &store.Step{})
				k = id(k)
			case "messages":
				var m store.Message
				if err := m.Unmarshal(v); err != nil {
					t.Fatal(err)
				}
				v, _ = json.Marshal(m)
				k = id(k)
			case "due", "uploads", "coverage", "renewal_checks":
				k = append(bytes.Clone(k[:8]), id(k[8:])...)
			case "active", "purged":
				k = id(k)
			case "verp":
				v = id(v)
			case "audit":
				rc, err := store.DecodeRecord(k, v)
				if err != nil {
					t.Fatal(err)
				}
				rc.Schema1, rc.Prev = true, head
				rc.Hash = rc.ComputeHash()
				head = rc.Hash
				v, _ = json.Marshal(rc)
			case "meta":
				if string(k) == "schema_version" {
					v = u64(1)
				}
			}
			out[bucket] = append(out[bucket], rec{k, v})
		}
	}
	for i, r := range out["meta"] {
		if string(r.k) == "audit_head" {
			out["meta"][i].v = []byte(head)
		}
	}
	return out
}

// schema1Value is the JSON schema 1 wrote for the value at k (its putJSON
// was json.Marshal).
func schema1Value(t *testing.T, bucket string, k, v []byte, into any) []byte {
	t.Helper()
	if err := store.DecodeValue(k, v, into); err != nil {
		t.Fatalf("bucket %s: %v", bucket, err)
	}
	raw, err := json.Marshal(into)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
