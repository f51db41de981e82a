package console

import "fmt"

// chart is the monthly compliance rate as SVG bars, laid out here so the
// template only places them.
type chart struct {
	Width, Height int
	Bars          []bar
	Grid          []gridLine
	Base          int // y of the 0% line
}

type bar struct {
	X, Y, W, H int
	Month      string // "Jan"
	Year       string // shown under January and the first bar
	Value      string // "96.7%", or "–" when nothing was owed
	Title      string // the tooltip: counts behind the rate
	Class      string // good, warn, bad, none
	LabelY     int
}

type gridLine struct {
	Y     int
	Label string
}

const (
	chartW, chartH = 720, 220
	chartLeft      = 44
	chartTop       = 24
	chartBottom    = 40
)

func newChart(months []month) chart {
	c := chart{Width: chartW, Height: chartH, Base: chartH - chartBottom}
	plot := c.Base - chartTop
	for _, pct := range []int{0, 50, 100} {
		c.Grid = append(c.Grid, gridLine{Y: c.Base - plot*pct/100, Label: fmt.Sprintf("%d%%", pct)})
	}
	slot := (chartW - chartLeft) / max(len(months), 1)
	for i, m := range months {
		b := bar{X: chartLeft + i*slot + slot/6, W: slot * 2 / 3, Month: m.Start.Format("Jan")}
		if i == 0 || m.Start.Month() == 1 {
			b.Year = m.Start.Format("2006")
		}
		sum := m.Summary
		b.Title = fmt.Sprintf("%s: owed %d, sent and proved in time %d, covered by Ascio %d, pending %d",
			m.Start.Format("January 2006"), sum.Owed, sum.SentAndProved, sum.CoveredByAscio, sum.Pending)
		rate, ok := sum.Rate()
		switch {
		case !ok:
			b.Value, b.Class, b.H = "–", "none", 2
		case rate >= 0.99:
			b.Class = "good"
		case rate >= 0.9:
			b.Class = "warn"
		default:
			b.Class = "bad"
		}
		if ok {
			b.Value = fmt.Sprintf("%.1f%%", rate*100)
			b.H = max(int(rate*float64(plot)+0.5), 2)
		}
		b.Y = c.Base - b.H
		b.LabelY = b.Y - 6
		c.Bars = append(c.Bars, b)
	}
	return c
}
