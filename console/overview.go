package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/resolve"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// listCap bounds the lists on the overview: past it the page says how
// many more there are and links to the CLI or a filtered report.
const listCap = 100

// statsTTL is how long the overview's scan (today's sends, the monthly
// compliance) is shown before a new one starts: the scan reads every step
// (about 10 s for 200,000 on the test machine), so it runs in the
// background and the page shows the last one with its time.
const statsTTL = 5 * time.Minute

type stateCount struct {
	State scheduler.State
	N     uint64
}

type overviewPage struct {
	Now        time.Time
	States     []stateCount
	Total      uint64
	Stats      *stats
	Upcoming   []store.Step
	MoreDue    bool
	Attention  []attention
	MoreAttent bool
}

// attention is a step that needs an operator, and why.
type attention struct {
	Step   store.Step
	Why    string
	Detail string // when the step's reason says nothing
}

func (s *Server) overview(w http.ResponseWriter, r *http.Request) {
	now := s.o.Now().UTC()
	var p overviewPage
	p.Now = now
	err := s.o.DB.View(func(tx *store.Tx) error {
		counts := tx.Counts()
		for _, st := range scheduler.States {
			p.States = append(p.States, stateCount{st, counts[st]})
			p.Total += counts[st]
		}
		due, err := tx.Due(now.Add(7*24*time.Hour), listCap+1)
		if err != nil {
			return err
		}
		p.Upcoming, p.MoreDue = capped(due)
		return nil
	})
	p.Stats = s.figures(now)
	if err == nil {
		err = s.needsOperator(now, &p)
	}
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	s.render(w, r, http.StatusOK, "overview.html", "Overview", "overview", p)
}

func capped(steps []store.Step) ([]store.Step, bool) {
	if len(steps) > listCap {
		return steps[:listCap], true
	}
	return steps, false
}

// needsOperator lists what `errpd resolve` lists (in doubt, failed), then
// the proofs that are late: sent, waiting for their upload, deadline past,
// then the notices that bounced (from the last scan, p.Stats).
func (s *Server) needsOperator(now time.Time, p *overviewPage) error {
	errFull := fmt.Errorf("full")
	add := func(st store.Step, why string) error {
		if len(p.Attention) == listCap {
			p.MoreAttent = true
			return errFull
		}
		a := attention{Step: st, Why: why, Detail: st.Reason}
		if why == "upload late" {
			a.Detail = "sent " + st.SentAt.UTC().Format(time.RFC3339) + "; the proof is not at Ascio yet (" + orNone(st.AscioResult) + ")"
		}
		p.Attention = append(p.Attention, a)
		return nil
	}
	err := resolve.Unresolved(s.o.DB, func(st store.Step) error {
		return add(st, string(st.State))
	})
	if err == errFull {
		return nil
	}
	if err != nil {
		return err
	}
	// The upload index holds every sent step by its next attempt; a late
	// one is one whose deadline passed.
	var waiting []store.Step
	err = s.o.DB.View(func(tx *store.Tx) (err error) {
		waiting, err = tx.UploadsDue(now.AddDate(100, 0, 0), 10*listCap)
		return err
	})
	if err != nil {
		return err
	}
	for _, st := range waiting {
		if st.Deadline.Before(now) {
			if add(st, "upload late") == errFull {
				return nil
			}
		}
	}
	if p.Stats != nil { // the last scan's bounces
		for _, a := range p.Stats.Bounced {
			if len(p.Attention) == listCap {
				p.MoreAttent = true
				break
			}
			p.Attention = append(p.Attention, a)
		}
	}
	return nil
}

// bounced is a report row whose notice came back, as the overview lists
// it: the step stays sent or proved, the bounce is what needs a look.
func bounced(r report.Row) attention {
	why := "bounced " + r.Bounce
	detail := r.BounceStatus + " at " + r.BouncedAt.UTC().Format(time.RFC3339)
	if r.ContactFlag != "" {
		detail += "; " + r.ContactFlag
	}
	return attention{Step: store.Step{ID: r.Step, Domain: r.Domain, Notice: scheduler.Notice(r.Notice),
		State: scheduler.State(r.State), Deadline: r.Deadline}, Why: why, Detail: detail}
}

// stats is the overview's scan of the report rows: today's sends and
// proofs, and the compliance of each of the last twelve months (by
// deadline), with report.Summary's honest rate.
type stats struct {
	At          time.Time
	SentToday   int
	ProvedToday int
	// Bounced are notices that came back (hard first), for the operator:
	// a bounce is recorded on a step, not in an index, so the scan finds
	// them.
	Bounced []attention
	Months  []month
	Chart   chart
}

type month struct {
	Start   time.Time
	Summary report.Summary
}

// figures returns the last scan (nil before the first one ends) and
// starts a new one in the background when it is older than statsTTL and
// none runs: the overview never waits for a scan.
func (s *Server) figures(now time.Time) *stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if (s.stats == nil || now.Sub(s.stats.At) >= statsTTL || now.Before(s.stats.At)) && !s.scanning {
		s.scanning = true
		go func() {
			if err := s.Refresh(); err != nil {
				s.o.Log.Error("console: overview scan failed", "err", err)
			}
		}()
	}
	return s.stats
}

// Refresh scans the report rows for the overview now: every row whose
// deadline falls in the last twelve months or later, in report.Rows's
// chunks of short read transactions.
func (s *Server) Refresh() error {
	defer func() {
		s.statsMu.Lock()
		s.scanning = false
		s.statsMu.Unlock()
	}()
	now := s.o.Now().UTC()
	st := &stats{At: now}
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -11, 0)
	for i := range 12 {
		start := first.AddDate(0, i, 0)
		f := report.Filter{From: start, To: start.AddDate(0, 1, 0)}
		st.Months = append(st.Months, month{Start: start, Summary: report.NewSummary(f, now)})
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	err := report.Rows(s.o.DB, report.Filter{From: first}, func(r report.Row) error {
		if !r.SentAt.Before(today) {
			st.SentToday++
		}
		if r.State == string(scheduler.StateProved) && !r.UploadedAt.Before(today) {
			st.ProvedToday++
		}
		if r.Bounce != "" && len(st.Bounced) < listCap {
			st.Bounced = append(st.Bounced, bounced(r))
		}
		if i := monthIndex(first, r.Deadline); i >= 0 && i < 12 {
			st.Months[i].Summary.Add(r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	st.Chart = newChart(st.Months)
	s.statsMu.Lock()
	s.stats = st
	s.statsMu.Unlock()
	return nil
}

func monthIndex(first, t time.Time) int {
	t = t.UTC()
	return (t.Year()-first.Year())*12 + int(t.Month()) - int(first.Month())
}

func orNone(s string) string {
	if s == "" {
		return "no upload answer yet"
	}
	return s
}
