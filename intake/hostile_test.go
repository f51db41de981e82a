package intake_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/intake"
	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/internal/peertext"
)

// A GetOrder success without its OrderInfo is Ascio (or something in
// between) failing, not an order that does not exist: the message is
// neither recorded as ignored nor acknowledged, and the next round plans
// the domain.
func TestDrainKeepsMessageWhenAnswerLacksItsElement(t *testing.T) {
	t.Parallel()
	for _, op := range []string{ascioteststand.OpGetOrder, ascioteststand.OpGetDomain, ascioteststand.OpPollQueue} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil, "")
			e.seed(51, "AR-51", "AutoRenew", "Received", expires)
			e.ascio.Script(op, ascioteststand.Missing)
			n, err := e.in.Drain(context.Background())
			if !ascio.IsTemporary(err) || n != 0 {
				t.Errorf("Drain = %d, %v; want 0 and a temporary error", n, err)
			}
			if _, _, applied := e.cal.state(); applied != 0 || len(e.ascio.Acked()) != 0 || len(e.ascio.Queue()) != 1 {
				t.Fatalf("applied %d (%+v), acked %v, %d queued; want nothing applied or acked, the message queued",
					applied, e.cal.applied, e.ascio.Acked(), len(e.ascio.Queue()))
			}
			if n, err := e.in.Drain(context.Background()); err != nil || n != 1 {
				t.Fatalf("next Drain = %d, %v", n, err)
			}
			if cur, _, _ := e.cal.state(); cur["example.com"].OrderID != "AR-51" {
				t.Errorf("after the next round: %+v, want the domain planned with order AR-51", cur)
			}
		})
	}
}

// The same through a callback: 503, so that Ascio or the poller brings the
// message again, instead of 404 (GetQueueMessage) or 200 and an ack
// (GetOrder).
func TestCallbackWithBrokenAnswerAnswers503(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, op string
		answer   ascioteststand.Answer
	}{
		{"message missing", ascioteststand.OpGetQueueMessage, ascioteststand.Missing},
		{"order missing", ascioteststand.OpGetOrder, ascioteststand.Missing},
		{"order HTML", ascioteststand.OpGetOrder, ascioteststand.HTML},
		{"domain truncated", ascioteststand.OpGetDomain, ascioteststand.Truncated},
		{"order redirect", ascioteststand.OpGetOrder, ascioteststand.Redirect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil, "")
			e.seed(52, "AR-52", "AutoRenew", "Received", expires)
			e.ascio.Script(tc.op, tc.answer)
			if code := e.callback(t, params("52", "AR-52")); code != 503 {
				t.Errorf("callback answered %d, want 503", code)
			}
			if _, _, n := e.cal.state(); n != 0 || len(e.ascio.Acked()) != 0 {
				t.Errorf("applied %d, acked %v; want neither", n, e.ascio.Acked())
			}
		})
	}
}

// logBuffer keeps every log line; safe for the handler's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A callback parameter is the caller's text: it is cut before it is
// logged.
func TestCallbackParametersAreCappedInLogs(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	var logs logBuffer
	e.in.Log = slog.New(slog.NewTextHandler(&logs, nil))
	e.seed(53, "AR-53", "AutoRenew", "Received", expires)
	long := strings.Repeat("A", 64<<10)
	if code := e.callback(t, params("53", long)); code != 404 {
		t.Errorf("callback with another OrderId answered %d, want 404", code)
	}
	if code := e.callback(t, params("99", long)); code != 404 {
		t.Errorf("callback for an unknown message answered %d, want 404", code)
	}
	out := logs.String()
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if len(line) > peertext.Max+512 {
			t.Errorf("log line of %d bytes: %.200s…", len(line), line)
		}
	}
	if strings.Count(out, "[cut:") != 2 {
		t.Errorf("logs do not say twice that the OrderId was cut:\n%.500s", out)
	}
}

// unknown is an Ascio whose GetOrder says the order does not exist, with
// a huge message.
type unknown struct{ intake.Ascio }

func (unknown) GetOrder(context.Context, string) (ascio.Order, error) {
	return ascio.Order{}, &ascio.Error{Op: "GetOrder", HTTPStatus: 200,
		Result: ascio.Result{Code: 404, Message: strings.Repeat("no such order ", 1<<16)}}
}

func (unknown) AckQueueMessage(context.Context, int) error { return nil }

// The reason stored with an ignored message is cut, whatever the error
// it comes from holds.
func TestIgnoredReasonIsCapped(t *testing.T) {
	t.Parallel()
	cal := newCalendar()
	in := &intake.Intake{Ascio: unknown{}, Calendar: cal, Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }}
	out, err := in.Take(context.Background(), ascio.QueueMessage{ID: 54, OrderID: "GONE"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Event.Kind != intake.Ignore || !out.Applied {
		t.Fatalf("outcome %+v, want an applied Ignore", out)
	}
	if r := out.Event.Reason; len(r) > peertext.Max+64 || !strings.Contains(r, "[cut:") {
		t.Errorf("reason is %d bytes (%.100s…), want at most %d and marked as cut", len(r), r, peertext.Max+64)
	}
}
