package coverage

import "time"

// Retry spaces the GetMessages attempts of one check after temporary
// errors: exponential from Base, capped at Max, with jitter, for at most
// Attempts attempts; then the answer is unknown. A pure function of its
// arguments, as the dispatcher's: the attempt count lives in the store's
// coverage index and survives restarts.
type Retry struct {
	Base     time.Duration
	Max      time.Duration
	Attempts int
}

// DefaultRetry tries 8 times over about half a day (5 minutes doubling to
// at most 6 hours): enough for an Ascio maintenance window, and the answer
// is still read a day or two after the deadline.
var DefaultRetry = Retry{Base: 5 * time.Minute, Max: 6 * time.Hour, Attempts: 8}

// Next is when to ask again after the attempt-th failed attempt (1 for the
// first), failed at now; false when that was the last. jitter in [0, 1)
// picks the delay inside [d/2, d).
func (r Retry) Next(attempt int, now time.Time, jitter float64) (time.Time, bool) {
	if attempt >= r.Attempts {
		return time.Time{}, false
	}
	d := r.Base
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	d = min(d, r.Max)
	return now.Add(d/2 + time.Duration(float64(d/2)*jitter)), true
}
