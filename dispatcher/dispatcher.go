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

	"github.com/errpd/errpd/internal/failure"
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

// The Sender's and the Uploader's errors say what they mean with
// failure.Kind (delivery.Error, uploader.Error): the dispatcher asks
// failure.Of and translates nothing. An error that says nothing is
// temporary.

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
	// MaxPrepareAttempts is how often a step that cannot even be prepared
	// (its stored message or record does not decode, its notice does not
	// render, its record cannot be written) is tried, on the Retry
	// schedule, before it becomes failed (default 5).
	MaxPrepareAttempts int
	// StoreRetry is the pause after a failed store write
	// (DefaultStoreRetry when zero).
	StoreRetry Retry

	wake        chan struct{} // the send loop's
	wakeUploads chan struct{}
	idle        chan struct{} // tests: the send loop signals here before it waits
	lastSweep   time.Time     // only the loop's goroutine touches it
	mu          sync.Mutex
	inflight    map[string]chan struct{} // step id -> the wake channel of the loop that handed it out
	busy        map[chan struct{}]int    // steps each loop has in its workers' hands
	holds       map[string]hold          // steps whose failure could not be recorded
	// The store's health: set by a failed write, cleared by a good one.
	storeErr     error
	storeFails   int
	storeRetryAt time.Time
	carefulUntil time.Time  // intents commit before SMTP until then
	unrecorded   []*outcome // outcomes whose write failed, written again later
	relayFails   int        // temporary failures of the relay in a row
	relayErr     string
	lastBeat     time.Time // the send loop's last round
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
	if d.MaxPrepareAttempts < 1 {
		d.MaxPrepareAttempts = 5
	}
	if d.StoreRetry == (Retry{}) {
		d.StoreRetry = DefaultStoreRetry
	}
	d.wake = make(chan struct{}, 1)
	d.wakeUploads = make(chan struct{}, 1)
	d.inflight = map[string]chan struct{}{}
	d.busy = map[chan struct{}]int{}
	d.holds = map[string]hold{}
}

// Recover deals with what a crash left behind: a step found sending may or
// may not have been delivered, so it becomes in_doubt (or, by policy, due
// again); a step found uploading goes back to sent, and its next attempt
// first asks Ascio whether the cut-off one arrived.
func (d *Dispatcher) Recover() (inDoubt []store.Step, err error) {
	if d.wake == nil {
		d.init()
	}
	// A chunk of the steps caught mid-action per transaction: those in
	// doubt stay where they are and may be many.
	for m, more := (store.Mark{}), true; more; {
		var moved []store.Step
		err = d.DB.Update(func(tx *store.Tx) (err error) {
			moved = nil
			m, more, err = tx.ActiveAfter(m, recoverChunk, func(s store.Step) error {
				s, ok, err := d.recover(tx, s)
				if ok {
					moved = append(moved, s)
				}
				return err
			})
			return err
		})
		if err != nil {
			return inDoubt, err
		}
		inDoubt = append(inDoubt, moved...)
	}
	return inDoubt, nil
}

// recover moves one step caught mid-action; ok reports a step found
// sending, now in doubt or due again.
func (d *Dispatcher) recover(tx *store.Tx, s store.Step) (_ store.Step, ok bool, err error) {
	switch s.State {
	case scheduler.StateSending:
		to, why := scheduler.StateInDoubt, "errpd stopped during the SMTP transaction: it may or may not have been delivered"
		if d.ResendInDoubt && !s.MayHaveGone { // once: a crash loop must not resend it each time
			to, why = scheduler.StateDue, "resent by policy after errpd stopped during the SMTP transaction"
		}
		s, err = tx.Transition(s.ID, []scheduler.State{scheduler.StateSending}, to, why, func(s *store.Step) {
			s.Reason, s.SendAt, s.MayHaveGone = why, tx.Now(), true
		})
		return s, true, err
	case scheduler.StateUploading:
		_, err = tx.Transition(s.ID, []scheduler.State{scheduler.StateUploading}, scheduler.StateSent, "upload interrupted; Ascio is asked whether it arrived before uploading again", func(s *store.Step) {
			s.NextUpload = tx.Now().Add(d.UploadGrace)
		})
	}
	return s, false, err
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
	// Last chance for outcomes the store refused: a step left sending is
	// called in doubt at the next start.
	if err := d.flushUnrecorded(); err != nil {
		d.Log.Error("outcomes not recorded at shutdown: their steps will be in doubt", "err", err)
	}
	return nil
}

