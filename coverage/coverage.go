// Package coverage finds out whether Ascio sent its own copy of an ERRP
// notice whose deadline passed without errpd's proof (missed, failed, in
// doubt, or proved late): a day after the deadline it asks Ascio's
// GetMessages for the cycle's order, once, retrying on temporary errors,
// and records on the step whether a message of the notice's type that
// errpd did not upload is on the order (covered_by_ascio: yes, no or
// unknown), with an audit record in the same transaction.
//
// That Ascio's own send is listed by GetMessages is inferred, not
// documented (docs/ascio.md).
package coverage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/internal/peertext"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/uploader"
)

// Messages lists the messages on an Ascio order (ascio.Client does).
type Messages interface {
	GetMessages(ctx context.Context, orderID string) ([]ascio.Message, error)
}

// Checker runs the coverage checks as they fall due.
type Checker struct {
	DB    *store.DB
	Ascio Messages
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Retry spaces the attempts after temporary errors; DefaultRetry
	// when zero.
	Retry Retry
	// Jitter returns a number in [0, 1); math/rand when nil.
	Jitter func() float64
	// Idle bounds a wait: new steps get their checks while it sleeps.
	// An hour when zero.
	Idle time.Duration
	Log  *slog.Logger
}

// batch is how many checks one read transaction takes.
const batch = 100

// Run checks what is due, then sleeps until the next check falls due (or
// Idle), until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	Loop(ctx, c.RunOnce, c.now, c.Idle, func(err error) { c.log().Error("coverage check failed", "err", err) })
	return nil
}

