package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/peertext"
)

// Ascio is the part of Ascio's API intake reads; *ascio.Client has it.
type Ascio interface {
	PollQueue(ctx context.Context, t ascio.MessageType) (*ascio.QueueMessage, error)
	GetQueueMessage(ctx context.Context, id int) (ascio.QueueMessage, error)
	AckQueueMessage(ctx context.Context, id int) error
	GetOrder(ctx context.Context, orderID string) (ascio.Order, error)
	GetDomain(ctx context.Context, handle string) (ascio.Domain, error)
}

// Intake reads Ascio's messages into the calendar. The callback Handler
// and the Poller share it.
type Intake struct {
	Ascio    Ascio
	Calendar Calendar
	Log      *slog.Logger
	Now      func() time.Time
}

// Outcome is what taking in one message did.
type Outcome struct {
	Event   Event
	Applied bool // false: the message id had been applied before
}

// Take reads the order and the domain behind a queue message from Ascio,
// stores the effect, and only then acknowledges the message. A message
// that cannot be used (ErrUnusable, or an order or domain Ascio says it
// does not know, ResultCode 404) is stored as ignored with the reason and
// acknowledged, so that it does not block the queue; any other error
// (temporary ones, among them an answer without the order or domain it
// was for, and the calendar's) leaves the message unacknowledged for the
// next poll: nothing is acknowledged that was not applied.
func (in *Intake) Take(ctx context.Context, m ascio.QueueMessage) (Outcome, error) {
	ev, err := in.interpret(ctx, m)
	if err != nil {
		if !errors.Is(err, ErrUnusable) && !ascio.IsNotFound(err) {
			return Outcome{}, err
		}
		in.Log.Error("ascio message cannot be used; recording it as ignored", "message_id", m.ID,
			"order_id", m.OrderID, "err", err)
		// The reason is stored: cut it, whatever the error quotes.
		ev = Event{MessageID: m.ID, Kind: Ignore, Domain: ev.Domain, OrderType: Normalize(m.OrderType),
			OrderStatus: Normalize(m.OrderStatus), Reason: peertext.Cap(err.Error())}
	}
	applied, err := in.Calendar.Apply(ctx, ev)
	if err != nil {
		return Outcome{Event: ev}, fmt.Errorf("storing ascio message %d: %w", m.ID, err)
	}
	in.Log.Info("ascio message", "message_id", m.ID, "order_id", m.OrderID, "domain", ev.Domain,
		"kind", string(ev.Kind), "mode", string(ev.Mode), "applied", applied, "reason", ev.Reason)
	// Acknowledged only now that the effect is stored. An ack that fails
	// leaves the message in the queue; taking it again changes nothing.
	if err := in.Ascio.AckQueueMessage(ctx, m.ID); err != nil && !ascio.IsNotFound(err) {
		return Outcome{Event: ev, Applied: applied}, fmt.Errorf("acknowledging ascio message %d: %w", m.ID, err)
	}
	return Outcome{Event: ev, Applied: applied}, nil
}

func (in *Intake) interpret(ctx context.Context, m ascio.QueueMessage) (Event, error) {
	if m.OrderID == "" {
		return Event{}, fmt.Errorf("%w: message %d has no OrderId", ErrUnusable, m.ID)
	}
	o, err := in.Ascio.GetOrder(ctx, m.OrderID)
	if err != nil {
		return Event{}, err
	}
	if o.ID != m.OrderID {
		return Event{}, fmt.Errorf("%w: GetOrder %s answered order %s", ErrUnusable, m.OrderID, o.ID)
	}
	handle := m.ObjectHandle
	if handle == "" {
		handle = o.DomainHandle
	}
	if handle == "" {
		return Event{}, fmt.Errorf("%w: neither message %d nor order %s names a domain handle", ErrUnusable, m.ID, o.ID)
	}
	d, err := in.Ascio.GetDomain(ctx, handle)
	if err != nil {
		return Event{}, err
	}
	return Interpret(m, o, d, in.Now())
}

// Drain takes every message waiting in Ascio's queue, oldest first, and
// returns how many it took. It stops at the first error, leaving that
// message for the next round.
func (in *Intake) Drain(ctx context.Context) (int, error) {
	n, last := 0, 0
	for {
		m, err := in.Ascio.PollQueue(ctx, ascio.MessageToPartner)
		if err != nil {
			return n, fmt.Errorf("polling ascio: %w", err)
		}
		if m == nil {
			return n, nil
		}
		if m.ID == last {
			// Acknowledged but served again: do not spin on it.
			return n, fmt.Errorf("ascio served message %d again after it was acknowledged", m.ID)
		}
		if _, err := in.Take(ctx, *m); err != nil {
			return n, err
		}
		n, last = n+1, m.ID
	}
}
