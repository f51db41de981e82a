package store

import (
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// TestReadIndexFillResumes: a fill killed after its first chunk goes on
// from its mark at the next open, and ends with every step indexed.
func TestReadIndexFillResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "errpd.db")
	now := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	db, err := Open(path, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	o := PlanOptions{Policy: scheduler.DefaultPolicy()}
	for _, name := range []string{"a.com", "b.net", "c.org"} {
		err := db.Update(func(tx *Tx) error {
			_, err := tx.Upsert(Domain{Name: name, Mode: scheduler.ModeExpire, Expiry: now.Add(60 * scheduler.Day),
				Registrant: Registrant{Name: "Ana", Email: "ana@mail.example"}}, o)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := indexKeys(t, db)
	if len(want) != 12+3 {
		t.Fatalf("%d index entries for 3 expire-mode domains, want 12 deadlines + 3 TLD entries", len(want))
	}
	// As a store from before the indexes, then one chunk of 5, then a kill.
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketDeadline); err != nil {
			return err
		}
		return initReadIndexes(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if done, err := db.fillReadChunk(5); err != nil || done {
		t.Fatalf("first chunk: done %v, %v", done, err)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if mark := tx.Bucket(bucketMeta).Get(keyReadFill); string(mark) != "k"+string(idKey("b.net/20270430T090000Z/reminder1")) {
			t.Errorf("mark after 5 steps is %q", mark)
		}
		if n := tx.Bucket(bucketDeadline).Stats().KeyN; n != 5 {
			t.Errorf("%d deadline entries after a chunk of 5", n)
		}
		return nil
	})
	db.Close()

	if db, err = Open(path, Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := indexKeys(t, db); len(got) != len(want) {
		t.Errorf("after the resumed fill %d entries, want %d", len(got), len(want))
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("entry %d is %q, want %q", i, got[i], want[i])
			}
		}
	}
	db.View(func(tx *Tx) error {
		if !tx.ReadIndexes() {
			t.Error("the fill left its mark")
		}
		return nil
	})
}

func indexKeys(t *testing.T, db *DB) []string {
	t.Helper()
	var out []string
	db.bolt.View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDeadline, bucketTLD} {
			tx.Bucket(name).ForEach(func(k, _ []byte) error { out = append(out, string(name)+":"+string(k)); return nil })
		}
		return nil
	})
	return out
}
