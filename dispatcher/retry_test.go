package dispatcher

import (
	"testing"
	"time"
)

func TestRetryNext(t *testing.T) {
	r := Retry{Base: time.Minute, Max: time.Hour}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	far := now.Add(30 * 24 * time.Hour)
	tests := []struct {
		attempt  int
		jitter   float64
		deadline time.Time
		want     time.Duration // from now; -1 for the zero time
	}{
		{1, 0, far, 30 * time.Second},
		{1, 0.999999, far, 60 * time.Second},
		{2, 0, far, time.Minute},
		{3, 0.5, far, 3 * time.Minute},
		{6, 0, far, 16 * time.Minute},
		{8, 0, far, 30 * time.Minute}, // capped at Max: 60m, halved by zero jitter
		{100, 0.999999, far, time.Hour},
		{5, 0, time.Time{}, 8 * time.Minute},               // no deadline (uploads)
		{7, 0, now.Add(10 * time.Minute), 5 * time.Minute}, // brought forward before the deadline
		{1, 0, now.Add(500 * time.Millisecond), -1},        // no time left: give up
		{1, 0, now.Add(-time.Minute), -1},                  // deadline passed
	}
	for _, tc := range tests {
		got := r.Next(tc.attempt, now, tc.deadline, tc.jitter)
		if tc.want < 0 {
			if !got.IsZero() {
				t.Errorf("attempt %d deadline %s: %s, want give up", tc.attempt, tc.deadline, got)
			}
			continue
		}
		if d := got.Sub(now); d.Round(time.Second) != tc.want {
			t.Errorf("attempt %d jitter %v: after %s, want %s", tc.attempt, tc.jitter, d, tc.want)
		}
		if !tc.deadline.IsZero() && !got.Before(tc.deadline) {
			t.Errorf("attempt %d: retry %s not before deadline %s", tc.attempt, got, tc.deadline)
		}
	}
}
