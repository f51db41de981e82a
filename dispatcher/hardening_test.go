package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"

	bolt "go.etcd.io/bbolt"
)

// These tests run the dispatcher inside a synctest bubble: its loop's
// timers and the clock (Now = time.Now) are the bubble's fake ones, so
// hours of backoff pass at once and synctest.Wait says when the loop has
// nothing left to do. A loop that spins never lets the bubble rest; each
// test caps the work it allows and stops the loop when it is exceeded, so
// that a spin fails the test instead of hanging it.

// counter counts log records at Error level and at any level whose
// message contains a word, and calls over once past a limit.
type counter struct {
	mu     sync.Mutex
	errors int
	msgs   []string
	limit  int
	over   func()
}

func (c *counter) Enabled(context.Context, slog.Level) bool { return true }
func (c *counter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *counter) WithGroup(string) slog.Handler            { return c }
func (c *counter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Level >= slog.LevelError {
		c.errors++
		if c.limit > 0 && c.errors > c.limit && c.over != nil {
			c.over()
		}
	}
	c.msgs = append(c.msgs, r.Message)
	return nil
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.errors
}

// bubble is a dispatcher on a real store, inside a synctest bubble.
type bubble struct {
	*setup
	log    *counter
	full   atomic.Bool // the injected store write failure is on
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	running   atomic.Bool
	closeOnce sync.Once
}

// errNoSpace is what a full disk answers a write.
var errNoSpace = &fsError{syscall.ENOSPC}

type fsError struct{ errno syscall.Errno }

func (e *fsError) Error() string { return "write errpd.db: " + e.errno.Error() }
func (e *fsError) Unwrap() error { return e.errno }

// newBubble must be called inside synctest.Test. dir holds the store (a
// temp dir, or a small tmpfs).
func newBubble(t *testing.T, dir string, limit int) *bubble {
	b := &bubble{log: &counter{limit: limit}, done: make(chan struct{})}
	db, err := store.Open(filepath.Join(dir, "errpd.db"), store.Options{Now: time.Now, WriteFault: func() error {
		if b.full.Load() {
			return errNoSpace
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	b.setup = &setup{db: db, send: &sender{}, up: &uploader{}}
	b.d = &Dispatcher{DB: db, Renderer: renderer{}, Sender: b.send, Uploader: b.up, Now: time.Now, Workers: 2,
		Retry: Retry{Base: time.Minute, Max: time.Hour}, Log: slog.New(b.log)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.log.over = b.cancel // a spin ends the loop, and the test fails on its count
	return b
}

func (b *bubble) start() {
	b.running.Store(true)
	go func() {
		b.d.Run(b.ctx, nil)
		close(b.done)
	}()
}

// halt ends the loop and waits for it.
func (b *bubble) halt() {
	b.cancel()
	select {
	case <-b.done:
	case <-b.started():
	}
}

// started is closed when the loop never started (nothing to wait for).
func (b *bubble) started() <-chan struct{} {
	if b.running.Load() {
		return nil
	}
	c := make(chan struct{})
	close(c)
	return c
}

// stop ends the loop and closes the store (before the bubble ends).
func (b *bubble) stop() {
	b.halt()
	b.closeOnce.Do(func() { b.db.Close() })
}

// spun fails the test if the loop was stopped for going past its limit.
func (b *bubble) spun(t *testing.T) {
	t.Helper()
	if b.ctx.Err() != nil {
		b.log.mu.Lock()
		seen := map[string]int{}
		for _, m := range b.log.msgs {
			seen[m]++
		}
		b.log.mu.Unlock()
		t.Fatalf("the dispatcher spun: %d errors logged before it was stopped; messages: %v", b.log.count(), seen)
	}
}

// A step whose stored message is corrupt is tried on the retry schedule,
// once per attempt, and failed with the reason after MaxPrepareAttempts.
// Before: the loop re-handed it at once, logging "reading step" about
// 12,000 times a second on this machine (the issue saw 18,000-24,000).
func TestCorruptMessageIsRetriedThenFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, t.TempDir(), 50)
		defer b.stop()
		exp := time.Now().Add(30 * scheduler.Day)
		b.add(t, "corrupt.com", "c@example.org", "O", scheduler.ModeRenew, exp)
		id := store.StepID("corrupt.com", exp, scheduler.Reminder1)
		// A message record that does not decode, as a damaged page would leave.
		if err := b.db.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("messages")).Put(store.Key(id), []byte("{not json")) }); err != nil {
			t.Fatal(err)
		}
		b.start()
		synctest.Wait()
		b.spun(t)
		st := b.step(t, "corrupt.com", exp, scheduler.Reminder1)
		if st.State != scheduler.StateDue || st.PrepareFailures != 1 || !st.SendAt.After(time.Now()) {
			t.Fatalf("after one failed preparation: %s, %d failures, send_at %s; want due, 1, later", st.State, st.PrepareFailures, st.SendAt)
		}
		if n := b.log.count(); n != 1 {
			t.Errorf("%d errors logged for one attempt, want 1", n)
		}
		time.Sleep(2 * time.Hour) // the whole backoff, on the bubble's clock
		synctest.Wait()
		b.spun(t)
		st = b.step(t, "corrupt.com", exp, scheduler.Reminder1)
		if st.State != scheduler.StateFailed || st.PrepareFailures != 5 || !strings.Contains(st.Reason, "does not decode") && !strings.Contains(st.Reason, "decoding") {
			t.Errorf("after the backoff: %s, %d failures, reason %q; want failed after 5, naming the decode error", st.State, st.PrepareFailures, st.Reason)
		}
		if n := b.log.count(); n != 5 {
			t.Errorf("%d errors logged, want 5 (one per attempt, the last failing the step)", n)
		}
		if n := b.send.count("c@example.org"); n != 0 {
			t.Errorf("a step that cannot be prepared was sent %d times", n)
		}
	})
}

