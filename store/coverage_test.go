package store_test

import (
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

var coverageFar = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)

func coverageDue(t *testing.T, db *store.DB, at time.Time) (due []store.CoverageCheck, first time.Time) {
	t.Helper()
	err := db.View(func(tx *store.Tx) (err error) {
		due, err = tx.CoverageDue(at, 1<<20)
		first, _ = tx.NextCoverage()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return due, first
}

func coverageEntries(t *testing.T, db *store.DB) int {
	t.Helper()
	n := 0
	db.Bolt().View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte("coverage")).Stats().KeyN
		return nil
	})
	return n
}

// dropCoverage handles the checks as the check does one that needs no
// asking.
func dropCoverage(t *testing.T, db *store.DB, checks []store.CoverageCheck) {
	t.Helper()
	err := db.Update(func(tx *store.Tx) error {
		for _, c := range checks {
			if err := tx.DropCoverage(c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The checks come from the walk of the deadline index: every step not
// answered and not skipped, at its deadline + 24h, earliest first, with no
// entry of its own; a store without the coverage bucket gets the same.
func TestCoverageWalk(t *testing.T) {
	s := reporttest.Seed(t)
	due, first := coverageDue(t, s.DB, coverageFar)
	// 18 + 2 steps, less the three the seed answered and the three
	// skipped (renewed.net r2, beispiel.de x2).
	if len(due) != 14 || !first.Equal(reporttest.Expiry().Add(-26*24*time.Hour+store.CoverageDelay)) {
		t.Fatalf("walk: %d checks, first at %s", len(due), first)
	}
	for i, c := range due {
		if c.Step.CoveredByAscio != "" || c.Step.State == scheduler.StateSkipped || c.Attempts != 0 ||
			!c.Due.Equal(c.Step.Deadline.Add(store.CoverageDelay)) || (i > 0 && c.Due.Before(due[i-1].Due)) {
			t.Errorf("check %d: %s %s due %s, attempts %d", i, c.Step.ID, c.Step.State, c.Due, c.Attempts)
		}
	}
	if n := coverageEntries(t, s.DB); n != 0 {
		t.Errorf("coverage bucket holds %d entries, want none", n)
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
	if got, _ := coverageDue(t, db, coverageFar); len(got) != 14 {
		t.Errorf("without the bucket: %d checks, want 14", len(got))
	}
}

// The coverage bucket does not grow with the steps: 1000 domains planned,
// 4000 steps, no entry.
func TestCoverageBucketDoesNotGrow(t *testing.T) {
	s := reporttest.Seed(t)
	before := coverageEntries(t, s.DB)
	err := s.DB.Update(func(tx *store.Tx) error {
		for i := range 1000 {
			_, err := tx.Upsert(store.Domain{Name: fmt.Sprintf("d%d.example", i), Mode: scheduler.ModeExpire,
				Expiry: s.Now().AddDate(0, 2, 0), Registrant: store.Registrant{Name: "R", Email: "r@example.org"}},
				store.PlanOptions{Policy: scheduler.DefaultPolicy()})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := coverageEntries(t, s.DB); n != before || n != 0 {
		t.Errorf("coverage bucket: %d entries after 1000 domains, %d before; want 0", n, before)
	}
	if due, _ := coverageDue(t, s.DB, coverageFar); len(due) < 4000 {
		t.Errorf("%d checks due, want the new steps' too", len(due))
	}
}

// A step written behind the cursor (its deadline before that of a check
// already handled) is still checked, from an explicit entry; so is one
// written between the cursor and a check handed over but not yet handled.
func TestCoverageBehindCursor(t *testing.T) {
	s := reporttest.Seed(t)
	due, _ := coverageDue(t, s.DB, coverageFar)
	// Hand over the first check, then plan a domain whose deadlines fall
	// between the cursor and the last check, and handle the last one:
	// the cursor jumps over the new steps.
	if err := s.DB.Update(func(tx *store.Tx) error { return tx.DropCoverage(due[0]) }); err != nil {
		t.Fatal(err)
	}
	plan := func(name string, expiry time.Time) {
		err := s.DB.Update(func(tx *store.Tx) error {
			_, err := tx.Upsert(store.Domain{Name: name, Mode: scheduler.ModeExpire, Expiry: expiry,
				Registrant: store.Registrant{Name: "R", Email: "r@example.org"}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	plan("between.example", reporttest.Expiry().AddDate(0, 0, 1))
	last := due[len(due)-1]
	dropCoverage(t, s.DB, due[1:])
	// Now behind the cursor entirely.
	plan("behind.example", reporttest.Expiry().AddDate(0, 0, -1))
	got, _ := coverageDue(t, s.DB, coverageFar)
	domains := map[string]int{}
	for _, c := range got {
		if c.Due.After(last.Due) {
			continue
		}
		domains[c.Step.Domain]++
	}
	if domains["between.example"] == 0 || domains["behind.example"] == 0 || len(domains) != 2 {
		t.Errorf("checks due after the cursor passed: %v; want between.example's and behind.example's only", domains)
	}
	if n := coverageEntries(t, s.DB); n == 0 {
		t.Error("no explicit entries for the steps behind the cursor")
	}
	// Handling them empties the bucket again.
	dropCoverage(t, s.DB, got)
	if n := coverageEntries(t, s.DB); n != 0 {
		t.Errorf("%d entries left after every check was handled", n)
	}
	if rest, _ := coverageDue(t, s.DB, coverageFar); len(rest) != 0 {
		t.Errorf("%d checks left after every check was handled", len(rest))
	}
}

// A check put off only because its step's deadline moved later leaves no
// entry when the walk will reach the new deadline: the step is checked
// once, not twice.
func TestCoveragePostponedToWalk(t *testing.T) {
	s := reporttest.Seed(t)
	due, _ := coverageDue(t, s.DB, coverageFar)
	c := due[0]
	// An explicit check due an hour before (as a step written behind the
	// cursor gets one), put off to its deadline + a day, which the walk
	// has not reached.
	explicit := store.CoverageCheck{Step: c.Step, Due: c.Due.Add(-time.Hour)}
	err := s.DB.Update(func(tx *store.Tx) error {
		return tx.PostponeCoverage(explicit, c.Step.Deadline.Add(store.CoverageDelay), false)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := coverageDue(t, s.DB, coverageFar)
	n := 0
	for _, g := range got {
		if g.Step.ID == c.Step.ID {
			n++
		}
	}
	if n != 1 || coverageEntries(t, s.DB) != 0 {
		t.Errorf("step %s: %d checks, %d entries; want 1 check, from the walk, no entry", c.Step.ID, n, coverageEntries(t, s.DB))
	}
}

// PassCoverage moves the cursor over the steps that need no check, up to
// the first that needs one, and loses no check doing so.
func TestPassCoverage(t *testing.T) {
	s := reporttest.Seed(t)
	plan := func(name string, months int) {
		t.Helper()
		err := s.DB.Update(func(tx *store.Tx) error {
			_, err := tx.Upsert(store.Domain{Name: name, Mode: scheduler.ModeExpire, Expiry: s.Now().AddDate(0, months, 0),
				Registrant: store.Registrant{Name: "R", Email: "r@example.org"}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A domain stopped: its four steps, after every other, skipped.
	plan("stopped.example", 36)
	if err := s.DB.Update(func(tx *store.Tx) error { return tx.Stop("stopped.example", "deleted") }); err != nil {
		t.Fatal(err)
	}
	due, _ := coverageDue(t, s.DB, coverageFar)
	dropCoverage(t, s.DB, due)
	pass := func(limit int) (n int) {
		t.Helper()
		if err := s.DB.Update(func(tx *store.Tx) (err error) { n, err = tx.PassCoverage(coverageFar, limit); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := pass(1); n != 1 {
		t.Errorf("passed %d with a limit of 1, want 1", n)
	}
	if n := pass(1000); n != 3 {
		t.Errorf("passed %d more of the stopped domain's steps, want 3", n)
	}
	if n := pass(1000); n != 0 {
		t.Errorf("passed %d more, want none left", n)
	}
	// New steps ahead of the cursor are not passed, and are still due.
	plan("later.example", 37)
	if n := pass(1000); n != 0 {
		t.Errorf("passed %d steps that need a check", n)
	}
	if got, _ := coverageDue(t, s.DB, coverageFar); len(got) != 4 || got[0].Step.Domain != "later.example" {
		t.Errorf("%d checks due, want later.example's 4", len(got))
	}
}
