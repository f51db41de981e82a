package store_test

import (
	"path/filepath"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestFlagIndexSurvivesCompaction: a flag listed in the
// contact-flag index is still listed, and the index still trusted, after
// errpd compact writes the store again.
func TestFlagIndexSurvivesCompaction(t *testing.T) {
	s := reporttest.SeedAt(t, filepath.Join(t.TempDir(), "errpd.db"))
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder2)
	if err := s.DB.Update(func(tx *store.Tx) error {
		_, err := tx.RecordBounce(id, store.Bounce{Kind: store.BounceHard, Status: "5.1.1", At: s.Now()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.DB.Close()
	if _, err := store.Compact(s.Path, store.CompactOptions{}); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(s.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var listed []string
	var heads [2]string
	db.Bolt().View(func(tx *bolt.Tx) error {
		meta := tx.Bucket([]byte("meta"))
		heads = [2]string{string(meta.Get([]byte("flag_index_head"))), string(meta.Get([]byte("audit_head")))}
		return tx.Bucket([]byte("flagged")).ForEach(func(k, _ []byte) error { listed = append(listed, string(k)); return nil })
	})
	if !slices.Equal(listed, []string{"proved.com"}) || heads[0] != heads[1] || heads[0] == "" {
		t.Fatalf("after compaction the index lists %v, heads %q", listed, heads)
	}
	if got := flags(t, db, "proved.com"); !slices.Equal(got, []string{"proved.com"}) {
		t.Fatalf("flagged %v after compaction", got)
	}
}

// flags lists those of names that the reports' lookup (Lookups.ContactFailed)
// finds flagged.
func flags(t *testing.T, db *store.DB, names ...string) (got []string) {
	t.Helper()
	if err := db.View(func(tx *store.Tx) error {
		l := tx.Lookups()
		for _, name := range names {
			f, err := l.ContactFailed(name)
			if err != nil {
				return err
			}
			if f != nil {
				got = append(got, name)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}