// Loop runs a store-driven job until ctx ends: runOnce does what is due
// and says when the next thing falls due (zero: nothing waits); Loop
// sleeps until then, or idle (an hour when zero) at most, since new work
// may come while it sleeps. An error is reported and waits idle.
func Loop(ctx context.Context, runOnce func(context.Context) (time.Time, error), now func() time.Time, idle time.Duration, report func(error)) {
	if idle <= 0 {
		idle = time.Hour
	}
	for {
		next, err := runOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := idle
		if err != nil {
			report(err)
		} else if !next.IsZero() {
			wait = min(max(next.Sub(now()), 0), idle)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// RunOnce checks every step whose check is due now and returns when the
// next one falls due (zero when none waits).
func (c *Checker) RunOnce(ctx context.Context) (time.Time, error) {
	now := c.now()
	for {
		var due []store.CoverageCheck
		err := c.DB.View(func(tx *store.Tx) (err error) {
			due, err = tx.CoverageDue(now, batch)
			return err
		})
		if err != nil {
			return time.Time{}, err
		}
		for _, ch := range due {
			if err := c.check(ctx, ch, now); err != nil {
				return time.Time{}, err
			}
		}
		if len(due) < batch {
			break
		}
	}
	if err := c.pass(now); err != nil {
		return time.Time{}, err
	}
	var next time.Time
	err := c.DB.View(func(tx *store.Tx) error {
		next, _ = tx.NextCoverage()
		return nil
	})
	return next, err
}

// passChunk is how many steps one transaction of pass moves the cursor over.
const passChunk = 1000

// pass moves the store's walk of the checks over the steps due by now that
// need none, a chunk a transaction, so that later runs do not read them
// again.
func (c *Checker) pass(now time.Time) error {
	for {
		var n int
		err := c.DB.Update(func(tx *store.Tx) (err error) {
			n, err = tx.PassCoverage(now, passChunk)
			return err
		})
		if err != nil || n < passChunk {
			return err
		}
	}
}

// check settles one due check: drops it when there is nothing to ask,
// asks Ascio, and records the answer or schedules a retry.
func (c *Checker) check(ctx context.Context, ch store.CoverageCheck, now time.Time) error {
	s := ch.Step
	if at := s.Deadline.Add(store.CoverageDelay); ch.Due.Before(at) {
		// The step was planned again with a later deadline.
		return c.DB.Update(func(tx *store.Tx) error { return tx.PostponeCoverage(ch, at, false) })
	}
	typ, err := uploader.Type(s.Notice)
	if s.CoveredByAscio != "" || !owed(s) || err != nil {
		// Answered already, not owed, proved in time, or a notice Ascio
		// has no type for (suspension): nothing to ask.
		return c.DB.Update(func(tx *store.Tx) error { return tx.DropCoverage(ch) })
	}
	order, ours, bad, err := c.facts(s)
	switch {
	case err != nil:
		return err
	case bad != nil:
		// errpd's own upload could not be told from Ascio's copy.
		return c.record(ch, store.CoveredUnknown, "stored message unreadable: "+bad.Error())
	case order == "":
		return c.record(ch, store.CoveredUnknown, "no Ascio order id for this cycle")
	}
	held, err := c.Ascio.GetMessages(ctx, order)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.failed(ch, order, err, now)
	}
	v, why := Judge(typ, ours, held)
	return c.record(ch, v, fmt.Sprintf("order %s: %s", order, why))
}

// owed reports whether the step's deadline passed without errpd's proof
// in time, so that Ascio may have sent its own copy.
func owed(s store.Step) bool {
	switch {
	case s.State == scheduler.StateSkipped:
		return false
	case s.State == scheduler.StateProved && !s.UploadedAt.IsZero() && s.UploadedAt.Before(s.Deadline):
		return false
	}
	return true
}

// facts reads the order to ask about (the step's, else its cycle's) and
// the message errpd would have uploaded for it, if it was rendered; bad is
// a stored message that does not read back.
func (c *Checker) facts(s store.Step) (order string, ours *ascio.Message, bad, err error) {
	order = s.OrderID
	var raw []byte
	err = c.DB.View(func(tx *store.Tx) error {
		if order == "" {
			cy, _, err := tx.Cycle(s.Cycle)
			if err != nil {
				return err
			}
			order = cy.OrderID
		}
		raw, _, _, bad = tx.Message(s.ID)
		return nil
	})
	if err != nil || bad != nil || raw == nil {
		return order, nil, bad, err
	}
	m, merr := uploader.Message(s.Notice, raw)
	if merr != nil {
		// The uploader could not have uploaded it: nothing on the order
		// is errpd's.
		return order, nil, nil, nil
	}
	return order, &m, nil, nil
}

// Judge says whether held, the messages on an order, include one of type
// typ that errpd did not upload: ours (nil when errpd never rendered the
// notice) is told apart as the uploader does before an upload, by type,
// subject and Created. It returns the answer and why, for the audit record.
func Judge(typ ascio.MessageType, ours *ascio.Message, held []ascio.Message) (store.Coverage, string) {
	uploaded := false
	for _, m := range held {
		if m.Type != typ {
			continue
		}
		if ours != nil && m.Subject == ours.Subject && m.Created.Equal(ours.Created) {
			uploaded = true
			continue
		}
		return store.CoveredYes, fmt.Sprintf("Ascio's own %s, created %s, to %s",
			typ, m.Created.UTC().Format(time.RFC3339), peertext.Cap(m.To))
	}
	if uploaded {
		return store.CoveredNo, fmt.Sprintf("no %s but errpd's own upload", typ)
	}
	return store.CoveredNo, fmt.Sprintf("no %s", typ)
}

// failed retries a temporary failure later and gives up, as unknown, on a
// permanent one or after the last attempt.
func (c *Checker) failed(ch store.CoverageCheck, order string, err error, now time.Time) error {
	msg := peertext.Cap(err.Error())
	attempt := ch.Attempts + 1
	if failure.Of(err) == failure.Permanent {
		return c.record(ch, store.CoveredUnknown, fmt.Sprintf("order %s: GetMessages failed: %s", order, msg))
	}
	next, ok := c.retry().Next(attempt, now, c.jitter())
	if !ok {
		return c.record(ch, store.CoveredUnknown, fmt.Sprintf("order %s: GetMessages failed %d times, last: %s", order, attempt, msg))
	}
	c.log().Warn("coverage check: GetMessages failed, retrying", "step", ch.Step.ID, "attempt", attempt, "next", next, "err", msg)
	return c.DB.Update(func(tx *store.Tx) error { return tx.PostponeCoverage(ch, next, true) })
}

func (c *Checker) record(ch store.CoverageCheck, v store.Coverage, why string) error {
	err := c.DB.Update(func(tx *store.Tx) error {
		_, err := tx.RecordCoverage(ch, v, why)
		return err
	})
	if err == nil {
		c.log().Info("coverage check", "step", ch.Step.ID, "covered_by_ascio", string(v), "why", why)
	}
	return err
}

func (c *Checker) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

func (c *Checker) retry() Retry {
	if c.Retry == (Retry{}) {
		return DefaultRetry
	}
	return c.Retry
}

func (c *Checker) jitter() float64 {
	if c.Jitter == nil {
		return rand.Float64()
	}
	return c.Jitter()
}

func (c *Checker) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.Log
}
