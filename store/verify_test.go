package store_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// edit changes one stored value in place, as an attacker with the file would.
func edit(t *testing.T, db *store.DB, bucket string, key []byte, change func([]byte) []byte) {
	t.Helper()
	err := db.Bolt().Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		return b.Put(key, change(bytes.Clone(b.Get(key))))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func seq(n uint64) []byte {
	return []byte{0, 0, 0, 0, 0, 0, byte(n >> 8), byte(n)}
}

func wantBreak(t *testing.T, db *store.DB, check func(*store.Break) bool) *store.Break {
	t.Helper()
	_, err := db.Verify()
	var b *store.Break
	if !errors.As(err, &b) {
		t.Fatalf("verify: %v, want a break", err)
	}
	if !check(b) {
		t.Errorf("break %q is not the one expected", b)
	}
	return b
}

func TestVerifyClean(t *testing.T) {
	s := reporttest.Seed(t)
	v, err := s.DB.Verify()
	if err != nil {
		t.Fatal(err)
	}
	// Seven stored messages: five sent, one failed, one in doubt.
	if v.Messages != 7 || v.Records == 0 || v.Head.Seq != v.Records {
		t.Errorf("verified %+v, want 7 messages and the head at the last record", v)
	}
}

func TestVerifyFindsAlteredMessage(t *testing.T) {
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder2)
	t.Run("content replaced, hash kept", func(t *testing.T) {
		s := reporttest.Seed(t)
		edit(t, s.DB, "messages", store.Key(id), func(v []byte) []byte {
			var m store.Message
			if err := m.Unmarshal(v); err != nil {
				t.Fatal(err)
			}
			raw := reporttest.Raw(id)
			raw[len(raw)-5] ^= 0x20 // one flipped bit in the body
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			zw.Write(raw)
			zw.Close()
			m.Gzip = z.Bytes()
			out, _ := m.Marshal()
			return out
		})
		wantBreak(t, s.DB, func(b *store.Break) bool { return b.Step == id && strings.Contains(b.Problem, "altered") })
	})
	t.Run("compressed byte flipped", func(t *testing.T) {
		s := reporttest.Seed(t)
		edit(t, s.DB, "messages", store.Key(id), func(v []byte) []byte {
			var m store.Message
			m.Unmarshal(v)
			m.Gzip[len(m.Gzip)/2] ^= 0xff
			out, _ := m.Marshal()
			return out
		})
		wantBreak(t, s.DB, func(b *store.Break) bool { return b.Step == id && b.Seq == 0 })
	})
	t.Run("message deleted", func(t *testing.T) {
		s := reporttest.Seed(t)
		err := s.DB.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("messages")).Delete(store.Key(id)) })
		if err != nil {
			t.Fatal(err)
		}
		wantBreak(t, s.DB, func(b *store.Break) bool { return b.Step == id && strings.Contains(b.Problem, "missing") })
	})
}

func TestVerifyFindsEditedRecord(t *testing.T) {
	s := reporttest.Seed(t)
	// A record of one step's change (not a cycle's planning) past the first.
	var n uint64
	s.DB.View(func(tx *store.Tx) error {
		return tx.Audit(2, func(r store.Record) error {
			if n == 0 && len(r.Planned) == 0 {
				n = r.Seq
			}
			return nil
		})
	})
	if n == 0 || n > 0xffff {
		t.Fatalf("no record of a step's change (%d)", n)
	}
	edit(t, s.DB, "audit", seq(n), func(v []byte) []byte {
		r, err := store.DecodeRecord(seq(n), v)
		if err != nil {
			t.Fatal(err)
		}
		r.Detail += "x"
		out, _ := r.Marshal()
		return out
	})
	wantBreak(t, s.DB, func(b *store.Break) bool { return b.Seq == n && strings.Contains(b.Problem, "edited") })

	// Recomputing the edited record's hash moves the break to the next
	// one, whose hash covers the edited record's.
	var prev string
	s.DB.View(func(tx *store.Tx) error {
		return tx.Audit(n-1, func(r store.Record) error {
			if r.Seq == n-1 {
				prev = r.Hash
			}
			return nil
		})
	})
	edit(t, s.DB, "audit", seq(n), func(v []byte) []byte {
		r, _ := store.DecodeRecord(seq(n), v)
		r.Prev = prev
		r.Hash = r.ComputeHash()
		out, _ := r.Marshal()
		return out
	})
	wantBreak(t, s.DB, func(b *store.Break) bool { return b.Seq == n+1 && strings.Contains(b.Problem, "previous record") })
}