// loop runs round until ctx ends, each time the round asks to, when woken,
// and on every tick (the cron safety net). Its timer is Go's, so that
// tests drive it with testing/synctest's fake clock (with Now = time.Now).
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
			if wake == d.wake {
				d.beat(d.Now())
			}
		case <-ctx.Done():
			d.done(id)
			return handed
		}
	}
	return handed
}

// sendRound hands every due step to the send workers and returns when the
// loop should next look.
//
// While the store fails it does nothing until the pause ends; then it
// writes the outcomes it kept and hands out one step at a time, whose send
// waits for its intent to commit before the SMTP transaction begins.
func (d *Dispatcher) sendRound(ctx context.Context, now time.Time, jobs chan<- string) (time.Time, error) {
	d.beat(now)
	if failing, until := d.storePaused(); failing && now.Before(until) {
		return until, nil
	}
	if err := d.flushUnrecorded(); err != nil {
		return d.storeFailed(err), nil
	}
	err := d.sweep(now)
	if writeFailed(err) {
		return d.storeFailed(err), nil
	}
	if err != nil {
		// A step that does not decode stops the sweep, not the sending
		// of the others (each of which is prepared on its own).
		d.Log.Error("sweep failed; what is due is sent all the same", "err", err)
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
	due = d.unheld(due, now)
	if failing, _ := d.storePaused(); failing && len(due) > 1 {
		due = due[:1] // one step tries the store
	}
	handed := d.hand(ctx, due, jobs, d.wake)
	return d.nextLook(now, handed, nextDue, hasDue), nil
}

// unheld drops the steps held off after a failure.
func (d *Dispatcher) unheld(ids []string, now time.Time) []string {
	out := ids[:0]
	for _, id := range ids {
		if !d.held(id, now) {
			out = append(out, id)
		}
	}
	return out
}

// uploadRound hands every sent step whose upload is due to the upload
// workers.
func (d *Dispatcher) uploadRound(ctx context.Context, now time.Time, uploads chan<- string) (time.Time, error) {
	if failing, until := d.storePaused(); failing && now.Before(until) {
		return until, nil
	}
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
	handed := d.hand(ctx, d.unheld(ups, now), uploads, d.wakeUploads)
	return d.nextLook(now, handed, nextUp, hasUp), nil
}

// nextLook is when a round's loop looks again: soon after handing work out
// (workers wake it as they finish, and more may wait behind them), else at
// the next time in the index or the next held step, and at least every
// minute (the index may have moved under it). A time in the index that is
// not after now belongs to a step in a worker's hands or held off: looking
// again at once would spin.
func (d *Dispatcher) nextLook(now time.Time, handed int, next time.Time, has bool) time.Time {
	if handed > 0 {
		return now.Add(time.Second)
	}
	look := now.Add(time.Minute)
	if has && next.After(now) && next.Before(look) {
		look = next
	}
	if h := d.nextHold(now); !h.IsZero() && h.Before(look) {
		look = h
	}
	return look
}

// Chunks of the daemon's scans: how many steps one transaction reads at
// most, so that a backlog of any size costs the same memory.
const (
	sweepLook    = 1000 // due steps looked at to decide whether to sweep
	sweepChunk   = 1000 // due steps one transaction of a sweep moves
	recoverChunk = 1000 // steps caught mid-action one transaction of Recover reads
)

// sweep marks missed the waiting steps whose deadline passed (and due the
// planned ones whose window opened), at most once a second: it reads steps,
// and a write transaction costs an fsync, so it first looks whether there
// is anything to do. It works a chunk at a time, each chunk its own
// transaction (a backlog after downtime may be hundreds of thousands of
// steps), and logs and counts what each chunk marked as it commits.
func (d *Dispatcher) sweep(now time.Time) error {
	if !d.lastSweep.IsZero() && now.Sub(d.lastSweep) < time.Second && now.After(d.lastSweep) {
		return nil
	}
	d.lastSweep = now
	need := false
	err := d.DB.View(func(tx *store.Tx) error {
		due, err := tx.Due(now, sweepLook)
		for _, s := range due {
			if !now.Before(s.Deadline) || s.State == scheduler.StatePlanned {
				need = true
			}
		}
		return asStepError(err)
	})
	if err != nil || !need {
		return err
	}
	for m, more := (store.Mark{}), true; more; {
		var missed, inDoubt []store.Step
		err := d.DB.Update(func(tx *store.Tx) error {
			var err error
			m, more, missed, inDoubt, err = tx.SweepAfter(m, sweepChunk)
			return asStepError(err)
		})
		if err != nil {
			return err
		}
		for _, s := range missed {
			d.Log.Warn("notice missed its window", "step", s.ID, "deadline", s.Deadline)
			d.Metrics.missed()
		}
		for _, s := range inDoubt {
			d.Log.Warn("notice in doubt at its deadline: an earlier send may have been delivered; see `errpd resolve`", "step", s.ID, "deadline", s.Deadline)
		}
	}
	return nil
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
	p := d.DB.Submit(func(tx *store.Tx) error { return asStepError(o.apply(tx)) })
	go func() {
		err := p.Wait()
		switch {
		case writeFailed(err):
			// Kept and written once the store takes writes again.
			d.storeFailed(err)
			d.unrecord(o)
		case err != nil:
			d.Log.Error("recording outcome", "step", o.id, "to", o.to, "err", err)
		default:
			d.storeWritten()
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
	found := false
	err := d.DB.View(func(tx *store.Tx) error {
		var err error
		if s, found, err = tx.Step(id); err != nil || !found {
			return err
		}
		if c, _, err = tx.Cycle(s.Cycle); err != nil {
			return err
		}
		raw, _, _, err = tx.Message(id)
		return err
	})
	now := d.Now().UTC()
	switch {
	case err != nil:
		d.prepareFailed(id, fmt.Errorf("reading its record: %w", err), log)
		return nil, nil
	case !found:
		// Listed as due but not stored: nothing to record it on.
		log.Error("step listed as due is not in the store")
		d.holdOff(id, now, time.Time{})
		return nil, nil
	case !s.State.Waiting() || ctx.Err() != nil:
		return nil, nil
	case !now.Before(s.Deadline):
		// The next sweep marks it missed; until then it is not handed
		// out again.
		d.holdOff(id, now, now.Add(time.Second))
		return nil, nil
	}
	var msg Message
	if raw != nil && s.MayHaveGone {
		// The stored message may have been delivered: a resend repeats
		// it exactly, to whom it went, and the proof stays the one message.
		msg = Message{Raw: raw, MessageID: s.MessageID, From: s.From, To: s.Recipient, EnvelopeFrom: s.EnvelopeFrom}
	} else if msg, err = d.Renderer.Render(s, c); err != nil {
		// Not failed at once: SIGHUP may bring a fixed template.
		d.prepareFailed(id, fmt.Errorf("render: %w", err), log)
		return nil, nil
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
			d.prepareFailed(id, fmt.Errorf("preparing its message: %w", err), log)
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
			s.PrepareFailures = 0
		})
		if errors.Is(err, store.ErrConflict) {
			return nil // another actor moved it; nothing to send
		}
		if err == nil && raw == nil {
			err = tx.PutPrepared(id, prepared)
		}
		claimed = err == nil
		return asStepError(err)
	})
	prev.Release()
	if d.careful() {
		// The store failed lately: no SMTP transaction begins before this
		// write is known to succeed.
		if err := intent.Wait(); err != nil || !claimed {
			d.intentFailed(id, err, log)
			return nil, hold
		}
	}
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
	if ierr := intent.Wait(); ierr != nil || !claimed {
		d.intentFailed(id, ierr, log)
		return nil, hold
	}
	d.storeWritten()
	d.release(id)
	now = d.Now().UTC()
	kind := failure.Of(err)
	switch {
	case err == nil || kind == failure.Permanent:
		d.relayAnswered()
	default:
		d.relayFailed(err)
	}
	switch {
	case err == nil:
		d.Metrics.sent("ok")
		log.Info("notice sent", "message_id", msg.MessageID, "reply", reply)
		return d.commit(&outcome{id: id, from: sending, to: scheduler.StateSent, why: "sent", change: func(s *store.Step) {
			s.SentAt, s.SMTPReply, s.Reason, s.NextUpload = now, reply, "", now
		}}), hold
	case kind == failure.InDoubt:
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
	case kind == failure.Permanent:
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
	found := false
	err := d.DB.View(func(tx *store.Tx) error {
		var err error
		if s, found, err = tx.Step(id); err != nil || !found || s.State != scheduler.StateSent {
			return err
		}
		c, _, err := tx.Cycle(s.Cycle)
		if err != nil {
			return err
		}
		orderID = c.OrderID
		raw, _, _, err = tx.Message(id)
		return err
	})
	if err != nil || !found {
		// A record that does not decode is not a conflict: it is said
		// and tried again on the retry schedule, never at once.
		d.uploadPrepareFailed(id, asStepError(errors.Join(err, errIf(!found, "step listed for upload is not in the store"))), log)
		return
	}
	if s.State != scheduler.StateSent {
		return // another actor moved it
	}
	if orderID == "" && s.Notice != scheduler.Suspension {
		// Sent before Ascio told us the order; the order's arrival resets
		// NextUpload. Look again in an hour all the same, unless the order
		// arrived while we looked.
		err := d.DB.Batch(func(tx *store.Tx) error {
			c, _, err := tx.Cycle(s.Cycle)
			if err != nil || c.OrderID != "" {
				return asStepError(err)
			}
			_, err = tx.Transition(id, []scheduler.State{scheduler.StateSent}, scheduler.StateSent, "", func(s *store.Step) {
				s.NextUpload = tx.Now().Add(time.Hour)
			})
			return asStepError(err)
		})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			d.uploadPrepareFailed(id, fmt.Errorf("postponing upload: %w", err), log)
		}
		return
	}
	err = d.DB.Batch(func(tx *store.Tx) error {
		var err error
		s, err = tx.Transition(id, []scheduler.State{scheduler.StateSent}, scheduler.StateUploading, "uploading", func(s *store.Step) {
			s.UploadAttempts++
			s.OrderID = orderID
		})
		return asStepError(err)
	})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			d.uploadPrepareFailed(id, fmt.Errorf("recording upload intent: %w", err), log)
		}
		return
	}
	d.storeWritten()
	d.release(id)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.SendTimeout)
	result, err := d.Uploader.Upload(uctx, orderID, s, raw)
	cancel()
	now := d.Now().UTC()
	var o *outcome
	switch {
	case err == nil:
		d.Metrics.uploaded("ok")
		log.Info("proof uploaded", "order_id", orderID, "result", result)
		o = &outcome{id: id, from: uploading, to: scheduler.StateProved, why: "proved", change: func(s *store.Step) {
			s.UploadedAt, s.AscioResult, s.Reason = now, result, ""
		}}
	case failure.IsPermanent(err):
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
	if err := d.DB.Batch(func(tx *store.Tx) error { return asStepError(o.apply(tx)) }); writeFailed(err) {
		d.storeFailed(err)
		d.unrecord(o) // the step stays uploading until it is written
	} else if err != nil {
		log.Error("recording upload", "err", err)
	}
}

// uploadPrepareFailed holds a sent step whose upload could not be
// prepared until its next try on the retry schedule (uploads go on past
// the deadline, so they are never failed for it), and pauses the
// dispatcher if the store failed.
func (d *Dispatcher) uploadPrepareFailed(id string, err error, log *slog.Logger) {
	if writeFailed(err) {
		d.storeFailed(err)
	}
	at := d.holdOff(id, d.Now().UTC(), time.Time{})
	log.Error("proof upload cannot be prepared; held until its next try", "err", err, "retry_at", at)
}

// errIf is an error saying what, when cond holds.
func errIf(cond bool, what string) error {
	if cond {
		return errors.New(what)
	}
	return nil
}
