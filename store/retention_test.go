package store_test

import (
	"testing"
	"time"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// leaveCalendar stops domains (transferred away) at the store's clock.
func leaveCalendar(t *testing.T, s *reporttest.Store, domains ...string) {
	t.Helper()
	err := s.DB.Update(func(tx *store.Tx) error {
		for _, d := range domains {
			if err := tx.Stop(d, "transferred away"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetentionHolds: a message is purged only when its domain left the
// calendar more than two years ago and its send is older than
// audit.retention. proved.com's reminder 1 went out on 2025-01-25.
func TestRetentionHolds(t *testing.T) {
	const years3 = 3 * 365 * 24 * time.Hour // audit.retention's default
	const day = 24 * time.Hour
	left := reporttest.End() // when proved.com leaves, in the cases that say so
	cases := []struct {
		name   string
		leaves bool
		now    time.Time
		keep   time.Duration // audit.retention
		purged bool
	}{
		{"still in the calendar, sent long ago", false, time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC), day, false},
		{"left less than two years ago", true, left.Add(store.LeftHold - day), day, false},
		{"left over two years ago, sent within audit.retention", true, left.Add(store.LeftHold + day), years3, false},
		{"left over two years ago, sent before audit.retention", true, time.Date(2028, 1, 26, 0, 0, 0, 0, time.UTC), years3, true},
	}
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := reporttest.Seed(t)
			if c.leaves {
				leaveCalendar(t, s, "proved.com")
			}
			if _, err := s.DB.PurgeMessages(store.RetentionAt(c.now, c.keep)); err != nil {
				t.Fatal(err)
			}
			var kept bool
			s.DB.View(func(tx *store.Tx) error {
				_, _, kept, _ = tx.Message(id)
				return nil
			})
			if kept == c.purged {
				t.Errorf("at %s: message kept %v, want purged %v", c.now.Format(time.DateOnly), kept, c.purged)
			}
			if _, err := s.DB.Verify(); err != nil {
				t.Errorf("verify: %v", err)
			}
		})
	}
}

// TestLeftCalendar: a stop records when and why the domain left; listing
// it again brings it back into the calendar.
func TestLeftCalendar(t *testing.T) {
	s := reporttest.Seed(t)
	leaveCalendar(t, s, "proved.com")
	var d store.Domain
	s.DB.View(func(tx *store.Tx) (err error) { d, _, err = tx.Domain("proved.com"); return err })
	if d.Left == nil || !d.Left.At.Equal(reporttest.End()) || d.Left.Reason != "transferred away" {
		t.Fatalf("left = %+v, want transferred away at %s", d.Left, reporttest.End())
	}
	err := s.DB.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(d, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.DB.View(func(tx *store.Tx) (err error) { d, _, err = tx.Domain("proved.com"); return err })
	if d.Left != nil || d.Stopped != "" {
		t.Errorf("listed again: left %+v, stopped %q; want back in the calendar", d.Left, d.Stopped)
	}
}
