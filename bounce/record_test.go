package bounce

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// setup is a seeded store (proved.com's first reminder was sent and
// proved), a recorder on it, and the step's VERP address.
type setup struct {
	s    *reporttest.Store
	rec  *Recorder
	m    *Metrics
	logs *bytes.Buffer
	id   string
	addr string
}

func newSetup(t *testing.T) setup {
	t.Helper()
	s := reporttest.Seed(t)
	var key []byte
	if err := s.DB.Update(func(tx *store.Tx) (err error) { key, err = tx.VERPKey(); return err }); err != nil {
		t.Fatal(err)
	}
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder1)
	addr, err := NewSigner(key).Address("bounces@errp.example.net", id)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	m := NewMetrics(prometheus.NewRegistry())
	rec := &Recorder{DB: s.DB, Log: slog.New(slog.NewTextHandler(logs, nil)), Metrics: m, MaxBytes: 1 << 20,
		Now: func() time.Time { return time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC) }}
	return setup{s: s, rec: rec, m: m, logs: logs, id: id, addr: addr}
}

func (su setup) step(t *testing.T) (store.Step, store.Domain, int) {
	t.Helper()
	var s store.Step
	var d store.Domain
	audits := 0
	su.s.DB.View(func(tx *store.Tx) error {
		s, _, _ = tx.Step(su.id)
		d, _, _ = tx.Domain("proved.com")
		return tx.Audit(0, func(r store.Record) error {
			if r.Step == su.id && strings.HasPrefix(r.Detail, "bounce: ") {
				audits++
			}
			return nil
		})
	})
	return s, d, audits
}

func TestTakeHard(t *testing.T) {
	su := newSetup(t)
	out, err := su.rec.Take([]string{su.addr}, readTestdata(t, "dsn-hard.eml", su.addr))
	if err != nil || out.Step != su.id {
		t.Fatalf("Take: %+v, %v", out, err)
	}
	s, d, audits := su.step(t)
	want := store.Bounce{Kind: store.BounceHard, Status: "5.1.1", At: time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC),
		Diagnostic: "smtp; 550 5.1.1 <holder@proved.com>: Recipient address rejected: User unknown"}
	if s.Bounce == nil || *s.Bounce != want {
		t.Errorf("bounce %+v, want %+v", s.Bounce, want)
	}
	if s.State != scheduler.StateProved {
		t.Errorf("state %s: a bounce must not change it", s.State)
	}
	if audits != 1 {
		t.Errorf("%d bounce audit records, want 1", audits)
	}
	if f := d.ContactFailed(); f == nil || f.Reason != store.ContactFailedReason || f.Step != su.id {
		t.Errorf("domain flag %+v", d.Flag)
	}
	if got := counted(su.m, "hard"); got != 1 {
		t.Errorf("errpd_bounces_total{kind=hard} = %v", got)
	}
	// A soft bounce after it keeps the hard one, and is audited.
	if _, err := su.rec.Take(nil, readTestdata(t, "dsn-soft.eml", su.addr)); err != nil {
		t.Fatal(err)
	}
	if s, _, audits := su.step(t); s.Bounce.Kind != store.BounceHard || audits != 2 {
		t.Errorf("after a soft bounce (found by the To header): %+v, %d audits", s.Bounce, audits)
	}
	// The chain still verifies.
	if _, err := su.s.DB.Verify(); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestTakeDelayedAndAutoReply(t *testing.T) {
	su := newSetup(t)
	if _, err := su.rec.Take([]string{su.addr}, readTestdata(t, "dsn-delayed.eml", su.addr)); err != nil {
		t.Fatal(err)
	}
	if s, d, audits := su.step(t); s.Bounce != nil || audits != 1 || d.Flag != nil {
		t.Errorf("delayed: bounce %+v, %d audits, flag %+v; want none, 1, none", s.Bounce, audits, d.Flag)
	}
	if _, err := su.rec.Take([]string{su.addr}, readTestdata(t, "autoreply.eml", su.addr)); err != nil {
		t.Fatal(err)
	}
	if s, _, audits := su.step(t); s.Bounce != nil || audits != 1 {
		t.Errorf("auto-reply: bounce %+v, %d audits", s.Bounce, audits)
	}
	if _, err := su.rec.Take([]string{su.addr}, readTestdata(t, "nonstandard.eml", su.addr)); err != nil {
		t.Fatal(err)
	}
	if s, _, _ := su.step(t); s.Bounce == nil || s.Bounce.Kind != store.BounceHard || s.Bounce.Status != "5.1.1" {
		t.Errorf("non-standard: %+v", s.Bounce)
	}
	for kind, n := range map[string]float64{"delayed": 1, "ignored": 1, "hard": 1} {
		if got := counted(su.m, kind); got != n {
			t.Errorf("errpd_bounces_total{kind=%s} = %v, want %v", kind, got, n)
		}
	}
}

// A forged or foreign token changes nothing and is logged, capped.
func TestTakeForged(t *testing.T) {
	su := newSetup(t)
	other, _ := NewSigner(bytes.Repeat([]byte{1}, 32)).Address("bounces@errp.example.net", su.id)
	long := "bounces+" + strings.Repeat("x", 5000) + "@errp.example.net"
	for _, a := range []string{other, "bounces@errp.example.net", long} {
		_, err := su.rec.Take([]string{a}, readTestdata(t, "dsn-hard.eml", a))
		if !errors.Is(err, ErrToken) {
			t.Errorf("%.40s: %v, want ErrToken", a, err)
		}
	}
	if s, d, audits := su.step(t); s.Bounce != nil || audits != 0 || d.Flag != nil {
		t.Errorf("forged bounce changed the step: %+v, %d audits, flag %+v", s.Bounce, audits, d.Flag)
	}
	if got := counted(su.m, "unverified"); got != 3 {
		t.Errorf("unverified = %v", got)
	}
	if !strings.Contains(su.logs.String(), "bounce without a valid token") || strings.Count(su.logs.String(), "x") > 2*600 {
		t.Errorf("log not as expected (%d bytes)", su.logs.Len())
	}
	if _, err := su.rec.Take([]string{su.addr}, bytes.Repeat([]byte("a"), 2<<20)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("2 MiB: %v", err)
	}
}

func counted(m *Metrics, kind string) float64 {
	var d dto.Metric
	m.total.WithLabelValues(kind).Write(&d)
	return d.GetCounter().GetValue()
}
