// Package delivery hands a built message, byte for byte, to an SMTP relay
// or, with no relay, to an outbox folder. Failures answer failure.Kind: a
// 5xx reply to the message is permanent; 4xx replies, network errors and
// timeouts are temporary; a connection lost after the final dot is in
// doubt. The relay's text is capped (peertext) before anyone stores it.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strconv"

	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/internal/peertext"
)

// Sender hands exact bytes to the next hop.
//
// gate, unless nil, is the caller's point of no return: it is called once
// everything but the final hand-over is done (the message is written up to
// the end of DATA; the outbox file is written and synced but not yet
// renamed), and the message is handed over only if gate returns nil.
// Otherwise nothing is delivered and the error, at StageGate, wraps
// gate's. errpd commits its intent to send there, so that the commit's
// fsync overlaps the SMTP round trips instead of preceding them.
type Sender interface {
	SendGated(ctx context.Context, envelopeFrom string, to []string, raw []byte, gate func() error) (Reply, error)
}

// Reply is the next hop's answer to a message, kept with the notice as
// evidence that it was handed on.
type Reply struct {
	Code int    // SMTP reply code, e.g. 250; 0 for the outbox
	Text string // the reply's text, e.g. "2.0.0 Ok: queued as 4Xyz"
}

func (r Reply) String() string {
	if r.Code == 0 {
		return r.Text
	}
	return strconv.Itoa(r.Code) + " " + r.Text
}

// Stage is the step of the SMTP conversation an error happened in.
type Stage string

const (
	StageConnect Stage = "connect" // dial, greeting, EHLO, STARTTLS, AUTH
	StageMail    Stage = "mail"    // MAIL FROM
	StageRcpt    Stage = "rcpt"    // RCPT TO
	StageData    Stage = "data"    // DATA, the message, the final dot
	StageOutbox  Stage = "outbox"  // writing the outbox file
	StageGate    Stage = "gate"    // the caller's gate refused the hand-over
)

// Error is a failed delivery.
type Error struct {
	Stage     Stage
	Code      int    // SMTP reply code; 0 for network errors and timeouts
	Text      string // the reply's text, or the network error's
	Permanent bool
	// Unknown: the connection failed after the final dot was written, so
	// the relay may have taken the message. Retrying could deliver it
	// twice; the caller must not resend it on its own.
	Unknown bool
	Err     error // the underlying error
}

func (e *Error) Error() string {
	kind := "temporary"
	switch {
	case e.Permanent:
		kind = "permanent"
	case e.Unknown:
		return fmt.Sprintf("outcome unknown at %s, the relay may have accepted the message: %s", e.Stage, e.Text)
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s failure at %s: %d %s", kind, e.Stage, e.Code, e.Text)
	}
	return fmt.Sprintf("%s failure at %s: %s", kind, e.Stage, e.Text)
}

func (e *Error) Unwrap() error { return e.Err }

// Reply is the SMTP reply the error carries, for the record; Code 0 when
// the failure was not a reply.
func (e *Error) Reply() Reply { return Reply{Code: e.Code, Text: e.Text} }

// FailureKind is what the failure means for the notice: in doubt when the
// relay may have the message, permanent for a refusal of the message,
// temporary otherwise.
func (e *Error) FailureKind() failure.Kind {
	switch {
	case e.Unknown:
		return failure.InDoubt
	case e.Permanent:
		return failure.Permanent
	}
	return failure.Temporary
}

// classify turns whatever the SMTP client returned at stage into an
// *Error. go-mail reports network errors as not temporary; for a notice
// they are, since the next try may well get through. A 5xx reply is
// permanent only when it answers the message (MAIL, RCPT, DATA): a 5xx to
// the greeting, EHLO, STARTTLS or AUTH says the relay or errpd's
// configuration is wrong, which an operator can fix and a retry then
// succeeds, so it must not fail every notice for good.
func classify(stage Stage, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if stage == StageGate {
		return &Error{Stage: stage, Text: "not handed over: " + peertext.Cap(err.Error()), Err: err}
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return &Error{Stage: stage, Code: tp.Code, Text: peertext.Cap(tp.Msg), Err: capped{err},
			Permanent: tp.Code >= 500 && tp.Code < 600 && stage != StageConnect}
	}
	return &Error{Stage: stage, Text: peertext.Cap(err.Error()), Err: err}
}

// capped keeps a relay's reply reachable with errors.As while its text,
// which the relay chose, is capped wherever the error is printed.
type capped struct{ err error }

func (c capped) Error() string { return peertext.Cap(c.err.Error()) }
func (c capped) Unwrap() error { return c.err }
