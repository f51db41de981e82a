package dispatcher

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/errpd/errpd/internal/peertext"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// prepareFailed records that a step could not be prepared for sending (its
// record or stored message does not decode, it does not render, its
// message cannot be stored): one more attempt, the next on the retry
// schedule, and failed after MaxPrepareAttempts. When even that cannot be
// written, the step is held off in memory until its next try.
func (d *Dispatcher) prepareFailed(id string, cause error, log *slog.Logger) {
	now := d.Now().UTC()
	why := peertext.Cap(cause.Error())
	var to scheduler.State
	var next time.Time
	var n int
	err := d.DB.Batch(func(tx *store.Tx) error {
		cur, ok, err := tx.Step(id)
		if err != nil || !ok || !cur.State.Waiting() {
			return asStepError(err) // nothing waits to be sent
		}
		n = cur.PrepareFailures + 1
		to = scheduler.StateDue
		if next = d.Retry.Next(n, now, cur.Deadline, rand.Float64()); next.IsZero() {
			next = cur.Deadline // the sweep marks it missed
		}
		reason := fmt.Sprintf("cannot be prepared (attempt %d of %d): %s", n, d.MaxPrepareAttempts, why)
		if n >= d.MaxPrepareAttempts {
			to = scheduler.StateFailed
			reason = fmt.Sprintf("cannot be prepared, %d attempts: %s", n, why)
		}
		_, err = tx.Transition(id, waiting, to, reason, func(s *store.Step) {
			s.PrepareFailures, s.Reason = n, reason
			if to == scheduler.StateDue {
				s.SendAt = next
			}
		})
		return asStepError(err)
	})
	switch {
	case err == nil && to == "":
		// It no longer waits to be sent: nothing to record.
	case err == nil && to == scheduler.StateFailed:
		d.storeWritten()
		d.release(id)
		log.Error("notice failed: it cannot be prepared", "err", why, "attempts", n)
	case err == nil:
		d.storeWritten()
		d.release(id) // the store holds its next try
		log.Error("notice cannot be prepared; tried again later", "err", why, "attempt", n, "retry_at", next)
	case errors.Is(err, store.ErrConflict):
	default:
		if writeFailed(err) {
			d.storeFailed(err)
		}
		at := d.holdOff(id, now, time.Time{})
		log.Error("notice cannot be prepared, nor its failure recorded; held until its next try",
			"err", why, "record_err", err, "retry_at", at)
	}
}

// intentFailed deals with a send whose intent did not commit: nothing was
// handed over. The store's failure pauses the dispatcher; a failure of the
// step's own record counts as a failed preparation.
func (d *Dispatcher) intentFailed(id string, err error, log *slog.Logger) {
	switch {
	case err == nil || errors.Is(err, errNotClaimed):
		// Another actor moved the step: nothing to do.
	case writeFailed(err):
		d.storeFailed(err)
		log.Warn("intent not recorded: nothing was handed over", "err", err)
	default:
		d.prepareFailed(id, fmt.Errorf("recording its intent: %w", err), log)
	}
}