// brokenRenderer fails until fixed, as a broken template does until SIGHUP.
type brokenRenderer struct {
	fixed atomic.Bool
	calls atomic.Int64
}

func (r *brokenRenderer) Render(s store.Step, c store.Cycle) (Message, error) {
	r.calls.Add(1)
	if !r.fixed.Load() {
		return Message{}, errors.New(`template: reminder1: executing "body": map has no entry for key "Brand"`)
	}
	return renderer{}.Render(s, c)
}

// A render error is not failed at once: the step is tried again on the
// retry schedule, and a fixed template lets it go out. Before: failed at
// the first error.
func TestRenderErrorIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, t.TempDir(), 50)
		defer b.stop()
		r := &brokenRenderer{}
		b.d.Renderer = r
		exp := time.Now().Add(30 * scheduler.Day)
		b.add(t, "tmpl.com", "t@example.org", "O", scheduler.ModeRenew, exp)
		b.start()
		synctest.Wait()
		b.spun(t)
		st := b.step(t, "tmpl.com", exp, scheduler.Reminder1)
		if st.State != scheduler.StateDue || st.PrepareFailures != 1 || !strings.Contains(st.Reason, "render") {
			t.Fatalf("after a render error: %s, %d failures, %q; want due for a retry, naming the render error", st.State, st.PrepareFailures, st.Reason)
		}
		if n := r.calls.Load(); n != 1 {
			t.Errorf("rendered %d times before the retry, want 1", n)
		}
		r.fixed.Store(true) // SIGHUP with a fixed template
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if st := b.step(t, "tmpl.com", exp, scheduler.Reminder1); st.State != scheduler.StateProved || st.PrepareFailures != 0 {
			t.Errorf("after the fix: %s with %d failures, want proved and the count reset", st.State, st.PrepareFailures)
		}
	})
}

// While every store write fails (a full disk), the dispatcher pauses with
// backoff and begins no SMTP transaction (beyond the ones that found the
// failure), /healthz says why, and once the disk has room again every
// notice goes out once, none in doubt.
// Before: 36,761 transactions begun and aborted in 20 s.
func TestStoreWriteFailurePauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, t.TempDir(), 200)
		defer b.stop()
		exp := time.Now().Add(30 * scheduler.Day)
		const n = 20
		for i := range n {
			b.add(t, domainN(i), "r@example.org", "O", scheduler.ModeRenew, exp)
		}
		b.full.Store(true)
		b.start()
		time.Sleep(20 * time.Minute)
		synctest.Wait()
		b.spun(t)
		begun := b.begun()
		if begun > b.d.Workers {
			t.Errorf("%d SMTP transactions begun while the store failed, want at most %d (one per worker, finding the failure)", begun, b.d.Workers)
		}
		// Backoff: 5 s doubling to 5 min is about ten pauses in 20 min,
		// each logged once.
		if n := b.log.count(); n > 15 {
			t.Errorf("%d errors logged in 20 min of a failing store, want one per pause (about 10)", n)
		}
		h, code := health(t, b.d)
		if code != 503 || !strings.Contains(h.Store, "no space left on device") {
			t.Errorf("/healthz %d %+v, want 503 naming the full disk", code, h)
		}
		b.full.Store(false)
		time.Sleep(10 * time.Minute) // past the longest pause so far
		synctest.Wait()
		b.spun(t)
		if got := b.send.count("r@example.org"); got != n {
			t.Errorf("%d delivered after the disk had room, want %d", got, n)
		}
		if h, code := health(t, b.d); code != 200 {
			t.Errorf("/healthz %d %+v once the store writes again, want 200", code, h)
		}
		b.halt()
		if inDoubt, err := b.d.Recover(); err != nil || len(inDoubt) != 0 {
			t.Errorf("Recover: %d in doubt (%v), want none", len(inDoubt), err)
		}
	})
}

