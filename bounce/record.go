package bounce

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/errpd/errpd/internal/peertext"
	"github.com/errpd/errpd/store"
)

// Metrics counts the bounces taken, by kind: hard, soft, delayed (as
// recorded), ignored (auto-replies, reports of no failure) and
// unverified (no valid token: forged, or not ours).
type Metrics struct{ total *prometheus.CounterVec }

// NewMetrics registers errpd_bounces_total{kind} on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{total: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "errpd_bounces_total",
		Help: "Bounces taken, by kind: hard, soft, delayed, ignored, unverified.",
	}, []string{"kind"})}
	for _, k := range []string{"hard", "soft", "delayed", "ignored", "unverified"} {
		m.total.WithLabelValues(k)
	}
	if reg != nil {
		reg.MustRegister(m.total)
	}
	return m
}

func (m *Metrics) inc(kind string) {
	if m != nil {
		m.total.WithLabelValues(kind).Inc()
	}
}

// Recorder records bounces on their steps.
type Recorder struct {
	DB       *store.DB
	Log      *slog.Logger
	Metrics  *Metrics         // nil: not counted
	Now      func() time.Time // nil: time.Now
	MaxBytes int              // a larger message is refused
}

// Outcome is what a bounce did.
type Outcome struct {
	Step    string // the step it was recorded on; empty if none
	Verdict Verdict
}

// ParseError is a message that cannot be read as mail: logged, and no
// retry will change it.
type ParseError struct{ Err error }

func (e *ParseError) Error() string { return e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// ErrTooLarge is returned for a message over MaxBytes.
var ErrTooLarge = errors.New("bounce message too large")

// Take handles one message that arrived for the addresses rcpts (the
// envelope recipients; when none is known, those in its Delivered-To,
// X-Original-To and To headers are tried). A message whose addresses hold
// no valid token is logged and changes nothing (ErrToken).
func (r *Recorder) Take(rcpts []string, raw []byte) (Outcome, error) {
	if r.MaxBytes > 0 && len(raw) > r.MaxBytes {
		return Outcome{}, fmt.Errorf("%w: %d bytes, over %d", ErrTooLarge, len(raw), r.MaxBytes)
	}
	if len(rcpts) == 0 {
		rcpts = headerAddresses(raw)
	}
	v, err := Parse(bytes.NewReader(raw))
	if err != nil {
		r.Log.Warn("bounce not readable; ignored", "err", peertext.Cap(err.Error()))
		r.Metrics.inc("ignored")
		return Outcome{}, &ParseError{err}
	}
	var out Outcome
	out.Verdict = v
	err = r.DB.Update(func(tx *store.Tx) error {
		key, err := tx.VERPKey()
		if err != nil {
			return err
		}
		s, err := findStep(tx, NewSigner(key), rcpts)
		if err != nil || v.Kind == "" {
			out.Step = s
			return err
		}
		now := time.Now
		if r.Now != nil {
			now = r.Now
		}
		st, err := tx.RecordBounce(s, store.Bounce{Kind: v.Kind, Status: v.Status, Diagnostic: v.Diagnostic, At: now()})
		out.Step = st.ID
		return err
	})
	switch {
	case errors.Is(err, ErrToken):
		r.Log.Warn("bounce without a valid token; ignored", "to", peertext.CapN(fmt.Sprint(rcpts), 512))
		r.Metrics.inc("unverified")
	case err != nil:
		r.Log.Error("recording a bounce", "err", err)
	case v.Kind == "":
		r.Log.Info("message to a bounce address ignored", "step", out.Step, "why", v.Ignored)
		r.Metrics.inc("ignored")
	default:
		r.Log.Info("bounce recorded", "step", out.Step, "kind", v.Kind, "status", v.Status, "dsn", v.DSN)
		r.Metrics.inc(string(v.Kind))
	}
	return out, err
}

// findStep returns the id of the step the first address with a valid
// token names.
func findStep(tx *store.Tx, sg *Signer, rcpts []string) (string, error) {
	for _, a := range rcpts {
		short, err := sg.Verify(a)
		if err != nil {
			continue
		}
		s, ok, err := tx.StepByShortID(short)
		if err != nil {
			return "", err
		}
		if ok {
			return s.ID, nil
		}
	}
	return "", ErrToken
}

// headerAddresses are the addresses a bounce was delivered to, as its
// header tells them, for a pipe that was not given the envelope recipient.
func headerAddresses(raw []byte) []string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range []string{"Delivered-To", "X-Original-To", "To"} {
		for _, v := range m.Header[k] {
			list, err := mail.ParseAddressList(v)
			if err != nil {
				out = append(out, v)
				continue
			}
			for _, a := range list {
				out = append(out, a.Address)
			}
		}
	}
	return out
}
