package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// clock is a settable time source.
type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

type renderer struct{}

func (renderer) Render(s store.Step, c store.Cycle) (Message, error) {
	return Message{
		Raw:          []byte(fmt.Sprintf("Message-ID: <%s>\r\nTo: %s\r\n\r\n%s for %s\r\n", s.ID, c.Registrant.Email, s.Notice, s.Domain)),
		MessageID:    "<" + s.ID + ">",
		From:         "renewals@example.net",
		To:           c.Registrant.Email,
		EnvelopeFrom: "bounces@example.net",
	}, nil
}

// sender records what it was given and fails as told.
type sender struct {
	mu   sync.Mutex
	got  map[string][][]byte // recipient -> messages
	fail func(to string, n int) error
	// lost: after delivering, the relay's answer never arrives.
	lost func(to string, n int) bool
}

// Send passes the gate only where a relay would (before the end of DATA),
// and records a message as delivered only when the gate let it through.
func (s *sender) Send(_ context.Context, from string, to []string, raw []byte, gate func() error) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string][][]byte{}
	}
	n := len(s.got[to[0]+"#tries"])
	s.got[to[0]+"#tries"] = append(s.got[to[0]+"#tries"], nil)
	if s.fail != nil {
		if err := s.fail(to[0], n); err != nil {
			return "", err
		}
	}
	s.mu.Unlock()
	err := gate()
	s.mu.Lock()
	if err != nil {
		return "", err
	}
	s.got[to[0]] = append(s.got[to[0]], append([]byte(nil), raw...))
	if s.lost != nil && s.lost(to[0], n) {
		return "", failure.AsInDoubt(errors.New("outcome unknown at data: connection reset"))
	}
	return "250 2.0.0 Ok: queued", nil
}

func (s *sender) count(to string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got[to])
}

type uploader struct {
	mu       sync.Mutex
	got      map[string][]byte // order id + notice -> raw
	fail     func(n int) error
	n        int
	attempts []int // the step's upload attempts, as each call saw them
}

func (u *uploader) Upload(_ context.Context, orderID string, s store.Step, raw []byte) (string, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.attempts = append(u.attempts, s.UploadAttempts)
	u.n++
	if u.fail != nil {
		if err := u.fail(u.n); err != nil {
			return "", err
		}
	}
	if u.got == nil {
		u.got = map[string][]byte{}
	}
	u.got[orderID+"/"+string(s.Notice)] = raw
	return "200 OK", nil
}

type setup struct {
	db    *store.DB
	clock *clock
	send  *sender
	up    *uploader
	d     *Dispatcher
}

func newSetup(t *testing.T, now time.Time) *setup {
	t.Helper()
	return newSetupWith(t, now, store.Options{})
}

// newSetupWith is newSetup on a store opened with o (and the setup's clock).
func newSetupWith(t *testing.T, now time.Time, o store.Options) *setup {
	t.Helper()
	c := &clock{}
	c.Set(now)
	o.Now = c.Now
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &setup{db: db, clock: c, send: &sender{}, up: &uploader{}}
	s.d = &Dispatcher{DB: db, Renderer: renderer{}, Sender: s.send, Uploader: s.up, Now: c.Now, Workers: 2,
		Retry: Retry{Base: time.Minute, Max: time.Hour}}
	return s
}

