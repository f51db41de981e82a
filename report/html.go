package report

import (
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/errpd/errpd/store"
)

// maxBars bounds the chart's width: a longer period groups days.
const maxBars = 370

// writeHTML reads the rows twice: first for the summary and the per-day
// counts (one small struct per day), then to stream the table.
func writeHTML(w io.Writer, db *store.DB, f Filter, generated time.Time) (Summary, error) {
	sum := NewSummary(f, generated)
	sent, deadlines := map[time.Time]int{}, map[time.Time]int{}
	err := Rows(db, f, func(r Row) error {
		sum.Add(r)
		deadlines[dayOf(r.Deadline)]++
		if !r.SentAt.IsZero() {
			sent[dayOf(r.SentAt)]++
		}
		return nil
	})
	if err != nil {
		return sum, err
	}
	page := htmlPage{Summary: sum, Generated: generated.UTC(), Filter: f, Chart: chart(f, sent, deadlines)}
	if err := pageTemplate.ExecuteTemplate(w, "head", page); err != nil {
		return sum, err
	}
	again := NewSummary(f, generated)
	err = Rows(db, f, func(r Row) error {
		r.Pending = again.IsPending(r)
		again.Add(r)
		return pageTemplate.ExecuteTemplate(w, "row", r)
	})
	if err != nil {
		return sum, err
	}
	if again.Due != sum.Due {
		// The daemon moved steps between the two passes; say so rather
		// than print a summary that does not add up to the table.
		page.Changed = fmt.Sprintf("The store changed while this report was written: the summary counts %d notices, the table %d.", sum.Due, again.Due)
	}
	return sum, pageTemplate.ExecuteTemplate(w, "tail", page)
}

func dayOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

type htmlPage struct {
	Summary   Summary
	Generated time.Time
	Filter    Filter
	Chart     svgChart
	Changed   string
}

// svgChart is the per-day chart, laid out in SVG user units.
type svgChart struct {
	Width, Height int
	Bars          []svgBar
	Ticks         []svgTick
	Max           int
	From, To      string
	Span          string // "1 day" or "7 days" per bar
	Empty         bool
}

type svgBar struct {
	X, W         float64
	SentY, SentH float64
	DeadY, DeadH float64
	Title        string
}

type svgTick struct {
	X     float64
	Label string
}

const (
	chartW, chartH = 1000, 240
	plotL, plotR   = 40, 10
	plotT, plotB   = 10, 30
)

func chart(f Filter, sent, deadlines map[time.Time]int) svgChart {
	c := svgChart{Width: chartW, Height: chartH}
	var first, last time.Time
	for _, m := range []map[time.Time]int{sent, deadlines} {
		for d := range m {
			if first.IsZero() || d.Before(first) {
				first = d
			}
			if d.After(last) {
				last = d
			}
		}
	}
	if first.IsZero() {
		c.Empty = true
		return c
	}
	// A closed period is drawn whole, empty days included (and the days
	// before it on which its early notices went out); an open one spans
	// the notices found.
	if !f.From.IsZero() && !f.To.IsZero() {
		if from := dayOf(f.From); from.Before(first) {
			first = from
		}
		if to := dayOf(f.To.Add(-time.Second)); to.After(last) {
			last = to
		}
	}
	days := int(last.Sub(first)/(24*time.Hour)) + 1
	per := (days + maxBars - 1) / maxBars
	n := (days + per - 1) / per
	c.Span = "1 day"
	if per > 1 {
		c.Span = fmt.Sprintf("%d days", per)
	}
	type pair struct{ s, d int }
	buckets := make([]pair, n)
	for d, k := range sent {
		buckets[int(d.Sub(first)/(24*time.Hour))/per].s += k
	}
	for d, k := range deadlines {
		buckets[int(d.Sub(first)/(24*time.Hour))/per].d += k
	}
	for _, b := range buckets {
		c.Max = max(c.Max, b.s, b.d)
	}
	plotW, plotH := float64(chartW-plotL-plotR), float64(chartH-plotT-plotB)
	slot := plotW / float64(n)
	scale := plotH / float64(max(c.Max, 1))
	for i, b := range buckets {
		x := plotL + float64(i)*slot
		sh, dh := float64(b.s)*scale, float64(b.d)*scale
		start := first.AddDate(0, 0, i*per)
		c.Bars = append(c.Bars, svgBar{
			X: round(x + slot*0.1), W: round(slot * 0.4),
			SentY: round(plotT + plotH - sh), SentH: round(sh),
			DeadY: round(plotT + plotH - dh), DeadH: round(dh),
			Title: fmt.Sprintf("%s: %d sent, %d deadlines", start.Format(time.DateOnly), b.s, b.d),
		})
	}
	step := max(1, n/8)
	for i := 0; i < n-step/2; i += step {
		c.Ticks = append(c.Ticks, svgTick{X: round(plotL + float64(i)*slot), Label: first.AddDate(0, 0, i*per).Format("Jan 2")})
	}
	c.From, c.To = first.Format(time.DateOnly), last.Format(time.DateOnly)
	return c
}

