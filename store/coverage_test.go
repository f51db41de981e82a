package store_test

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/store"
)

// A store written before the coverage index existed gets its checks at
// its next writable open, from one scan: every step not skipped, at its
// deadline + 24h.
func TestCoverageIndexBackfill(t *testing.T) {
	s := reporttest.Seed(t)
	count := func(db *store.DB) (n int, first time.Time) {
		db.View(func(tx *store.Tx) error {
			due, err := tx.CoverageDue(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 1000)
			n = len(due)
			first, _ = tx.NextCoverage()
			return err
		})
		return n, first
	}
	n, first := count(s.DB)
	// Every step gets its check when written (18 + 2), less the three the
	// seed answered.
	if n != 17 || !first.Equal(reporttest.Expiry().Add(-26*24*time.Hour+store.CoverageDelay)) {
		t.Fatalf("index: %d checks, first at %s", n, first)
	}
	if err := s.DB.Bolt().Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("coverage")) }); err != nil {
		t.Fatal(err)
	}
	s.DB.Close()
	db, err := store.Open(s.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Less the skipped ones (renewed.net r2, beispiel.de x2): no asking.
	if got, _ := count(db); got != 14 {
		t.Errorf("after the backfill: %d checks, want 14", got)
	}
}
