package report

import (
	"time"

	"github.com/errpd/errpd/scheduler"
)

// Summary counts a report's rows.
//
// Due is every row. Owed is Due less the skipped notices (renewed, deleted,
// transferred away, out of scope, mode switched): those were no longer
// required. The compliance rate is SentInWindow / Owed; Rate reports false
// when nothing was owed.
type Summary struct {
	From         time.Time `json:"from,omitzero"`
	To           time.Time `json:"to,omitzero"`
	Due          int       `json:"due"`
	Skipped      int       `json:"skipped"`
	Owed         int       `json:"owed"`
	Sent         int       `json:"sent"`
	SentInWindow int       `json:"sent_in_window"`
	Proved       int       `json:"proved"`
	ProvedInTime int       `json:"proved_in_time"`
	Missed       int       `json:"missed"`
	Failed       int       `json:"failed"`
	InDoubt      int       `json:"in_doubt"`
	Pending      int       `json:"pending"` // planned, due or being sent: the period is not over
	// ComplianceRate is SentInWindow / Owed; nil when nothing was owed.
	ComplianceRate *float64 `json:"compliance_rate"`
}

// Add counts one row.
func (s *Summary) Add(r Row) {
	s.Due++
	switch scheduler.State(r.State) {
	case scheduler.StateSkipped:
		s.Skipped++
	case scheduler.StateMissed:
		s.Missed++
	case scheduler.StateFailed:
		s.Failed++
	case scheduler.StateInDoubt:
		s.InDoubt++
	case scheduler.StatePlanned, scheduler.StateDue, scheduler.StateSending:
		s.Pending++
	case scheduler.StateProved:
		s.Proved++
	}
	if !r.SentAt.IsZero() {
		s.Sent++
	}
	if r.InWindow {
		s.SentInWindow++
	}
	if r.ProvedInTime {
		s.ProvedInTime++
	}
	s.Owed = s.Due - s.Skipped
	s.ComplianceRate = nil
	if s.Owed > 0 {
		rate := float64(s.SentInWindow) / float64(s.Owed)
		s.ComplianceRate = &rate
	}
}

// Rate is the compliance rate; false when nothing was owed.
func (s Summary) Rate() (float64, bool) {
	if s.ComplianceRate == nil {
		return 0, false
	}
	return *s.ComplianceRate, true
}
