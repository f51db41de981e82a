package dispatcher

import (
	"time"
)

// Retry is the backoff for temporary failures: exponential from Base,
// capped at Max, with jitter so that many steps failing together do not
// retry together.
//
// It is a pure function of its arguments rather than a library's stateful
// backoff object because the attempt count lives in the store and must
// survive restarts.
type Retry struct {
	Base time.Duration
	Max  time.Duration
}

// DefaultRetry waits 1 minute after the first failure, doubling to at most
// 1 hour: many tries inside even the shortest (one-day) window.
var DefaultRetry = Retry{Base: time.Minute, Max: time.Hour}

// Next is when to try again after the attempt-th failure (1 for the first),
// failed at now. jitter in [0, 1) picks the delay inside [d/2, d). With a
// non-zero deadline the retry is brought forward to fit before it; if no
// time is left, Next returns the zero time: give up.
func (r Retry) Next(attempt int, now, deadline time.Time, jitter float64) time.Time {
	d := r.Base
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	d = d/2 + time.Duration(float64(d/2)*jitter)
	next := now.Add(d)
	if deadline.IsZero() || next.Before(deadline) {
		return next
	}
	// Last chance: halfway to the deadline, if that is still ahead.
	if half := now.Add(deadline.Sub(now) / 2); deadline.Sub(now) > time.Second && half.After(now) {
		return half
	}
	return time.Time{}
}