func (s *setup) add(t *testing.T, name, email, order string, mode scheduler.Mode, expiry time.Time) {
	t.Helper()
	err := s.db.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(store.Domain{Name: name, Mode: mode, Expiry: expiry, OrderID: order,
			Registrant: store.Registrant{Name: "R", Email: email}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *setup) step(t *testing.T, name string, expiry time.Time, n scheduler.Notice) store.Step {
	t.Helper()
	var st store.Step
	s.db.View(func(tx *store.Tx) error {
		st, _, _ = tx.Step(store.StepID(name, expiry, n))
		return nil
	})
	return st
}

// run starts the loop and returns a function that stops it and waits.
func (s *setup) run(t *testing.T) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.d.Run(ctx, nil) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// eventually polls cond; it waits for goroutines, never for a day.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

var now0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestSendsDueOnceAndProves(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day) // reminder1 window open
	s.add(t, "a.com", "a@example.org", "ORD-A", scheduler.ModeRenew, exp)
	s.add(t, "later.com", "l@example.org", "ORD-L", scheduler.ModeRenew, now0.Add(60*scheduler.Day))
	stop := s.run(t)
	eventually(t, "a.com proved", func() bool { return s.step(t, "a.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	stop()
	if n := s.send.count("a@example.org"); n != 1 {
		t.Errorf("a.com reminder1 sent %d times", n)
	}
	if n := s.send.count("l@example.org"); n != 0 {
		t.Errorf("later.com sent %d times before its window", n)
	}
	st := s.step(t, "a.com", exp, scheduler.Reminder1)
	if st.MessageID == "" || st.SHA256 == "" || st.SMTPReply == "" || st.OrderID != "ORD-A" || st.AscioResult != "200 OK" {
		t.Errorf("proved step lacks its record: %+v", st)
	}
	var raw []byte
	s.db.View(func(tx *store.Tx) error { raw, _, _, _ = tx.Message(st.ID); return nil })
	if string(s.up.got["ORD-A/reminder1"]) != string(raw) || string(s.send.got["a@example.org"][0]) != string(raw) {
		t.Error("uploaded bytes, sent bytes and stored bytes differ")
	}

	// Time passes to reminder2's window: it goes out, reminder1 does not again.
	s.clock.Set(exp.Add(-6 * scheduler.Day))
	stop = s.run(t)
	eventually(t, "reminder2 proved", func() bool { return s.step(t, "a.com", exp, scheduler.Reminder2).State == scheduler.StateProved })
	stop()
	if n := s.send.count("a@example.org"); n != 2 {
		t.Errorf("a.com: %d messages after two windows, want 2", n)
	}
}

func TestTemporaryThenPermanent(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "temp.com", "temp@example.org", "O1", scheduler.ModeRenew, exp)
	s.add(t, "perm.com", "perm@example.org", "O2", scheduler.ModeRenew, exp)
	s.send.fail = func(to string, n int) error {
		switch {
		case to == "perm@example.org":
			return failure.AsPermanent(errors.New("550 5.1.1 no such user"))
		case n < 2:
			return errors.New("451 4.3.0 try later")
		}
		return nil
	}
	stop := s.run(t)
	eventually(t, "perm failed", func() bool { return s.step(t, "perm.com", exp, scheduler.Reminder1).State == scheduler.StateFailed })
	eventually(t, "temp deferred", func() bool {
		st := s.step(t, "temp.com", exp, scheduler.Reminder1)
		return st.Attempts == 1 && st.State == scheduler.StateDue
	})
	st := s.step(t, "temp.com", exp, scheduler.Reminder1)
	if !st.SendAt.After(now0) || st.SMTPReply == "" {
		t.Fatalf("after a temporary failure: send_at %s reply %q, want a later retry and the reply", st.SendAt, st.SMTPReply)
	}
	for attempt := 2; attempt <= 3; attempt++ {
		s.clock.Add(3 * time.Hour) // past the backoff
		s.d.Wake()
		eventually(t, fmt.Sprintf("attempt %d", attempt), func() bool {
			st := s.step(t, "temp.com", exp, scheduler.Reminder1)
			// Its outcome recorded: deferred again, or sent.
			return st.Attempts == attempt && st.State != scheduler.StateSending
		})
	}
	eventually(t, "temp proved", func() bool { return s.step(t, "temp.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	stop()
	if got := s.step(t, "perm.com", exp, scheduler.Reminder1); got.Reason == "" || got.SMTPReply == "" {
		t.Errorf("failed step does not say why: %+v", got)
	}
	if n := s.send.count("temp@example.org"); n != 1 {
		t.Errorf("temp.com delivered %d times", n)
	}
}

func TestUploadWaitsForOrderIDAndRetries(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "noorder.com", "n@example.org", "", scheduler.ModeRenew, exp)
	s.up.fail = func(n int) error {
		if n == 1 {
			return errors.New("554 try again later")
		}
		return nil
	}
	stop := s.run(t)
	eventually(t, "sent", func() bool { return s.step(t, "noorder.com", exp, scheduler.Reminder1).State == scheduler.StateSent })
	// Ascio's order arrives.
	s.add(t, "noorder.com", "n@example.org", "ORD-N", scheduler.ModeRenew, exp)
	s.d.Wake()
	// Failed and recorded: attempts count from the upload's intent, so the
	// state must be back to sent before the clock moves past the backoff.
	eventually(t, "first upload failed", func() bool {
		st := s.step(t, "noorder.com", exp, scheduler.Reminder1)
		return st.UploadAttempts == 1 && st.State == scheduler.StateSent
	})
	s.clock.Add(2 * time.Hour)
	s.d.Wake()
	eventually(t, "proved", func() bool { return s.step(t, "noorder.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	stop()
	if _, ok := s.up.got["ORD-N/reminder1"]; !ok {
		t.Error("upload not made against the order id that arrived")
	}
}

func TestRecoverPutsSendingInDoubt(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "crash.com", "c@example.org", "O", scheduler.ModeRenew, exp)
	id := store.StepID("crash.com", exp, scheduler.Reminder1)
	// What a crash during the SMTP transaction leaves behind.
	s.db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateSending, "sending", nil)
		return err
	})
	inDoubt, err := s.d.Recover()
	if err != nil || len(inDoubt) != 1 || inDoubt[0].ID != id {
		t.Fatalf("Recover: %v %v", inDoubt, err)
	}
	stop := s.run(t)
	s.clock.Add(time.Hour)
	s.d.Wake()
	stop()
	if st := s.step(t, "crash.com", exp, scheduler.Reminder1); st.State != scheduler.StateInDoubt {
		t.Errorf("state %s, want in_doubt", st.State)
	}
	if n := s.send.count("c@example.org"); n != 0 {
		t.Errorf("an in-doubt step was resent %d times", n)
	}
}

func TestMissedAfterDowntime(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "down.com", "d@example.org", "O", scheduler.ModeRenew, exp)
	s.clock.Set(exp.Add(-5 * scheduler.Day)) // reminder1's deadline passed, reminder2 open
	stop := s.run(t)
	eventually(t, "reminder2 proved", func() bool { return s.step(t, "down.com", exp, scheduler.Reminder2).State == scheduler.StateProved })
	stop()
	if st := s.step(t, "down.com", exp, scheduler.Reminder1); st.State != scheduler.StateMissed {
		t.Errorf("reminder1 %s, want missed", st.State)
	}
	if n := s.send.count("d@example.org"); n != 1 {
		t.Errorf("%d messages, want only reminder2", n)
	}
}

// gateSender checks, at the point of no return, what a crash would leave.
type gateSender struct {
	db        *store.DB
	mu        sync.Mutex
	atGate    []scheduler.State // the step's stored state once the gate opened
	delivered int
	refused   []error
}

func (g *gateSender) Send(_ context.Context, _ string, _ []string, raw []byte, gate func() error) (string, error) {
	id := string(raw[len("Message-ID: <"):bytes.IndexByte(raw, '>')])
	if err := gate(); err != nil {
		g.mu.Lock()
		g.refused = append(g.refused, err)
		g.mu.Unlock()
		return "", err
	}
	var st store.Step
	g.db.View(func(tx *store.Tx) error { st, _, _ = tx.Step(id); return nil })
	g.mu.Lock()
	g.atGate = append(g.atGate, st.State)
	g.delivered++
	g.mu.Unlock()
	return "250 ok", nil
}

// moveDuringRender is another actor (a renewal closing the cycle) moving
// the step after the worker read it and before its intent commits.
type moveDuringRender struct {
	db *store.DB
}

func (m moveDuringRender) Render(s store.Step, c store.Cycle) (Message, error) {
	err := m.db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(s.ID, []scheduler.State{scheduler.StateDue}, scheduler.StateSkipped, "renewed", nil)
		return err
	})
	if err != nil {
		return Message{}, err
	}
	return renderer{}.Render(s, c)
}

// TestGateOpensOnlyOnDurableIntent: the message is handed over only once
// its intent is committed, and never when the step moved on first.
func TestGateOpensOnlyOnDurableIntent(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "gate.com", "g@example.org", "O", scheduler.ModeRenew, exp)
	g := &gateSender{db: s.db}
	s.d.Sender = g
	stop := s.run(t)
	eventually(t, "proved", func() bool { return s.step(t, "gate.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	stop()
	if g.delivered != 1 || len(g.atGate) != 1 || g.atGate[0] != scheduler.StateSending {
		t.Fatalf("delivered %d, states at the gate %v; want 1 delivery with the intent (sending) already stored", g.delivered, g.atGate)
	}

	s2 := newSetup(t, now0)
	s2.add(t, "moved.com", "m@example.org", "O", scheduler.ModeRenew, exp)
	g2 := &gateSender{db: s2.db}
	s2.d.Sender, s2.d.Renderer = g2, moveDuringRender{db: s2.db}
	stop = s2.run(t)
	eventually(t, "gate refused", func() bool {
		g2.mu.Lock()
		defer g2.mu.Unlock()
		return len(g2.refused) > 0
	})
	stop()
	st := s2.step(t, "moved.com", exp, scheduler.Reminder1)
	if g2.delivered != 0 || st.State != scheduler.StateSkipped || st.Attempts != 0 {
		t.Errorf("a step moved on before its intent: delivered %d, state %s, attempts %d; want 0, skipped, 0", g2.delivered, st.State, st.Attempts)
	}
	s2.db.View(func(tx *store.Tx) error {
		if _, _, ok, _ := tx.Message(st.ID); ok {
			t.Error("a message was stored for a step that was never sent")
		}
		return nil
	})
}

// TestRecoverInterruptedUpload: an upload cut off by a stop goes back to
// sent, waits UploadGrace, and its next attempt is known to be a retry.
func TestRecoverInterruptedUpload(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "cut.com", "c@example.org", "O", scheduler.ModeRenew, exp)
	id := store.StepID("cut.com", exp, scheduler.Reminder1)
	// What a crash during UploadMessage leaves behind.
	s.db.Update(func(tx *store.Tx) error {
		for _, to := range []scheduler.State{scheduler.StateSending, scheduler.StateSent, scheduler.StateUploading} {
			if _, err := tx.Transition(id, []scheduler.State{scheduler.StateDue, scheduler.StateSending, scheduler.StateSent}, to, "", func(s *store.Step) {
				if to == scheduler.StateUploading {
					s.UploadAttempts++
				}
			}); err != nil {
				return err
			}
		}
		_, err := tx.PutMessage(id, []byte("Message-ID: <x>\r\n\r\nhi\r\n"))
		return err
	})
	s.d.UploadGrace = 30 * time.Second
	if _, err := s.d.Recover(); err != nil {
		t.Fatal(err)
	}
	st := s.step(t, "cut.com", exp, scheduler.Reminder1)
	if st.State != scheduler.StateSent || !st.NextUpload.Equal(now0.Add(30*time.Second)) || st.UploadAttempts != 1 {
		t.Fatalf("after Recover: %s, next upload %s, attempts %d; want sent, in 30s, 1", st.State, st.NextUpload, st.UploadAttempts)
	}
	s.clock.Add(time.Minute)
	stop := s.run(t)
	eventually(t, "proved", func() bool { return s.step(t, "cut.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	stop()
	if got := s.up.attempts; len(got) != 1 || got[0] != 2 {
		t.Errorf("the uploader saw attempts %v, want [2]: a retry, to be checked with Ascio first", got)
	}
}

// A reply lost after the final dot leaves the step in doubt: it is not
// retried on its own (the relay may have it). The resend policy sends it
// again once, after a pause, and holds it if that reply is lost too.
func TestLostReplyIsInDoubt(t *testing.T) {
	for _, resend := range []bool{false, true} {
		t.Run(fmt.Sprintf("resend=%v", resend), func(t *testing.T) {
			s := newSetup(t, now0)
			s.d.ResendInDoubt = resend
			exp := now0.Add(30 * scheduler.Day)
			s.add(t, "lost.com", "lost@example.org", "O1", scheduler.ModeRenew, exp)
			s.send.lost = func(to string, _ int) bool { return to == "lost@example.org" } // every time
			stop := s.run(t)
			defer stop()
			// probe proves the loop ran after the clock moved: a notice
			// planned meanwhile is sent, and lost.com's is not again.
			probe := func(name string) {
				t.Helper()
				s.add(t, name, name+"@example.org", "O2", scheduler.ModeRenew, s.clock.Now().Add(30*scheduler.Day))
				s.clock.Add(3 * time.Hour)
				s.d.Wake()
				eventually(t, name+" sent", func() bool { return s.send.count(name+"@example.org") == 1 })
			}
			wantSends := 1
			if resend {
				eventually(t, "due again by policy", func() bool {
					st := s.step(t, "lost.com", exp, scheduler.Reminder1)
					return st.State == scheduler.StateDue && st.MayHaveGone
				})
				if st := s.step(t, "lost.com", exp, scheduler.Reminder1); !st.SendAt.After(s.clock.Now()) {
					t.Errorf("policy resend at %s, want after a pause", st.SendAt)
				}
				wantSends = 2
			}
			probe("probe1.com")
			probe("probe2.com")
			// Its last outcome recorded (a worker may still be on it).
			eventually(t, "lost.com held in doubt", func() bool {
				return s.step(t, "lost.com", exp, scheduler.Reminder1).State == scheduler.StateInDoubt
			})
			st := s.step(t, "lost.com", exp, scheduler.Reminder1)
			if st.State != scheduler.StateInDoubt || st.Attempts != wantSends || !st.MayHaveGone ||
				!strings.Contains(st.SMTPReply, "connection reset") || !strings.Contains(st.Reason, "outcome unknown") {
				t.Errorf("step %s after %d attempts, reply %q, reason %q; want in_doubt after %d, saying why", st.State, st.Attempts, st.SMTPReply, st.Reason, wantSends)
			}
			if n := s.send.count("lost@example.org"); n != wantSends {
				t.Errorf("delivered %d times, want %d", n, wantSends)
			}
		})
	}
}

// A retry sends the stored bytes, unless the registrant changed since the
// last attempt: then the old bytes are addressed to someone else, and the
// new rendering is sent, stored and proved.
func TestRetryAfterRegistrantChangeRendersAgain(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "moved.com", "old@example.org", "O1", scheduler.ModeRenew, exp)
	s.add(t, "same.com", "same@example.org", "O2", scheduler.ModeRenew, exp)
	s.send.fail = func(to string, n int) error {
		if n == 0 && to != "new@example.org" {
			return errors.New("451 4.3.0 try later")
		}
		return nil
	}
	stop := s.run(t)
	defer stop()
	for _, d := range []string{"moved.com", "same.com"} {
		eventually(t, d+" deferred", func() bool {
			st := s.step(t, d, exp, scheduler.Reminder1)
			return st.Attempts == 1 && st.State == scheduler.StateDue
		})
	}
	first := s.step(t, "same.com", exp, scheduler.Reminder1)
	s.add(t, "moved.com", "new@example.org", "O1", scheduler.ModeRenew, exp)
	s.clock.Add(3 * time.Hour)
	s.d.Wake()
	for _, d := range []string{"moved.com", "same.com"} {
		eventually(t, d+" proved", func() bool { return s.step(t, d, exp, scheduler.Reminder1).State == scheduler.StateProved })
	}
	if n := s.send.count("old@example.org"); n != 0 {
		t.Errorf("old address got %d messages", n)
	}
	s.send.mu.Lock()
	got := s.send.got["new@example.org"]
	same := s.send.got["same@example.org"]
	s.send.mu.Unlock()
	if len(got) != 1 || !strings.Contains(string(got[0]), "To: new@example.org") {
		t.Fatalf("new address got %q, want one message addressed to it", got)
	}
	var stored []byte
	s.db.View(func(tx *store.Tx) error {
		stored, _, _, _ = tx.Message(store.StepID("moved.com", exp, scheduler.Reminder1))
		return nil
	})
	s.up.mu.Lock()
	proved := s.up.got["O1/"+string(scheduler.Reminder1)]
	s.up.mu.Unlock()
	if !bytes.Equal(stored, got[0]) || !bytes.Equal(proved, got[0]) {
		t.Errorf("stored %q and proved %q, want the bytes sent %q", stored, proved, got[0])
	}
	if st := s.step(t, "moved.com", exp, scheduler.Reminder1); st.Recipient != "new@example.org" {
		t.Errorf("step records recipient %q", st.Recipient)
	}
	// Unchanged: the retry sent the very bytes stored at the first attempt.
	if len(same) != 1 || s.step(t, "same.com", exp, scheduler.Reminder1).SHA256 != first.SHA256 {
		t.Errorf("unchanged notice: %d messages, hash %s then %s", len(same), first.SHA256, s.step(t, "same.com", exp, scheduler.Reminder1).SHA256)
	}
}

// Without any Wake: the loop looks again when the next step falls due (its
// timer, from the due index), and on every tick of the safety net.
// The wake at the next due time is TestLoopTimerFollowsClock.
func TestWakesOnTick(t *testing.T) {
	t.Run("tick", func(t *testing.T) {
		s := newSetup(t, now0)
		exp := now0.Add(35*scheduler.Day + time.Hour) // opens in an hour of the test's clock
		s.add(t, "later.com", "later@example.org", "O1", scheduler.ModeRenew, exp)
		tick := make(chan time.Time)
		s.d.idle = make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.d.Run(ctx, tick) }()
		defer func() { cancel(); <-done }()
		<-s.d.idle                 // its first round is done: nothing due, a timer an hour long
		s.clock.Add(2 * time.Hour) // the loop's timer still waits an hour of real time
		select {
		case tick <- time.Now():
		case <-time.After(10 * time.Second):
			t.Fatal("the loop does not take its tick")
		}
		eventually(t, "sent on the tick", func() bool { return s.send.count("later@example.org") == 1 })
	})
}

// Under dispatch.in_doubt = "resend", a step caught by a crash goes out
// again at start-up, with the bytes stored before the crash.
func TestRecoverResendsByPolicy(t *testing.T) {
	s := newSetup(t, now0)
	s.d.ResendInDoubt = true
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "crash.com", "c@example.org", "O", scheduler.ModeRenew, exp)
	id := store.StepID("crash.com", exp, scheduler.Reminder1)
	stored := []byte("Message-ID: <stored>\r\nTo: c@example.org\r\n\r\nrendered before the crash\r\n")
	s.db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateSending, "sending", func(st *store.Step) {
			st.Recipient, st.From, st.EnvelopeFrom = "c@example.org", "renewals@example.net", "bounces@example.net"
		})
		if err == nil {
			_, err = tx.PutMessage(id, stored)
		}
		return err
	})
	// The registrant changes meanwhile: the resend still repeats the
	// message that may have gone, to whom it went.
	s.add(t, "crash.com", "new@example.org", "O", scheduler.ModeRenew, exp)
	inDoubt, err := s.d.Recover()
	if err != nil || len(inDoubt) != 1 || inDoubt[0].State != scheduler.StateDue {
		t.Fatalf("Recover: %+v %v, want the step due again", inDoubt, err)
	}
	stop := s.run(t)
	defer stop()
	eventually(t, "resent and proved", func() bool { return s.step(t, "crash.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	if n := s.send.count("new@example.org"); n != 0 {
		t.Errorf("the new registrant got %d messages from a resend", n)
	}
	s.send.mu.Lock()
	got := s.send.got["c@example.org"]
	s.send.mu.Unlock()
	if len(got) != 1 || !bytes.Equal(got[0], stored) {
		t.Errorf("resent %q, want the stored bytes once", got)
	}
}

// A crash loop does not resend a notice at every start: the policy resends
// a message that may have gone once, then holds it for an operator.
func TestRecoverResendsOnce(t *testing.T) {
	s := newSetup(t, now0)
	s.d.ResendInDoubt = true
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "loop.com", "l@example.org", "O", scheduler.ModeRenew, exp)
	id := store.StepID("loop.com", exp, scheduler.Reminder1)
	crash := func() {
		t.Helper()
		err := s.db.Update(func(tx *store.Tx) error {
			_, err := tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateSending, "sending", nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range []scheduler.State{scheduler.StateDue, scheduler.StateInDoubt} {
		crash()
		got, err := s.d.Recover()
		if err != nil || len(got) != 1 || got[0].State != want {
			t.Fatalf("start %d: %+v %v, want %s", i+1, got, err, want)
		}
	}
}

// langRenderer renders like renderer, in German the first time and in
// French after (as if a reload had added templates in between).
type langRenderer struct{ calls atomic.Int32 }

func (r *langRenderer) Render(s store.Step, c store.Cycle) (Message, error) {
	m, err := renderer{}.Render(s, c)
	m.Language, m.LanguageFallback = "de", "it"
	if r.calls.Add(1) > 1 {
		m.Language, m.LanguageFallback = "fr", ""
	}
	return m, err
}

// The step records the language of the bytes it sends: a retry, which
// sends the stored bytes, keeps the first rendering's language.
func TestStepRecordsTheLanguageSent(t *testing.T) {
	s := newSetup(t, now0)
	exp := now0.Add(30 * scheduler.Day)
	s.add(t, "lang.com", "l@example.org", "O", scheduler.ModeRenew, exp)
	s.d.Renderer = &langRenderer{}
	s.send.fail = func(to string, n int) error {
		if n == 0 {
			return errors.New("451 4.3.0 try later")
		}
		return nil
	}
	stop := s.run(t)
	defer stop()
	eventually(t, "deferred", func() bool {
		st := s.step(t, "lang.com", exp, scheduler.Reminder1)
		return st.Attempts == 1 && st.State == scheduler.StateDue
	})
	if st := s.step(t, "lang.com", exp, scheduler.Reminder1); st.Language != "de" || st.LanguageFallback != "it" {
		t.Errorf("first attempt: language %q fallback %q", st.Language, st.LanguageFallback)
	}
	s.clock.Add(3 * time.Hour)
	s.d.Wake()
	eventually(t, "proved", func() bool { return s.step(t, "lang.com", exp, scheduler.Reminder1).State == scheduler.StateProved })
	if st := s.step(t, "lang.com", exp, scheduler.Reminder1); st.Language != "de" || st.LanguageFallback != "it" {
		t.Errorf("after the retry of the stored bytes: language %q fallback %q, want de and it", st.Language, st.LanguageFallback)
	}
}
