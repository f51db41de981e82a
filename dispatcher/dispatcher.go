// Package dispatcher is errpd's main loop. It wakes when a step falls due
// (from the store's due index), when new work arrives, and on a periodic
// safety tick; it sends each due notice exactly once and uploads its proof.
//
// Exactly once: sending and recording cannot be one atomic act, so each
// message's intent (state sending, with its bytes and Message-ID) is
// committed before the SMTP transaction and the reply after it. A step found
// in sending at start-up did not finish: it becomes in_doubt and is never
// resent silently. Each worker has at most one message in that window.
package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Message is a rendered notice: its exact bytes and its envelope.
type Message struct {
	Raw          []byte
	MessageID    string
	From         string // header From address
	To           string // the registrant's address
	EnvelopeFrom string // MAIL FROM
}

// Renderer renders a step's notice once.
type Renderer interface {
	Render(s store.Step, c store.Cycle) (Message, error)
}

// Sender hands exact bytes to the relay (or the outbox) and returns its reply.
type Sender interface {
	Send(ctx context.Context, envelopeFrom string, to []string, raw []byte) (reply string, err error)
}

// Uploader uploads a sent message to Ascio as proof and returns Ascio's
// answer for the record.
type Uploader interface {
	Upload(ctx context.Context, orderID string, s store.Step, raw []byte) (result string, err error)
}

// PermanentError marks a failure that retrying cannot fix (an SMTP 5xx
// reply, Ascio's 401). Every other error is taken as temporary.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as permanent.
func Permanent(err error) error { return &PermanentError{Err: err} }

// IsPermanent reports whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// ErrNoUpload is returned by an Uploader for a notice Ascio has no message
// type for (the suspension notice): the stored message is its proof.
var ErrNoUpload = errors.New("Ascio has no message type for this notice; the stored message is the proof")

// Dispatcher runs the loop. Set the fields, then call Run.
type Dispatcher struct {
	DB       *store.DB
	Renderer Renderer
	Sender   Sender
	Uploader Uploader // nil: uploads wait until Ascio is configured
	Now      func() time.Time
	Log      *slog.Logger
	Metrics  *Metrics // nil: no metrics
	Workers  int      // parallel sends; each has at most one message in doubt
	// UploadWorkers are parallel proof uploads (default 4): an upload is a
	// slow SOAP call, and a crash during one costs only a second upload.
	UploadWorkers int
	Retry         Retry
	// Resend in-doubt steps at start-up instead of holding them for an
	// operator. Off by default: a duplicate confuses a registrant.
	ResendInDoubt bool
	// SendTimeout bounds one SMTP transaction, which is allowed to finish
	// after shutdown begins.
	SendTimeout time.Duration

	wake      chan struct{}
	lastSweep time.Time // only the loop's goroutine touches it
	mu        sync.Mutex
	inflight  map[string]bool
}

// Wake makes the loop look for work now (new steps were planned, an order
// id arrived).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) init() {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Workers < 1 {
		d.Workers = 1
	}
	if d.UploadWorkers < 1 {
		d.UploadWorkers = 4
	}
	if d.Retry == (Retry{}) {
		d.Retry = DefaultRetry
	}
	if d.SendTimeout <= 0 {
		d.SendTimeout = 2 * time.Minute
	}
	d.wake = make(chan struct{}, 1)
	d.inflight = map[string]bool{}
}

