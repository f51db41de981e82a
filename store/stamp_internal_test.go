package store

import (
	"testing"
	"time"
)

// TestAppendStampIsFormat: appendStamp writes what Format(stamp) writes,
// for times across the years, in other zones, and outside 0-9999.
func TestAppendStampIsFormat(t *testing.T) {
	zone := time.FixedZone("x", -5*3600-30*60)
	times := []time.Time{
		{}, time.Unix(0, 0), time.Date(2031, 5, 1, 23, 59, 59, 999, zone),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(7, 2, 3, 4, 5, 6, 0, time.UTC),
	}
	for s := int64(-1 << 40); s < 1<<40; s += 1<<33 + 12345 {
		times = append(times, time.Unix(s, 0))
	}
	for _, tm := range times {
		if got, want := string(appendStamp([]byte("x/"), tm)), "x/"+tm.UTC().Format(stamp); got != want {
			t.Errorf("appendStamp(%v) = %q, want %q", tm, got, want)
		}
	}
}