// period states the report's period in words: "[open, open)" said
// nothing to an auditor.
func period(f Filter) string {
	at := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") }
	switch {
	case !f.From.IsZero() && !f.To.IsZero():
		return "Notices whose deadline is on or after " + at(f.From) + " and before " + at(f.To)
	case !f.From.IsZero():
		return "Notices whose deadline is on or after " + at(f.From) + " (no end given)"
	case !f.To.IsZero():
		return "Notices whose deadline is before " + at(f.To) + " (no start given)"
	}
	return "Every notice in the store, whatever its deadline (no period given)"
}

// cutoff says where the summary's cutoff comes from.
func cutoff(s Summary) string {
	if !s.To.IsZero() && s.Cutoff.Equal(s.To) {
		return "the end of the period"
	}
	return "when this report was generated, before the end of the period"
}

func round(f float64) float64 { return float64(int(f*10+0.5)) / 10 }

var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"period": period,
	"cutoff": cutoff,
	"yesno":  yesNo,
	"outcome": func(ok, pending bool) string {
		if !ok && pending {
			return "pending" // not a red "no": its deadline has not come
		}
		return yesNo(ok)
	},
	"rate": func(s Summary) string {
		r, ok := s.Rate()
		if !ok {
			return "n/a (nothing owed)"
		}
		return fmt.Sprintf("%.1f%%", r*100)
	},
	"join": func(s []string) string { return strings.Join(s, ", ") },
}).Parse(pageHTML))

