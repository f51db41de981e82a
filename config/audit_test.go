package config

import (
	"testing"
	"time"
)

func TestAuditValidate(t *testing.T) {
	for _, c := range []struct {
		retention time.Duration
		ok        bool
	}{
		{DefaultRetention, true},
		{0, true},
		{-time.Hour, false},
		{365 * 24 * time.Hour, false},
	} {
		if err := (Audit{Retention: c.retention}).validate(); (err == nil) != c.ok {
			t.Errorf("retention %s: %v, want ok=%v", c.retention, err, c.ok)
		}
	}
}
