package report

import (
	"time"

	"github.com/errpd/errpd/scheduler"
)

// Summary counts a report's rows.
//
// Only notices whose deadline is before Cutoff (the period's end or the
// time the report was made, whichever is earlier) are counted: the others
// are Pending, listed and never counted, since Ascio's deadline for them
// has not come. Of the counted ones, the skipped notices (renewed, deleted,
// transferred away, out of scope, mode switched) were no longer required:
// Owed is the rest. A notice owed was answered either by errpd, sent in
// its window and proved to Ascio before the deadline (SentAndProved), or by
// Ascio's own copy (CoveredByAscio). The compliance rate is
// (SentAndProved + CoveredByAscio) / Owed; Rate reports false when nothing
// was owed. Every count but Due and Pending is of the counted notices.
type Summary struct {
	From   time.Time `json:"from,omitzero"`
	To     time.Time `json:"to,omitzero"`
	Cutoff time.Time `json:"counted_before,omitzero"`

	Due     int `json:"due"`     // every row listed
	Pending int `json:"pending"` // deadline not before Cutoff: listed, not counted
	Counted int `json:"counted"` // Due - Pending
	Skipped int `json:"skipped"`
	Owed    int `json:"owed"` // Counted - Skipped

	Sent         int `json:"sent"`
	SentInWindow int `json:"sent_in_window"`
	Proved       int `json:"proved"`
	ProvedInTime int `json:"proved_in_time"`
	Missed       int `json:"missed"`
	Failed       int `json:"failed"`
	InDoubt      int `json:"in_doubt"`

	// SentAndProved: sent inside the window and proved before the deadline.
	SentAndProved int `json:"sent_and_proved_in_window"`
	// CoveredByAscio: owed, not SentAndProved, and Ascio sent its own copy.
	CoveredByAscio int `json:"covered_by_ascio"`
	// CoverageUnknown: owed, not SentAndProved, and whether Ascio sent its
	// own copy could not be found out.
	CoverageUnknown int `json:"covered_by_ascio_unknown"`

	// ComplianceRate is (SentAndProved + CoveredByAscio) / Owed; nil when
	// nothing was owed.
	ComplianceRate *float64 `json:"compliance_rate"`
}

// NewSummary is the empty summary of a report over f made at generated.
func NewSummary(f Filter, generated time.Time) Summary {
	cut := generated.UTC()
	if !f.To.IsZero() && f.To.Before(cut) {
		cut = f.To
	}
	return Summary{From: f.From, To: f.To, Cutoff: cut}
}

// IsPending reports whether a row is listed without being counted: its
// deadline is not before the cutoff (a zero cutoff counts every row).
func (s Summary) IsPending(r Row) bool {
	return !s.Cutoff.IsZero() && !r.Deadline.Before(s.Cutoff)
}

// Add counts one row.
func (s *Summary) Add(r Row) {
	s.Due++
	if s.IsPending(r) {
		s.Pending++
		return
	}
	s.Counted++
	switch scheduler.State(r.State) {
	case scheduler.StateSkipped:
		s.Skipped++
	case scheduler.StateMissed:
		s.Missed++
	case scheduler.StateFailed:
		s.Failed++
	case scheduler.StateInDoubt:
		s.InDoubt++
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
	if scheduler.State(r.State) != scheduler.StateSkipped {
		switch {
		case r.InWindow && r.ProvedInTime:
			s.SentAndProved++
		case r.CoveredByAscio == "yes":
			s.CoveredByAscio++
		case r.CoveredByAscio == "unknown":
			s.CoverageUnknown++
		}
	}
	s.total()
}

// total works out what the counts give: Owed and the compliance rate.
func (s *Summary) total() {
	s.Owed = s.Counted - s.Skipped
	s.ComplianceRate = nil
	if s.Owed > 0 {
		rate := float64(s.SentAndProved+s.CoveredByAscio) / float64(s.Owed)
		s.ComplianceRate = &rate
	}
}

// empty is the summary of the same report with nothing counted yet.
func (s Summary) empty() Summary { return Summary{From: s.From, To: s.To, Cutoff: s.Cutoff} }

// merge adds the counts of o, a summary of other rows of the same report.
func (s *Summary) merge(o Summary) {
	s.Due += o.Due
	s.Pending += o.Pending
	s.Counted += o.Counted
	s.Skipped += o.Skipped
	s.Sent += o.Sent
	s.SentInWindow += o.SentInWindow
	s.Proved += o.Proved
	s.ProvedInTime += o.ProvedInTime
	s.Missed += o.Missed
	s.Failed += o.Failed
	s.InDoubt += o.InDoubt
	s.SentAndProved += o.SentAndProved
	s.CoveredByAscio += o.CoveredByAscio
	s.CoverageUnknown += o.CoverageUnknown
	s.total()
}

// Rate is the compliance rate; false when nothing was owed.
func (s Summary) Rate() (float64, bool) {
	if s.ComplianceRate == nil {
		return 0, false
	}
	return *s.ComplianceRate, true
}
