package coverage_test

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/coverage"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// listing is an in-memory order holding Ascio's own reminder 1.
type listing struct{ calls int }

func (l *listing) GetMessages(context.Context, string) ([]ascio.Message, error) {
	l.calls++
	return []ascio.Message{{Type: ascio.ExpiryReminder1, Subject: "Ascio's", To: "holder@run.com"}}, nil
}

// Run sleeps until a check falls due and answers it then, not before, on
// synctest's clock.
func TestRunWakesWhenDue(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		db, err := store.Open(filepath.Join(dir, "errpd.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		start := time.Now()
		exp := start.Add(40 * scheduler.Day)
		err = db.Update(func(tx *store.Tx) error {
			_, err := tx.Upsert(store.Domain{Name: "run.com", Mode: scheduler.ModeRenew, Expiry: exp, OrderID: "ORD-R",
				Registrant: store.Registrant{Email: "holder@run.com"}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		id := store.StepID("run.com", exp, scheduler.Reminder1)
		due := exp.Add(-26*scheduler.Day + store.CoverageDelay).Truncate(time.Second)
		l := &listing{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- (&coverage.Checker{DB: db, Ascio: l}).Run(ctx) }()

		time.Sleep(due.Sub(start) - time.Second)
		synctest.Wait()
		if got := covered(t, db, id); got != "" || l.calls != 0 {
			t.Fatalf("a second before its check: covered %q after %d calls", got, l.calls)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := covered(t, db, id); got != store.CoveredYes || l.calls != 1 {
			t.Fatalf("a second after: covered %q after %d calls; want yes after one", got, l.calls)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
