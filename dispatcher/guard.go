package dispatcher

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/store"
)

// After any failure, wait (Postfix, chasquid): nothing here re-enters the
// loop at once. A failure of one step moves that step's next try along the
// retry schedule (in the store when it can be written, in memory when not);
// a failure of the store pauses the whole dispatcher, with backoff, until a
// write succeeds again.

// DefaultStoreRetry is the pause after a failed store write (a full disk,
// an I/O error): short at first, since an operator may free space at once,
// and at most five minutes.
var DefaultStoreRetry = Retry{Base: 5 * time.Second, Max: 5 * time.Minute}

// stepError marks an error of one step's own data or transition (a record
// that does not decode, a refused transition) returned from inside a store
// write, as opposed to the failure of the write itself.
type stepError struct{ err error }

func (e stepError) Error() string { return e.err.Error() }
func (e stepError) Unwrap() error { return e.err }

// asStepError wraps err, unless nil or a conflict (another actor moved the
// step, which is no failure).
func asStepError(err error) error {
	if err == nil || errors.Is(err, store.ErrConflict) {
		return err
	}
	return stepError{err}
}

// writeFailed reports whether err, from a store write, is the store's
// failure (a commit that did not happen) rather than the step's.
func writeFailed(err error) bool {
	var se stepError
	return err != nil && !errors.As(err, &se) && !errors.Is(err, store.ErrConflict) &&
		!errors.Is(err, errNotClaimed) && !errors.Is(err, store.ErrClosed)
}

// hold is a step kept out of the rounds until at, after n failures that
// could not be recorded in the store.
type hold struct {
	at time.Time
	n  int
}

// holdOff keeps a step out of the rounds until its next try, when its
// failure could not be written to the store (the step itself does not
// decode, or the store fails). It returns the time of the next try.
func (d *Dispatcher) holdOff(id string, now time.Time, next time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.holds[id]
	h.n++
	if next.IsZero() || !next.After(now) {
		next = d.Retry.Next(h.n, now, time.Time{}, rand.Float64())
	}
	h.at = next
	d.holds[id] = h
	return next
}

// held reports whether a step is kept out of the rounds at now.
func (d *Dispatcher) held(id string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.holds[id]
	if ok && !now.Before(h.at) {
		return false
	}
	return ok
}

// release forgets a step's hold once one of its writes succeeded.
func (d *Dispatcher) release(id string) {
	d.mu.Lock()
	delete(d.holds, id)
	d.mu.Unlock()
}

// nextHold is the earliest time a held step may be tried again (zero if
// none is held after now).
func (d *Dispatcher) nextHold(now time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	var next time.Time
	for _, h := range d.holds {
		if h.at.After(now) && (next.IsZero() || h.at.Before(next)) {
			next = h.at
		}
	}
	return next
}

// storeFailed records a failed store write and returns when the dispatcher
// tries the store again. Writers that failed in one commit all report it;
// only the first report of a pause lengthens the next one.
func (d *Dispatcher) storeFailed(err error) time.Time {
	now := d.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.storeErr != nil && now.Before(d.storeRetryAt) {
		return d.storeRetryAt
	}
	if d.storeErr == nil && !now.Before(d.carefulUntil) {
		d.storeFails = 0 // a new episode: the pauses start short again
	}
	d.storeFails++
	d.storeErr = err
	d.storeRetryAt = d.StoreRetry.Next(d.storeFails, now, time.Time{}, rand.Float64())
	d.Log.Error("store write failed: dispatcher paused, no SMTP transaction begins until a store write succeeds",
		"err", err, "failures", d.storeFails, "retry_at", d.storeRetryAt)
	return d.storeRetryAt
}

// storeWritten records a successful store write, which ends a pause. A
// disk that was full often takes one write and refuses the next, so for
// StoreRetry.Max after it every send still waits for its intent to commit
// before it begins, and a failure in that time pauses longer than the last.
func (d *Dispatcher) storeWritten() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.storeErr == nil {
		return
	}
	d.Log.Info("store writable again: dispatcher resumes", "after_failures", d.storeFails)
	d.storeErr, d.storeRetryAt = nil, time.Time{}
	d.carefulUntil = d.Now().Add(d.StoreRetry.Max)
}

// storePaused reports whether the store fails, and until when the
// dispatcher waits before trying it again.
func (d *Dispatcher) storePaused() (failing bool, until time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.storeErr != nil, d.storeRetryAt
}

// careful reports whether a send must wait for its intent to commit
// before its SMTP transaction begins: while the store fails, and for a
// while after.
func (d *Dispatcher) careful() bool {
	now := d.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.storeErr != nil || now.Before(d.carefulUntil)
}

// unrecord keeps an outcome whose write failed, to write it once the store
// takes writes again: a step whose message was never handed over must not
// stay sending, which a restart would call in doubt.
func (d *Dispatcher) unrecord(o *outcome) {
	d.mu.Lock()
	d.unrecorded = append(d.unrecorded, o)
	d.mu.Unlock()
}

// flushUnrecorded writes the outcomes kept by unrecord, in one commit.
func (d *Dispatcher) flushUnrecorded() error {
	d.mu.Lock()
	os := d.unrecorded
	d.unrecorded = nil
	d.mu.Unlock()
	if len(os) == 0 {
		return nil
	}
	err := d.DB.Batch(func(tx *store.Tx) error {
		for _, o := range os {
			if err := o.apply(tx); err != nil && !errors.Is(err, store.ErrConflict) {
				d.Log.Error("recording a kept outcome", "step", o.id, "to", o.to, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		d.mu.Lock()
		d.unrecorded = append(os, d.unrecorded...)
		d.mu.Unlock()
		return err
	}
	d.storeWritten()
	return nil
}

// relayAnswered and relayFailed follow the relay's health for /healthz: a
// run of temporary failures or lost replies says it is unwell; any answer
// to a message, even a refusal, says it is up.
func (d *Dispatcher) relayAnswered() {
	d.mu.Lock()
	d.relayFails, d.relayErr = 0, ""
	d.mu.Unlock()
}

func (d *Dispatcher) relayFailed(err error) {
	d.mu.Lock()
	d.relayFails++
	d.relayErr = failure.Of(err).String() + ": " + err.Error()
	d.mu.Unlock()
}

// beat records that the send loop ran a round (or handed a step out).
func (d *Dispatcher) beat(now time.Time) {
	d.mu.Lock()
	d.lastBeat = now
	d.mu.Unlock()
}