func TestVerifyFindsRemovedRecords(t *testing.T) {
	for _, c := range []struct {
		name string
		last bool
		want string
	}{{"in the middle", false, "missing"}, {"at the end", true, "head"}} {
		s := reporttest.Seed(t)
		v, err := s.DB.Verify()
		if err != nil {
			t.Fatal(err)
		}
		n := uint64(3)
		if c.last {
			n = v.Records
		}
		err = s.DB.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("audit")).Delete(seq(n)) })
		if err != nil {
			t.Fatal(err)
		}
		wantBreak(t, s.DB, func(b *store.Break) bool { return strings.Contains(b.Problem, c.want) })
	}
}

func TestPurgeKeepsVerifyGreen(t *testing.T) {
	s := reporttest.Seed(t)
	before, err := s.DB.Verify()
	if err != nil {
		t.Fatal(err)
	}
	// Notices sent before February: reminder 1 of four domains, of which
	// doubt.info's is still sent (not final) and keeps its bytes; the failed
	// one's deadline (3 February) is after the cut.
	leaveCalendar(t, s, "proved.com", "renewed.net", "xn--bcher-kva.com", "doubt.info")
	before, err = s.DB.Verify()
	if err != nil {
		t.Fatal(err)
	}
	cut := store.Retention{SentBefore: time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC), LeftBefore: time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)}
	n, err := s.DB.PurgeMessages(cut)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("purged %d messages, want 3", n)
	}
	after, err := s.DB.Verify()
	if err != nil {
		t.Fatalf("verify after a purge: %v", err)
	}
	if after.Purged != 3 || after.Messages != before.Messages-3 || after.Records != before.Records+3 {
		t.Errorf("after the purge: %+v; before: %+v", after, before)
	}
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder1)
	var rec store.Record
	s.DB.View(func(tx *store.Tx) error {
		return tx.Audit(before.Records+1, func(r store.Record) error {
			if r.Step == id {
				rec = r
			}
			return nil
		})
	})
	if rec.Detail != "message purged (retention)" || rec.To != scheduler.StateProved || rec.From != scheduler.StateProved {
		t.Errorf("purge record %+v", rec)
	}
	// A second purge finds nothing more.
	if n, err := s.DB.PurgeMessages(cut); err != nil || n != 0 {
		t.Errorf("second purge: %d, %v", n, err)
	}
	// A message deleted by hand beside the purged ones still breaks.
	other := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder2)
	s.DB.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("messages")).Delete(store.Key(other)) })
	wantBreak(t, s.DB, func(b *store.Break) bool { return b.Step == other })
}

func TestDailyHeads(t *testing.T) {
	s := reporttest.Seed(t)
	var heads []store.Head
	if err := s.DB.DailyHeads(func(h store.Head) error { heads = append(heads, h); return nil }); err != nil {
		t.Fatal(err)
	}
	var last store.Head
	s.DB.View(func(tx *store.Tx) (err error) { last, err = tx.ChainHead(); return err })
	if len(heads) < 3 || heads[len(heads)-1] != last {
		t.Fatalf("heads %+v; want several days ending at the chain head %+v", heads, last)
	}
	for i := 1; i < len(heads); i++ {
		if !heads[i].At.After(heads[i-1].At) || heads[i].Seq <= heads[i-1].Seq || heads[i].At.YearDay() == heads[i-1].At.YearDay() {
			t.Errorf("heads %d and %d are not on successive days: %+v %+v", i-1, i, heads[i-1], heads[i])
		}
	}
}
