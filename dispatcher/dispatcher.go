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
	// Language is the notice's language; LanguageFallback the registrant's
	// when the notice could not be written in it. Both go on the step.
	Language, LanguageFallback string
}

// Renderer renders a step's notice once.
type Renderer interface {
	Render(s store.Step, c store.Cycle) (Message, error)
}

// Sender hands exact bytes to the relay (or the outbox) and returns its
// reply. gate is the point of no return: the sender calls it once all but
// the final hand-over is done (for SMTP, everything but the dot ending
// DATA) and hands the message over only if it returns nil.
type Sender interface {
	Send(ctx context.Context, envelopeFrom string, to []string, raw []byte, gate func() error) (reply string, err error)
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

// InDoubtError marks a send whose outcome is unknown: the relay may have
// taken the message (the connection broke after the final dot). The step
// is not retried on its own, as a retry could deliver it twice.
type InDoubtError struct{ Err error }

func (e *InDoubtError) Error() string { return e.Err.Error() }
func (e *InDoubtError) Unwrap() error { return e.Err }

// InDoubt wraps err as a send of unknown outcome.
func InDoubt(err error) error { return &InDoubtError{Err: err} }

// IsInDoubt reports whether err, or an error it wraps, leaves open whether
// the message went out.
func IsInDoubt(err error) bool {
	var d *InDoubtError
	return errors.As(err, &d)
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
	// UploadGrace delays the retry of an upload cut off by a stop (set it
	// to Ascio's timeout), so that a request still being worked on at
	// Ascio has finished when the retry asks Ascio whether it arrived.
	UploadGrace time.Duration

	wake        chan struct{} // the send loop's
	wakeUploads chan struct{}
	idle        chan struct{} // tests: the send loop signals here before it waits
	lastSweep   time.Time     // only the loop's goroutine touches it
	mu          sync.Mutex
	inflight    map[string]chan struct{} // step id -> the wake channel of the loop that handed it out
	busy        map[chan struct{}]int    // steps each loop has in its workers' hands
}

// Wake makes the loops look for work now (new steps were planned, an order
// id arrived, a step was sent).
func (d *Dispatcher) Wake() {
	for _, ch := range []chan struct{}{d.wake, d.wakeUploads} {
		select {
		case ch <- struct{}{}:
		default:
		}
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
	d.wakeUploads = make(chan struct{}, 1)
	d.inflight = map[string]chan struct{}{}
	d.busy = map[chan struct{}]int{}
}

// Recover deals with what a crash left behind: a step found sending may or
// may not have been delivered, so it becomes in_doubt (or, by policy, due
// again); a step found uploading goes back to sent, and its next attempt
// first asks Ascio whether the cut-off one arrived.
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
				if d.ResendInDoubt && !s.MayHaveGone { // once: a crash loop must not resend it each time
					to, why = scheduler.StateDue, "resent by policy after errpd stopped during the SMTP transaction"
				}
				s, err = tx.Transition(s.ID, []scheduler.State{scheduler.StateSending}, to, why, func(s *store.Step) {
					s.Reason, s.SendAt, s.MayHaveGone = why, tx.Now(), true
				})
				inDoubt = append(inDoubt, s)
			case scheduler.StateUploading:
				_, err = tx.Transition(s.ID, []scheduler.State{scheduler.StateUploading}, scheduler.StateSent, "upload interrupted; Ascio is asked whether it arrived before uploading again", func(s *store.Step) {
					s.NextUpload = tx.Now().Add(d.UploadGrace)
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
//
// Sending and uploading are two loops with their own workers, so that a
// backlog of one never holds up the other: a catch-up of thousands of
// notices still proves each one shortly after it is sent, and a slow Ascio
// never delays a notice.
func (d *Dispatcher) Run(ctx context.Context, tick <-chan time.Time) error {
	if d.wake == nil {
		d.init()
	}
	var wg sync.WaitGroup
	jobs := make(chan string)
	for range d.Workers {
		wg.Go(func() { d.sendWorker(ctx, jobs) })
	}
	uploads := make(chan string)
	if d.Uploader != nil {
		for range d.UploadWorkers {
			wg.Go(func() {
				for id := range uploads {
					d.upload(ctx, id)
					d.done(id)
				}
			})
		}
		wg.Go(func() {
			d.loop(ctx, d.wakeUploads, nil, func(now time.Time) (time.Time, error) {
				return d.uploadRound(ctx, now, uploads)
			})
			close(uploads)
		})
	}
	d.loop(ctx, d.wake, tick, func(now time.Time) (time.Time, error) {
		return d.sendRound(ctx, now, jobs)
	})
	close(jobs)
	wg.Wait()
	return nil
}

// loop runs round until ctx ends, each time the round asks to, when woken,
// and on every tick (the cron safety net).
func (d *Dispatcher) loop(ctx context.Context, wake <-chan struct{}, tick <-chan time.Time, round func(time.Time) (time.Time, error)) {
	for ctx.Err() == nil {
		next, err := round(d.Now())
		if err != nil {
			d.Log.Error("dispatch round failed", "err", err)
			next = d.Now().Add(time.Minute)
		}
		timer := time.NewTimer(max(next.Sub(d.Now()), 0))
		if d.idle != nil && wake == d.wake {
			select {
			case d.idle <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-tick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// hand gives the ids not already in a worker's hands to the workers of the
// loop woken by wake, in order, waiting for each to be taken (until ctx
// ends); it returns how many it handed.
func (d *Dispatcher) hand(ctx context.Context, ids []string, workers chan<- string, wake chan struct{}) int {
	handed := 0
	for _, id := range ids {
		if !d.claim(id, wake) {
			continue
		}
		select {
		case workers <- id:
			handed++
		case <-ctx.Done():
			d.done(id)
			return handed
		}
	}
	return handed
}

// sendRound hands every due step to the send workers and returns when the
// loop should next look.
func (d *Dispatcher) sendRound(ctx context.Context, now time.Time, jobs chan<- string) (time.Time, error) {
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
	var due []string
	var nextDue time.Time
	var hasDue bool
	err = d.DB.View(func(tx *store.Tx) error {
		due = tx.DueIDs(now, 1000)
		nextDue, hasDue = tx.NextDue()
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
	handed := d.hand(ctx, due, jobs, d.wake)
	return d.nextLook(now, handed, nextDue, hasDue), nil
}

// uploadRound hands every sent step whose upload is due to the upload
// workers.
func (d *Dispatcher) uploadRound(ctx context.Context, now time.Time, uploads chan<- string) (time.Time, error) {
	var ups []string
	var nextUp time.Time
	var hasUp bool
	err := d.DB.View(func(tx *store.Tx) error {
		ups = tx.UploadIDs(now, 1000)
		nextUp, hasUp = tx.NextUpload()
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	handed := d.hand(ctx, ups, uploads, d.wakeUploads)
	return d.nextLook(now, handed, nextUp, hasUp), nil
}

// nextLook is when a round's loop looks again: soon after handing work out
// (workers wake it as they finish, and more may wait behind them), else at
// the next time in the index, and at least every minute (the index may
// have moved under it).
func (d *Dispatcher) nextLook(now time.Time, handed int, next time.Time, has bool) time.Time {
	if handed > 0 {
		return now.Add(time.Second)
	}
	if has && next.Before(now.Add(time.Minute)) {
		return next
	}
	return now.Add(time.Minute)
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
	var missed, inDoubt []store.Step
	err = d.DB.Update(func(tx *store.Tx) error {
		var err error
		missed, inDoubt, err = tx.Sweep()
		return err
	})
	for _, s := range inDoubt {
		d.Log.Warn("notice in doubt at its deadline: an earlier send may have been delivered; see `errpd resolve`", "step", s.ID, "deadline", s.Deadline)
	}
	return missed, err
}

// claim marks a step as handed to a worker of the loop woken by wake, so
// that no round hands it out twice while the store still lists it. The
// store's conditional transitions are the real guard; this only saves work.
func (d *Dispatcher) claim(id string, wake chan struct{}) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.inflight[id]; ok {
		return false
	}
	d.inflight[id] = wake
	d.busy[wake]++
	return true
}

// done releases a step; when the last step its loop handed out is done,
// that loop looks for more at once (one round per batch, not per message).
func (d *Dispatcher) done(id string) {
	d.mu.Lock()
	wake, ok := d.inflight[id]
	delete(d.inflight, id)
	idle := false
	if ok {
		d.busy[wake]--
		idle = d.busy[wake] == 0
	}
	d.mu.Unlock()
	if idle {
		select {
		case wake <- struct{}{}:
		default:
		}
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
// Each outcome is submitted to the store's group commit without waiting:
// it commits with the next message's intent, or on its own when none
// follows. Submissions commit in order, so once a worker's next intent is
// durable its previous outcome is too, and a crash leaves at most one of
// its steps in doubt.
//
// From the commit of its intent until its next write is queued, a worker
// holds the next commit (store.SubmitFollowed), so that its outcome and
// its next intent share the commit the other workers' writes are in.
func (d *Dispatcher) sendWorker(ctx context.Context, jobs <-chan string) {
	var last *store.Pending
	var hold *store.Hold
	for {
		var id string
		var ok bool
		select {
		case id, ok = <-jobs:
		default:
			hold.Release() // nothing more to write soon
			id, ok = <-jobs
		}
		if !ok {
			break
		}
		var p *store.Pending
		p, hold = d.send(ctx, id, hold)
		if p != nil {
			last = p
		}
		d.done(id)
	}
	hold.Release()
	if last != nil {
		last.Wait() // shutdown: the last reply is recorded before Run returns
	}
}

// commit submits an outcome and wakes the loop once it is recorded: a sent
// step now waits for its upload, a deferred one for its retry.
func (d *Dispatcher) commit(o *outcome) *store.Pending {
	p := d.DB.Submit(o.apply)
	go func() {
		if err := p.Wait(); err != nil {
			d.Log.Error("recording outcome", "step", o.id, "to", o.to, "err", err)
		}
		d.Wake()
	}()
	return p
}

// errNotClaimed stops a hand-over when the step moved on (a closed cycle,
// an operator) before its intent was recorded.
var errNotClaimed = errors.New("step is no longer waiting to be sent")

// send takes one due step through its SMTP transaction and returns its
// outcome's pending commit (nil when there is nothing to record). It
// releases prev, the worker's hold, once its own intent is queued, and
// returns the hold its intent announced.
//
// The intent (state sending, the stored bytes) is submitted before the SMTP
// transaction starts and must be durable before its point of no return:
// the sender calls the gate once everything but the final dot is on the
// wire. The fsync thus overlaps MAIL, RCPT and DATA instead of preceding
// them, and a message whose intent did not commit is never handed over.
func (d *Dispatcher) send(ctx context.Context, id string, prev *store.Hold) (*store.Pending, *store.Hold) {
	defer prev.Release()
	log := d.Log.With("step", id)
	// Read and render outside the write transaction; the conditional
	// transition below decides whether this worker may go on.
	var s store.Step
	var c store.Cycle
	var raw []byte
	err := d.DB.View(func(tx *store.Tx) error {
		var ok bool
		var err error
		if s, ok, err = tx.Step(id); err != nil || !ok {
			return errors.Join(err, errors.New("step vanished"))
		}
		if c, _, err = tx.Cycle(s.Cycle); err != nil {
			return err
		}
		raw, _, _, err = tx.Message(id)
		return err
	})
	now := d.Now().UTC()
	if err != nil || !s.State.Waiting() || ctx.Err() != nil || !now.Before(s.Deadline) {
		if err != nil {
			log.Error("reading step", "err", err)
		}
		return nil, nil // a closed window is marked missed by the next sweep
	}
	var msg Message
	if raw != nil && s.MayHaveGone {
		// The stored message may have been delivered: a resend repeats
		// it exactly, to whom it went, and the proof stays the one message.
		msg = Message{Raw: raw, MessageID: s.MessageID, From: s.From, To: s.Recipient, EnvelopeFrom: s.EnvelopeFrom}
	} else if msg, err = d.Renderer.Render(s, c); err != nil {
		return d.commit(&outcome{id: id, from: waiting, to: scheduler.StateFailed, why: "render: " + err.Error()}), nil
	}
	if raw != nil && !s.MayHaveGone {
		if s.Recipient == msg.To && s.From == msg.From && s.EnvelopeFrom == msg.EnvelopeFrom {
			// A retry sends the bytes rendered the first time: the message
			// is rendered once, and what is proved is what was sent.
			msg.Raw = raw
			msg.Language, msg.LanguageFallback = s.Language, s.LanguageFallback
		} else {
			// The registrant or brand changed since the last attempt: the
			// stored bytes are addressed to someone else. Send, store and
			// prove the new rendering instead.
			log.Info("notice rendered again: its addresses changed since the last attempt")
			raw = nil
		}
	}
	// Compress and hash outside the write transaction, which every other
	// writer waits for. A retry's bytes are already stored.
	var prepared store.Prepared
	sha := s.SHA256
	if raw == nil {
		if prepared, err = store.PrepareMessage(msg.Raw); err != nil {
			log.Error("preparing message", "err", err)
			return nil, nil
		}
		sha = prepared.Message.SHA256
	}
	claimed := false
	// The intent's commit is followed, one round trip later, by this
	// worker's outcome: the commit after it waits for that (store.Hold).
	intent, hold := d.DB.SubmitFollowed(func(tx *store.Tx) error {
		claimed = false
		_, err := tx.Transition(id, waiting, scheduler.StateSending, "sending", func(s *store.Step) {
			s.Attempts++
			s.MessageID, s.SHA256 = msg.MessageID, sha
			s.From, s.Recipient, s.EnvelopeFrom = msg.From, msg.To, msg.EnvelopeFrom
			if msg.Language != "" { // a resend of stored bytes keeps the step's
				s.Language, s.LanguageFallback = msg.Language, msg.LanguageFallback
			}
			s.OrderID = c.OrderID
		})
		if errors.Is(err, store.ErrConflict) {
			return nil // another actor moved it; nothing to send
		}
		if err == nil && raw == nil {
			err = tx.PutPrepared(id, prepared)
		}
		claimed = err == nil
		return err
	})
	prev.Release()
	gate := func() error {
		if err := intent.Wait(); err != nil {
			return err
		}
		if !claimed {
			return errNotClaimed
		}
		return nil
	}

	// The transaction in flight finishes even if shutdown began: SIGTERM
	// must not leave a message in doubt.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.SendTimeout)
	reply, err := d.Sender.Send(sctx, msg.EnvelopeFrom, []string{msg.To}, msg.Raw, gate)
	cancel()
	// Whether or not the sender reached the gate, the step is ours only
	// if the intent committed.
	if ierr := intent.Wait(); ierr != nil {
		log.Error("recording intent", "err", ierr)
		return nil, hold
	}
	if !claimed {
		return nil, hold
	}
	now = d.Now().UTC()
	switch {
	case err == nil:
		d.Metrics.sent("ok")
		log.Info("notice sent", "message_id", msg.MessageID, "reply", reply)
		return d.commit(&outcome{id: id, from: sending, to: scheduler.StateSent, why: "sent", change: func(s *store.Step) {
			s.SentAt, s.SMTPReply, s.Reason, s.NextUpload = now, reply, "", now
		}}), hold
	case IsInDoubt(err):
		// Like a crash in the middle of the transaction: held for an
		// operator (errpd resolve), or due again, after a pause, if the
		// policy resends and this message was not resent already.
		d.Metrics.sent("in_doubt")
		to, why, at := scheduler.StateInDoubt, "outcome unknown: "+err.Error(), now
		resend := d.ResendInDoubt && !s.MayHaveGone
		if resend {
			to, why = scheduler.StateDue, "resent by policy, outcome unknown: "+err.Error()
			if at = d.Retry.Next(s.Attempts+1, now, s.Deadline, rand.Float64()); at.IsZero() {
				at = s.Deadline // the sweep puts it in doubt (it may have gone)
			}
		}
		log.Warn("notice in doubt", "err", err, "resend", resend)
		return d.commit(&outcome{id: id, from: sending, to: to, why: why, change: func(s *store.Step) {
			s.SMTPReply, s.SendAt, s.MayHaveGone = err.Error(), at, true
		}}), hold
	case IsPermanent(err):
		d.Metrics.sent("permanent")
		log.Warn("notice refused", "err", err)
		return d.commit(&outcome{id: id, from: sending, to: scheduler.StateFailed, why: "smtp: " + err.Error(), change: func(s *store.Step) {
			s.SMTPReply = err.Error()
		}}), hold
	default:
		d.Metrics.sent("temporary")
		next := d.Retry.Next(s.Attempts+1, now, s.Deadline, rand.Float64())
		if next.IsZero() {
			next = s.Deadline // the sweep marks it missed (in doubt if an earlier send may have gone)
		}
		log.Warn("notice deferred", "err", err, "retry_at", next)
		return d.commit(&outcome{id: id, from: sending, to: scheduler.StateDue, why: "temporary failure: " + err.Error(), change: func(s *store.Step) {
			s.SendAt, s.SMTPReply = next, err.Error()
		}}), hold
	}
}

// upload takes one sent step through its UploadMessage call. Its intent
// (state uploading, one more attempt) is committed before the call, so that
// after a crash or a timeout the next attempt knows an earlier one may
// have reached Ascio, and the Uploader checks before uploading again.
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
	err = d.DB.Batch(func(tx *store.Tx) error {
		var err error
		s, err = tx.Transition(id, []scheduler.State{scheduler.StateSent}, scheduler.StateUploading, "uploading", func(s *store.Step) {
			s.UploadAttempts++
			s.OrderID = orderID
		})
		return err
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			log.Error("recording upload intent", "err", err)
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
		next := d.Retry.Next(s.UploadAttempts, now, time.Time{}, rand.Float64())
		log.Warn("proof upload deferred", "err", err, "retry_at", next)
		o = &outcome{id: id, from: uploading, to: scheduler.StateSent, why: "upload temporary failure: " + err.Error(), change: func(s *store.Step) {
			s.NextUpload, s.AscioResult = next, err.Error()
		}}
	}
	if err := d.DB.Batch(o.apply); err != nil {
		log.Error("recording upload", "err", err)
	}
}
