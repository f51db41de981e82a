package config

import (
	"testing"
	"time"
)

func TestAscioSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		every time.Duration
		spec  string
		ok    bool
	}{
		{10 * time.Minute, "", true},
		{4 * time.Minute, "", false},
		{10 * time.Minute, "*/10 * * * *", true},
		{10 * time.Minute, "@every 15m", true},
		{10 * time.Minute, "*/2 * * * *", false},
		{10 * time.Minute, "not a spec", false},
	} {
		a := Ascio{PollEvery: tc.every, PollSchedule: tc.spec, Timeout: time.Second}
		_, err := a.Schedule()
		if (err == nil) != tc.ok {
			t.Errorf("Schedule(%s, %q) = %v, want ok=%v", tc.every, tc.spec, err, tc.ok)
		}
		if verr := a.validate(); (verr == nil) != tc.ok {
			t.Errorf("validate(%s, %q) = %v, want ok=%v", tc.every, tc.spec, verr, tc.ok)
		}
	}
}

func TestAllowPrefixes(t *testing.T) {
	t.Parallel()
	got := HTTP{AllowFrom: []string{"185.26.229.129/32", "10.1.2.3/8"}}.AllowPrefixes()
	if len(got) != 2 || got[1].String() != "10.0.0.0/8" {
		t.Errorf("AllowPrefixes = %v", got)
	}
}