// A send whose outcome cannot be written (the disk filled during the
// transaction) is not left sending, which a restart calls in doubt: the
// outcome is kept and written once the store takes writes again.
// Before: the outcome was lost, the step stayed sending, and Recover put it
// in doubt although the relay had refused it (451 to the final dot).
func TestOutcomeKeptUntilStoreWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, t.TempDir(), 200)
		defer b.stop()
		exp := time.Now().Add(30 * scheduler.Day)
		b.add(t, "late.com", "l@example.org", "O", scheduler.ModeRenew, exp)
		refuse := &refuseAtDot{full: &b.full}
		b.d.Sender = refuse
		b.start()
		synctest.Wait()
		b.spun(t)
		if st := b.step(t, "late.com", exp, scheduler.Reminder1); st.State != scheduler.StateSending {
			t.Fatalf("state %s while the store fails, want sending (its outcome unwritten)", st.State)
		}
		b.full.Store(false)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		b.halt()
		if inDoubt, err := b.d.Recover(); err != nil || len(inDoubt) != 0 {
			t.Errorf("Recover: %d in doubt (%v), want none: nothing was handed over", len(inDoubt), err)
		}
		st := b.step(t, "late.com", exp, scheduler.Reminder1)
		if st.State == scheduler.StateInDoubt || st.MayHaveGone || st.SMTPReply == "" {
			t.Errorf("step %s (may have gone %v, reply %q), want it deferred with the relay's reply, never in doubt", st.State, st.MayHaveGone, st.SMTPReply)
		}
	})
}

// /healthz: 200 with every part ok on a running dispatcher; 503 when the
// loop is not running, and when the relay fails temporarily again and again.
func TestHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, t.TempDir(), 200)
		defer b.stop()
		if h, code := health(t, b.d); code != 503 || h.Dispatcher != "not running" {
			t.Errorf("before Run: %d %+v, want 503, not running", code, h)
		}
		exp := time.Now().Add(30 * scheduler.Day)
		for i := range 3 {
			b.add(t, domainN(i), "r@example.org", "O", scheduler.ModeRenew, exp)
		}
		b.send.fail = func(string, int) error { return errors.New("dial tcp 192.0.2.1:25: connect: connection refused") }
		b.start()
		synctest.Wait()
		h, code := health(t, b.d)
		if code != 503 || !strings.Contains(h.Relay, "connection refused") || h.Store != "ok" || h.Dispatcher != "ok" {
			t.Errorf("relay down: %d %+v, want 503 naming the relay only", code, h)
		}
		b.send.mu.Lock()
		b.send.fail = nil
		b.send.mu.Unlock()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if h, code := health(t, b.d); code != 200 || !h.OK() {
			t.Errorf("relay back: %d %+v, want 200", code, h)
		}
	})
}

// The loop's timers are the bubble's: a step whose window opens in an hour
// is sent when the hour has passed on the fake clock, not before, and the
// test waits no real hour. (It replaces a test that slept three real
// seconds for a window to open.)
func TestLoopTimerFollowsClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, t.TempDir(), 50)
		defer b.stop()
		exp := time.Now().Add(35*scheduler.Day + time.Hour)
		b.add(t, "soon.com", "soon@example.org", "O", scheduler.ModeRenew, exp)
		b.start()
		time.Sleep(59 * time.Minute)
		synctest.Wait()
		if n := b.send.count("soon@example.org"); n != 0 {
			t.Fatalf("sent %d times before its window opened", n)
		}
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		st := b.step(t, "soon.com", exp, scheduler.Reminder1)
		if b.send.count("soon@example.org") != 1 || st.SentAt.Before(st.Opens) || st.SentAt.After(st.Opens.Add(time.Minute)) {
			t.Errorf("sent %d times at %s; window opened at %s", b.send.count("soon@example.org"), st.SentAt, st.Opens)
		}
	})
}

func domainN(i int) string { return "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".com" }

// begun counts the SMTP transactions the sender was asked to begin.
func (b *bubble) begun() int {
	b.send.mu.Lock()
	defer b.send.mu.Unlock()
	n := 0
	for k, v := range b.send.got {
		if strings.HasSuffix(k, "#tries") {
			n += len(v)
		}
	}
	return n
}

func health(t *testing.T, d *Dispatcher) (Health, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	d.HealthHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	var h Health
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatalf("/healthz body %q: %v", rec.Body, err)
	}
	return h, rec.Code
}

// refuseAtDot lets the first message through the gate (its intent is
// durable), fills the disk, and answers the dot with 451: the relay did
// not take it. Later sends go through.
type refuseAtDot struct {
	full *atomic.Bool
	n    atomic.Int64
}

func (r *refuseAtDot) Send(_ context.Context, _ string, _ []string, _ []byte, gate func() error) (string, error) {
	if err := gate(); err != nil {
		return "", err
	}
	if r.n.Add(1) == 1 {
		r.full.Store(true)
		return "", errors.New("451 4.3.0 temporary local problem")
	}
	return "250 2.0.0 queued", nil
}
