package dispatcher

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/errpd/errpd/store"
)

// Metrics are the dispatcher's Prometheus series. They are registered on a
// registry the caller owns, so tests can run side by side.
type Metrics struct {
	Sends        *prometheus.CounterVec
	Uploads      *prometheus.CounterVec
	Misses       prometheus.Counter
	OldestDueLag prometheus.Gauge
}

// NewMetrics creates and registers the series, and a collector that reports
// the number of steps in each state from the store's counts at scrape time.
func NewMetrics(reg prometheus.Registerer, db *store.DB) *Metrics {
	m := &Metrics{
		Sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "errpd_sends_total", Help: "SMTP transactions by result (ok, temporary, permanent, in_doubt: no answer after the final dot).",
		}, []string{"result"}),
		Uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "errpd_uploads_total", Help: "Proof uploads to Ascio by result (ok, temporary, permanent).",
		}, []string{"result"}),
		Misses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "errpd_deadline_misses_total", Help: "Notices whose window closed before they were sent, found by the dispatcher (a notice imported after its deadline is counted in errpd_steps{state=\"missed\"} only).",
		}),
		OldestDueLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "errpd_oldest_due_lag_seconds", Help: "How long the oldest due notice has waited past its send time.",
		}),
	}
	// Every result shows from the start, at 0, so that a dashboard's rate
	// of failures has a series before the first failure.
	for _, r := range []string{"ok", "temporary", "permanent", "in_doubt"} {
		m.Sends.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "temporary", "permanent"} {
		m.Uploads.WithLabelValues(r)
	}
	reg.MustRegister(m.Sends, m.Uploads, m.Misses, m.OldestDueLag, stepsCollector{db})
	return m
}

func (m *Metrics) sent(result string) {
	if m != nil {
		m.Sends.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) uploaded(result string) {
	if m != nil {
		m.Uploads.WithLabelValues(result).Inc()
	}
}

func (m *Metrics) missed() {
	if m != nil {
		m.Misses.Inc()
	}
}

var (
	stepsDesc   = prometheus.NewDesc("errpd_steps", "Steps by state.", []string{"state"}, nil)
	commitsDesc = prometheus.NewDesc("errpd_store_commits_total", "Group-committed store transactions (one fsync pair each).", nil, nil)
	writesDesc  = prometheus.NewDesc("errpd_store_writes_total", "Writes carried by those transactions; writes per commit is how well fsyncs are shared.", nil, nil)
)

// stepsCollector reads the per-state counts the store keeps as steps move,
// and the store's group-commit figures.
type stepsCollector struct{ db *store.DB }

func (c stepsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stepsDesc
	ch <- commitsDesc
	ch <- writesDesc
}

func (c stepsCollector) Collect(ch chan<- prometheus.Metric) {
	commits, writes := c.db.CommitStats()
	ch <- prometheus.MustNewConstMetric(commitsDesc, prometheus.CounterValue, float64(commits))
	ch <- prometheus.MustNewConstMetric(writesDesc, prometheus.CounterValue, float64(writes))
	c.db.View(func(tx *store.Tx) error {
		for state, n := range tx.Counts() {
			ch <- prometheus.MustNewConstMetric(stepsDesc, prometheus.GaugeValue, float64(n), string(state))
		}
		return nil
	})
}
