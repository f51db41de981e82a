package console

import (
	"fmt"
	"net/http"
	"time"

	"github.com/errpd/errpd/report"
)

type reportPage struct {
	From, To string
}

func (s *Server) reportForm(w http.ResponseWriter, r *http.Request) {
	now := s.o.Now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	s.render(w, r, http.StatusOK, "report.html", "Report", "report",
		reportPage{From: first.AddDate(0, -1, 0).Format(time.DateOnly), To: first.Format(time.DateOnly)})
}

// reportDownload streams the report for [from, to) as errpd report writes
// it: rows read in chunks of short read transactions, written as read.
func (s *Server) reportDownload(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	format, err := report.ParseFormat(q.Get("format"))
	if err == nil && format == report.JSONL {
		err = fmt.Errorf("format %q: the console offers csv and html", q.Get("format"))
	}
	var f report.Filter
	for _, d := range []struct {
		key string
		to  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(d.key); v != "" && err == nil {
			if *d.to, err = time.Parse(time.DateOnly, v); err != nil {
				err = fmt.Errorf("%s: want a date as 2006-01-02", d.key)
			}
		}
	}
	if err == nil && !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		err = fmt.Errorf("from %s is not before to %s", q.Get("from"), q.Get("to"))
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	name := "errpd-report"
	if !f.From.IsZero() {
		name += "-" + q.Get("from")
	}
	if !f.To.IsZero() {
		name += "-to-" + q.Get("to")
	}
	longWrite(w)
	if format == report.CSV {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+"."+string(format)))
	if _, err := report.Write(w, s.o.DB, f, format, s.o.Now()); err != nil {
		s.o.Log.Error("console: report download failed", "err", err)
	}
}

// downloadTime is how long a download may take to write: longer than
// the listener's write timeout, which suits pages, not a year's report.
const downloadTime = 30 * time.Minute

// The deadline is the network's, so it is taken from the wall clock, not
// from the console's clock.
func longWrite(w http.ResponseWriter) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(downloadTime))
}