// Recover deals with what a crash left behind: a step found sending may or
// may not have been delivered, so it becomes in_doubt (or, by policy, due
// again); a step found uploading goes back to sent and is uploaded again.
func (d *Dispatcher) Recover() (inDoubt []store.Step, err error) {
	if d.wake == nil {
		d.init()
	}
	err = d.DB.Update(func(tx *store.Tx) error {
		inDoubt = nil
		active, err := tx.Active()
		if err != nil {
			return err
		}
		for _, s := range active {
			switch s.State {
			case scheduler.StateSending:
				to, why := scheduler.StateInDoubt, "errpd stopped during the SMTP transaction: it may or may not have been delivered"
				if d.ResendInDoubt {
					to, why = scheduler.StateDue, "resent by policy after errpd stopped during the SMTP transaction"
				}
				s, err = tx.Transition(s.ID, []scheduler.State{scheduler.StateSending}, to, why, func(s *store.Step) {
					s.Reason, s.SendAt = why, tx.Now()
				})
				inDoubt = append(inDoubt, s)
			case scheduler.StateUploading:
				_, err = tx.Transition(s.ID, []scheduler.State{scheduler.StateUploading}, scheduler.StateSent, "upload interrupted; retrying", func(s *store.Step) {
					s.NextUpload = tx.Now()
				})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	return inDoubt, err
}

// Run loops until ctx ends. The SMTP transactions in flight then finish and
// are recorded before Run returns.
func (d *Dispatcher) Run(ctx context.Context, tick <-chan time.Time) error {
	if d.wake == nil {
		d.init()
	}
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range d.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.sendWorker(ctx, jobs)
		}()
	}
	uploads := make(chan string)
	if d.Uploader != nil {
		for range d.UploadWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range uploads {
					d.upload(ctx, id)
					d.done(id)
					d.Wake() // uploads are handed only to idle workers: ask for more
				}
			}()
		}
	}
	defer func() {
		close(jobs)
		close(uploads)
		wg.Wait()
	}()

	for {
		next, err := d.round(ctx, jobs, uploads)
		if err != nil {
			d.Log.Error("dispatch round failed", "err", err)
			next = d.Now().Add(time.Minute)
		}
		timer := time.NewTimer(max(next.Sub(d.Now()), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-d.wake:
		case <-tick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// round hands every due step and every due upload to the workers and
// returns when the loop should next look.
func (d *Dispatcher) round(ctx context.Context, jobs, uploads chan<- string) (time.Time, error) {
	now := d.Now()
	missed, err := d.sweep(now)
	if err != nil {
		return time.Time{}, err
	}
	for _, s := range missed {
		d.Log.Warn("notice missed its window", "step", s.ID, "deadline", s.Deadline)
		d.Metrics.missed()
	}
	// Ids only: a round runs often (after every batch, on every wake-up)
	// and must not decode steps it will not hand out.
	var due, ups []string
	var nextDue, nextUp time.Time
	var hasDue, hasUp bool
	err = d.DB.View(func(tx *store.Tx) error {
		due = tx.DueIDs(now, 1000)
		if d.Uploader != nil {
			ups = tx.UploadIDs(now, 1000)
		}
		nextDue, hasDue = tx.NextDue()
		nextUp, hasUp = tx.NextUpload()
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if d.Metrics != nil {
		lag := 0.0
		if hasDue && nextDue.Before(now) {
			lag = now.Sub(nextDue).Seconds()
		}
		d.Metrics.OldestDueLag.Set(lag)
	}
	handed := 0
	hand := func(ch chan<- string, id string) bool {
		if !d.claim(id) {
			return true
		}
		select {
		case ch <- id:
			handed++
			return true
		case <-ctx.Done():
			d.done(id)
			return false
		}
	}
	for _, id := range due {
		if !hand(jobs, id) {
			return now, nil
		}
	}
	// Uploads are slow SOAP calls: hand out only what idle upload workers
	// take now, so that a backlog of proofs never holds up sending.
	uploadsBusy := false
uploadLoop:
	for _, id := range ups {
		if !d.claim(id) {
			continue
		}
		select {
		case uploads <- id:
			handed++
		default:
			d.done(id)
			uploadsBusy = true
			break uploadLoop
		}
	}
	// Look again at the earliest of: the next send time, the next upload,
	// and a minute from now (the index may have moved under us).
	next := now.Add(time.Minute)
	if hasDue && nextDue.Before(next) && handed == 0 {
		next = nextDue
	}
	if d.Uploader != nil && hasUp && nextUp.Before(next) && handed == 0 {
		next = nextUp
	}
	if handed > 0 {
		// Workers wake us as they finish; more may be due behind them.
		next = now.Add(time.Second)
	}
	if uploadsBusy && next.Before(now.Add(100*time.Millisecond)) {
		next = now.Add(100 * time.Millisecond) // look again soon, but do not spin
	}
	return next, nil
}

// sweep marks missed the waiting steps whose deadline passed (and due the
// planned ones whose window opened), at most once a second: it reads steps,
// and a write transaction costs an fsync, so it first looks whether there
// is anything to do.
func (d *Dispatcher) sweep(now time.Time) ([]store.Step, error) {
	if !d.lastSweep.IsZero() && now.Sub(d.lastSweep) < time.Second && now.After(d.lastSweep) {
		return nil, nil
	}
	d.lastSweep = now
	need := false
	err := d.DB.View(func(tx *store.Tx) error {
		due, err := tx.Due(now, 1000)
		for _, s := range due {
			if !now.Before(s.Deadline) || s.State == scheduler.StatePlanned {
				need = true
			}
		}
		return err
	})
	if err != nil || !need {
		return nil, err
	}
	var missed []store.Step
	err = d.DB.Update(func(tx *store.Tx) error {
		var err error
		missed, err = tx.Sweep()
		return err
	})
	return missed, err
}

// claim marks a step as handed to a worker, so that a round does not hand it
// out twice while the store still lists it. The store's conditional
// transitions are the real guard; this only saves work.
func (d *Dispatcher) claim(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[id] {
		return false
	}
	d.inflight[id] = true
	return true
}

// done releases a step; when the last handed-out step is done the loop
// looks for more at once (one round per batch, not per message).
func (d *Dispatcher) done(id string) {
	d.mu.Lock()
	delete(d.inflight, id)
	idle := len(d.inflight) == 0
	d.mu.Unlock()
	if idle {
		d.Wake()
	}
}

var (
	waiting   = []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}
	sending   = []scheduler.State{scheduler.StateSending}
	uploading = []scheduler.State{scheduler.StateUploading}
)

// outcome is a finished action's result, waiting to be recorded.
type outcome struct {
	id     string
	from   []scheduler.State
	to     scheduler.State
	why    string
	change func(*store.Step)
}

func (o *outcome) apply(tx *store.Tx) error {
	_, err := tx.Transition(o.id, o.from, o.to, o.why, func(s *store.Step) {
		s.Reason = o.why
		if o.change != nil {
			o.change(s)
		}
	})
	return err
}

// sendWorker sends the steps it is handed, one SMTP transaction at a time.
// The reply of one message is committed in the same transaction as the
// intent of the next, so a busy worker pays one fsync per message; when no
// next message waits, the reply is committed at once.
func (d *Dispatcher) sendWorker(ctx context.Context, jobs <-chan string) {
	var pending *outcome
	for {
		var id string
		var ok bool
		if pending != nil {
			select {
			case id, ok = <-jobs:
			default:
				d.record(pending)
				pending = nil
				id, ok = <-jobs
			}
		} else {
			id, ok = <-jobs
		}
		if !ok {
			if pending != nil {
				d.record(pending)
			}
			return
		}
		pending = d.send(ctx, id, pending)
		d.done(id)
	}
}

// record commits one outcome on its own.
func (d *Dispatcher) record(o *outcome) {
	if err := d.DB.Batch(o.apply); err != nil {
		d.Log.Error("recording outcome", "step", o.id, "to", o.to, "err", err)
	}
	d.Wake() // a sent step now waits for its upload, a deferred one for its retry
}

// send takes one due step through its SMTP transaction, committing prev
// with its intent, and returns its own outcome to be recorded.
func (d *Dispatcher) send(ctx context.Context, id string, prev *outcome) *outcome {
	log := d.Log.With("step", id)
	// Read and render outside the write transaction; the conditional
	// transition below decides whether this worker may go on.
	var s store.Step
	var c store.Cycle
	var raw []byte
	var stored store.Message
	err := d.DB.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		if s, ok, err = tx.Step(id); err != nil || !ok {
			return errors.Join(err, errors.New("step vanished"))
		}
		if c, _, err = tx.Cycle(s.Cycle); err != nil {
			return err
		}
		raw, stored, _, err = tx.Message(id)
		return err
	})
	now := d.Now().UTC()
	if err != nil || !s.State.Waiting() || ctx.Err() != nil || !now.Before(s.Deadline) {
		if err != nil {
			log.Error("reading step", "err", err)
		}
		return prev // a closed window is marked missed by the next sweep
	}
	msg, err := d.Renderer.Render(s, c)
	if err != nil {
		if prev != nil {
			d.record(prev)
		}
		return &outcome{id: id, from: waiting, to: scheduler.StateFailed, why: "render: " + err.Error()}
	}
	if raw != nil {
		// A retry sends the bytes rendered the first time: the message is
		// rendered once, and what is proved is what was sent.
		msg.Raw = raw
	}
	claimed := false
	err = d.DB.Batch(func(tx *store.Tx) error {
		claimed = false
		if prev != nil {
			if err := prev.apply(tx); err != nil {
				return err
			}
		}
		if raw == nil {
			m, err := tx.PutMessage(id, msg.Raw)
			if err != nil {
				return err
			}
			stored = m
		}
		_, err := tx.Transition(id, waiting, scheduler.StateSending, "sending", func(s *store.Step) {
			s.Attempts++
			s.MessageID, s.SHA256 = msg.MessageID, stored.SHA256
			s.From, s.Recipient, s.EnvelopeFrom = msg.From, msg.To, msg.EnvelopeFrom
			s.OrderID = c.OrderID
		})
		if errors.Is(err, store.ErrConflict) {
			return nil // another actor moved it (closed cycle, operator); prev still commits
		}
		claimed = err == nil
		return err
	})
	if prev != nil {
		d.Wake()
	}
	if err != nil {
		log.Error("recording intent", "err", err)
		if prev != nil {
			d.record(prev) // it was rolled back with the intent
		}
		return nil
	}
	if !claimed {
		return nil
	}

	// The transaction in flight finishes even if shutdown began: SIGTERM
	// must not leave a message in doubt.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.SendTimeout)
	reply, err := d.Sender.Send(sctx, msg.EnvelopeFrom, []string{msg.To}, msg.Raw)
	cancel()
	now = d.Now().UTC()
	switch {
	case err == nil:
		d.Metrics.sent("ok")
		log.Info("notice sent", "message_id", msg.MessageID, "reply", reply)
		return &outcome{id: id, from: sending, to: scheduler.StateSent, why: "sent", change: func(s *store.Step) {
			s.SentAt, s.SMTPReply, s.Reason, s.NextUpload = now, reply, "", now
		}}
	case IsPermanent(err):
		d.Metrics.sent("permanent")
		log.Warn("notice refused", "err", err)
		return &outcome{id: id, from: sending, to: scheduler.StateFailed, why: "smtp: " + err.Error(), change: func(s *store.Step) {
			s.SMTPReply = err.Error()
		}}
	default:
		d.Metrics.sent("temporary")
		next := d.Retry.Next(s.Attempts+1, now, s.Deadline, rand.Float64())
		if next.IsZero() {
			next = s.Deadline // the sweep marks it missed, with the last error
		}
		log.Warn("notice deferred", "err", err, "retry_at", next)
		return &outcome{id: id, from: sending, to: scheduler.StateDue, why: "temporary failure: " + err.Error(), change: func(s *store.Step) {
			s.SendAt, s.SMTPReply = next, err.Error()
		}}
	}
}

// during the call leaves the step sent, and it is uploaded again.
func (d *Dispatcher) upload(ctx context.Context, id string) {
	log := d.Log.With("step", id)
	if ctx.Err() != nil {
		return
	}
	var s store.Step
	var orderID string
	var raw []byte
	err := d.DB.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		if s, ok, err = tx.Step(id); err != nil || !ok || s.State != scheduler.StateSent {
			return errors.Join(err, store.ErrConflict)
		}
		c, _, err := tx.Cycle(s.Cycle)
		if err != nil {
			return err
		}
		orderID = c.OrderID
		raw, _, _, err = tx.Message(id)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return
	}
	if err != nil {
		log.Error("preparing upload", "err", err)
		return
	}
	if orderID == "" && s.Notice != scheduler.Suspension {
		// Sent before Ascio told us the order; the order's arrival resets
		// NextUpload. Look again in an hour all the same, unless the order
		// arrived while we looked.
		err := d.DB.Batch(func(tx *store.Tx) error {
			c, _, err := tx.Cycle(s.Cycle)
			if err != nil || c.OrderID != "" {
				return err
			}
			_, err = tx.Transition(id, []scheduler.State{scheduler.StateSent}, scheduler.StateSent, "", func(s *store.Step) {
				s.NextUpload = tx.Now().Add(time.Hour)
			})
			return err
		})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			log.Error("postponing upload", "err", err)
		}
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.SendTimeout)
	result, err := d.Uploader.Upload(uctx, orderID, s, raw)
	cancel()
	now := d.Now().UTC()
	var o *outcome
	switch {
	case err == nil || errors.Is(err, ErrNoUpload):
		if err != nil {
			result = err.Error()
		}
		d.Metrics.uploaded("ok")
		log.Info("proof uploaded", "order_id", orderID, "result", result)
		o = &outcome{id: id, from: uploading, to: scheduler.StateProved, why: "proved", change: func(s *store.Step) {
			s.UploadedAt, s.AscioResult, s.Reason = now, result, ""
		}}
	case IsPermanent(err):
		d.Metrics.uploaded("permanent")
		log.Warn("proof refused", "order_id", orderID, "err", err)
		o = &outcome{id: id, from: uploading, to: scheduler.StateFailed, why: "upload: " + err.Error(), change: func(s *store.Step) {
			s.AscioResult = err.Error()
		}}
	default:
		d.Metrics.uploaded("temporary")
		// Uploads go on past the deadline: a late proof still beats none,
		// and the report shows it was late.
		next := d.Retry.Next(s.UploadAttempts+1, now, time.Time{}, rand.Float64())
		log.Warn("proof upload deferred", "err", err, "retry_at", next)
		o = &outcome{id: id, from: uploading, to: scheduler.StateSent, why: "upload temporary failure: " + err.Error(), change: func(s *store.Step) {
			s.NextUpload, s.AscioResult = next, err.Error()
		}}
	}
	err = d.DB.Batch(func(tx *store.Tx) error {
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateSent}, scheduler.StateUploading, "uploading", func(s *store.Step) {
			s.UploadAttempts++
			s.OrderID = orderID
		})
		if err != nil {
			return err
		}
		return o.apply(tx)
	})
	if err != nil {
		log.Error("recording upload", "err", err)
	}
}

var errNoOrder = fmt.Errorf("no Ascio order id yet")