const pageHTML = `{{define "head"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>ERRP notice report</title>
<style>
@page { size: A4 landscape; margin: 12mm; }
body { font: 11px/1.35 system-ui, sans-serif; color: #111; margin: 16px; }
h1 { font-size: 18px; margin: 0 0 4px; }
p.meta { color: #444; margin: 0 0 12px; }
table.summary { border-collapse: collapse; margin: 0 0 12px; }
table.summary td, table.summary th { border: 1px solid #999; padding: 3px 8px; text-align: right; }
table.summary th { background: #eee; text-align: left; }
td.rate { font-weight: bold; font-size: 13px; }
figure { margin: 0 0 12px; }
figcaption { color: #444; }
.legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; vertical-align: middle; }
table.rows { border-collapse: collapse; width: 100%; font-size: 8px; }
table.rows th, table.rows td { border: 1px solid #bbb; padding: 2px 3px; vertical-align: top; overflow-wrap: anywhere; }
table.rows th { background: #eee; }
table.rows thead { display: table-header-group; }
table.rows tr { page-break-inside: avoid; }
td.yes { background: #dfd; }
td.no { background: #fdd; }
td.pending { background: #eee; color: #555; }
.notes { color: #444; font-size: 10px; }
@media print { body { margin: 0; } }
</style></head>
<body>
<h1>ERRP notice report</h1>
<p class="meta" id="period">{{period .Filter}}
{{- if .Filter.Domains}}; domains: {{join .Filter.Domains}}{{end}}
{{- if .Filter.TLD}}; TLD: .{{.Filter.TLD}}{{end}}. Generated {{stamp .Generated}} by errpd.
Counted: the notices whose deadline is before {{stamp .Summary.Cutoff}} ({{cutoff .Summary}}); the others are listed as pending and not counted.</p>
<table class="summary" id="summary">
<tr><th>Notices listed</th><td>{{.Summary.Due}}</td><th>Pending (deadline to come, not counted)</th><td>{{.Summary.Pending}}</td></tr>
<tr><th>Counted</th><td>{{.Summary.Counted}}</td><th>Skipped (not owed)</th><td>{{.Summary.Skipped}}</td></tr>
<tr><th>Owed</th><td>{{.Summary.Owed}}</td><th>Sent</th><td>{{.Summary.Sent}}</td></tr>
<tr><th>Sent in window</th><td>{{.Summary.SentInWindow}}</td><th>Proved</th><td>{{.Summary.Proved}}</td></tr>
<tr><th>Proved before Ascio's deadline</th><td>{{.Summary.ProvedInTime}}</td><th>Missed</th><td>{{.Summary.Missed}}</td></tr>
<tr><th>Failed</th><td>{{.Summary.Failed}}</td><th>In doubt</th><td>{{.Summary.InDoubt}}</td></tr>
<tr><th>Sent in window and proved in time</th><td>{{.Summary.SentAndProved}}</td><th>Otherwise covered by Ascio's own send</th><td>{{.Summary.CoveredByAscio}}</td></tr>
<tr><th>Ascio's own send unknown</th><td>{{.Summary.CoverageUnknown}}</td><th>Compliance rate</th><td class="rate">{{rate .Summary}}</td></tr>
</table>
<p class="notes">A notice is due in the period when its window's deadline (Ascio's own send) falls in it.
Compliance rate = (notices sent inside their window and proved to Ascio before that deadline + the other notices
of which Ascio sent its own copy) / notices owed (counted less skipped).
Whether Ascio sent its own copy ("Covered by Ascio": yes, no, unknown) is read from Ascio's GetMessages for the order
a day after a deadline that passed without errpd's proof.</p>
<figure>
{{- with .Chart}}{{if .Empty}}<p>No notices in this period.</p>{{else}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}" role="img" aria-label="Notices sent per day against deadlines per day">
<rect x="40" y="10" width="950" height="200" fill="#fafafa" stroke="#ccc"/>
<text x="36" y="16" font-size="10" text-anchor="end">{{.Max}}</text>
<text x="36" y="210" font-size="10" text-anchor="end">0</text>
{{- range .Bars}}
<g><title>{{.Title}}</title><rect x="{{.X}}" y="{{.DeadY}}" width="{{.W}}" height="{{.DeadH}}" fill="#e08a2c"/><rect x="{{.X}}" y="{{.SentY}}" width="{{.W}}" height="{{.SentH}}" fill="#2c6fb5" transform="translate({{.W}},0)"/></g>
{{- end}}
{{- range .Ticks}}
<text x="{{.X}}" y="226" font-size="10">{{.Label}}</text>
{{- end}}
</svg>
<figcaption class="legend">Per {{.Span}}, {{.From}} to {{.To}} (UTC):<span style="background:#2c6fb5"></span>notices sent<span style="background:#e08a2c"></span>deadlines</figcaption>
{{end}}{{end}}
</figure>
<table class="rows">
<thead><tr><th>Domain</th><th>Mode</th><th>Expiry</th><th>Notice</th><th>ICANN window</th><th>Opens</th><th>Deadline</th><th>Sent at</th><th>In window</th><th>Recipient</th><th>Language</th><th>From / envelope</th><th>Message-ID</th><th>SHA-256</th><th>SMTP reply</th><th>Att.</th><th>Ascio order</th><th>Uploaded</th><th>Ascio result</th><th>Proved in time</th><th>Why not sent</th><th>Covered by Ascio</th><th>Closed reason</th><th>Bounce</th></tr></thead>
<tbody>
{{end}}
{{- define "row"}}<tr><td>{{.DomainUnicode}}{{if ne .DomainUnicode .Domain}}<br>{{.Domain}}{{end}}</td><td>{{.Mode}}</td><td>{{stamp .Expiry}}</td><td>{{.Notice}}</td><td>{{.ICANNWindow}}</td><td>{{stamp .Opens}}</td><td>{{stamp .Deadline}}</td><td>{{stamp .SentAt}}</td><td class="{{outcome .InWindow .Pending}}">{{outcome .InWindow .Pending}}</td><td>{{.Recipient}}</td><td>{{.Language}}{{if .LanguageFallback}}<br>(no {{.LanguageFallback}} template){{end}}</td><td>{{.From}}{{if .EnvelopeFrom}}<br>{{.EnvelopeFrom}}{{end}}</td><td>{{.MessageID}}</td><td>{{.SHA256}}</td><td>{{.SMTPReply}}</td><td>{{.Attempts}}</td><td>{{.OrderID}}</td><td>{{stamp .UploadedAt}}</td><td>{{.AscioResult}}</td><td class="{{outcome .ProvedInTime .Pending}}">{{outcome .ProvedInTime .Pending}}</td><td>{{.WhyNotSent}}</td><td class="{{.CoveredByAscio}}">{{.CoveredByAscio}}</td><td>{{.ClosedReason}}</td><td>{{.Bounce}} {{.BounceStatus}}{{if .Bounce}}<br>{{stamp .BouncedAt}}{{end}}{{if .ContactFlag}}<br>{{.ContactFlag}}{{end}}</td></tr>
{{end}}
{{- define "tail"}}</tbody>
</table>
{{- if .Changed}}
<p class="notes"><strong>{{.Changed}}</strong></p>
{{- end}}
</body></html>
{{end}}`
