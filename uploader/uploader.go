// Package uploader proves a sent ERRP notice to Ascio: it turns the stored
// bytes of the message as sent into an UploadMessage against the domain's
// Autorenew/Autodelete order, so that what Ascio holds is what the
// registrant received, and it sorts Ascio's answer into success, temporary
// and permanent failure.
package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/mail"
	"strings"

	"github.com/jordan-wright/email"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/scheduler"
)

// ErrNotUploadable is returned for the suspension notice: Ascio has no
// message type for it, so it is not uploaded and the stored message is its
// proof.
var ErrNotUploadable = errors.New("Ascio has no message type for the suspension notice; the stored message is the proof")

// Ascio is the calls the uploader needs; *ascio.Client has them.
type Ascio interface {
	UploadMessage(ctx context.Context, orderID string, m ascio.Message) (ascio.UploadResult, error)
	GetMessages(ctx context.Context, orderID string) ([]ascio.Message, error)
}

// Client uploads notices. It is safe for concurrent use if its Ascio is.
type Client struct {
	Ascio Ascio
}

// Result is Ascio's answer, for the step's record.
type Result struct {
	Code      int      // ResultCode; 0 when Ascio did not answer with one
	Message   string   // ResultMessage, or the fault or network error
	Errors    []string // Ascio's Errors list
	MessageID int      // Ascio's id of the stored message, on success
}

func (r Result) String() string {
	s := fmt.Sprintf("%d %s", r.Code, r.Message)
	if r.MessageID != 0 {
		s += fmt.Sprintf(" (MessageId %d)", r.MessageID)
	}
	if len(r.Errors) > 0 {
		s += ": " + strings.Join(r.Errors, "; ")
	}
	return s
}

// Error is an upload that did not succeed. Permanent ones (ResultCode 405
// and every code but 554 and 401) will not succeed by retrying; temporary
// ones (554, 401 until the credentials are fixed, HTTP 5xx or a SOAP
// fault, timeouts, network errors) may.
type Error struct {
	Result Result
	Kind   failure.Kind // Permanent or Temporary
	Err    error        // the *ascio.Error or other cause
}

func (e *Error) Error() string {
	return fmt.Sprintf("upload failed (%s): %v", e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// FailureKind is the uploader's judgement, which overrides Ascio's for 401
// (see failed).
func (e *Error) FailureKind() failure.Kind { return e.Kind }

// Type maps a notice to Ascio's message type.
func Type(n scheduler.Notice) (ascio.MessageType, error) {
	switch n {
	case scheduler.Reminder1:
		return ascio.ExpiryReminder1, nil
	case scheduler.Reminder2:
		return ascio.ExpiryReminder2, nil
	case scheduler.Reminder3:
		return ascio.ExpiryReminder3, nil
	case scheduler.Suspension:
		return "", ErrNotUploadable
	}
	return "", fmt.Errorf("unknown notice %q", n)
}

// Upload sends one sent notice as proof. On success it returns Ascio's
// answer; otherwise an *Error carrying it.
//
// With retry set (an earlier attempt may have reached Ascio: errpd stopped
// during the call, or it timed out), it first asks Ascio with GetMessages
// whether the order already holds this message (same type, subject and
// Created, which is the message's own Date), and uploads only if not: a
// step is uploaded once per sent message, across crashes too.
func (c *Client) Upload(ctx context.Context, orderID string, n scheduler.Notice, raw []byte, retry bool) (Result, error) {
	if orderID == "" {
		return Result{}, &Error{Kind: failure.Permanent, Err: errors.New("no Ascio order id for this cycle")}
	}
	m, err := Message(n, raw)
	if err != nil {
		if errors.Is(err, ErrNotUploadable) {
			return Result{}, err
		}
		return Result{}, &Error{Kind: failure.Permanent, Err: err}
	}
	if retry {
		held, err := c.Ascio.GetMessages(ctx, orderID)
		if err != nil {
			return failed(err)
		}
		for _, h := range held {
			if h.Type == m.Type && h.Subject == m.Subject && h.Created.Equal(m.Created) {
				return Result{Code: 200, Message: "already on the order (GetMessages, after an interrupted upload)"}, nil
			}
		}
	}
	res, err := c.Ascio.UploadMessage(ctx, orderID, m)
	if err == nil {
		return Result{Code: res.Code, Message: res.Message, Errors: res.Errors, MessageID: res.MessageID}, nil
	}
	return failed(err)
}

// failed sorts a failed call into an *Error carrying Ascio's answer.
func failed(err error) (Result, error) {
	var r Result
	var ae *ascio.Error
	if errors.As(err, &ae) {
		r = Result{Code: ae.Result.Code, Message: ae.Result.Message, Errors: ae.Result.Errors}
		if r.Code == 0 {
			r.Message = ae.Error()
		}
		// 401 is errpd's credentials, not this message: once an operator
		// fixes them every upload goes through, so it is retried like a
		// 554 instead of failing each notice's proof for good.
		kind := failure.Of(ae)
		if r.Code == 401 {
			kind = failure.Temporary
		}
		return r, &Error{Result: r, Kind: kind, Err: err}
	}
	// Not from the wire (e.g. no endpoint configured): retrying as is
	// will not help.
	return r, &Error{Result: r, Kind: failure.Permanent, Err: err}
}

// Message builds the UploadMessage content from the stored bytes of a sent
// message (RFC 5322): From, To, Subject and Date (as Created) from its
// header, its text part (or HTML part when there is no text) as Body, and
// the whole message as an .eml attachment.
func Message(n scheduler.Notice, raw []byte) (ascio.Message, error) {
	typ, err := Type(n)
	if err != nil {
		return ascio.Message{}, err
	}
	hdr, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ascio.Message{}, fmt.Errorf("reading the stored message: %w", err)
	}
	created, err := hdr.Header.Date()
	if err != nil {
		return ascio.Message{}, fmt.Errorf("stored message has no valid Date: %w", err)
	}
	parsed, err := email.NewEmailFromReader(bytes.NewReader(raw))
	if err != nil {
		return ascio.Message{}, fmt.Errorf("reading the stored message: %w", err)
	}
	body := string(parsed.Text)
	if strings.TrimSpace(body) == "" {
		body = string(parsed.HTML)
	}
	return ascio.Message{
		Attachments: []ascio.Attachment{{FileName: string(n) + ".eml", Content: raw}},
		Body:        body,
		Created:     created.UTC(),
		From:        addresses(hdr.Header.Get("From")),
		Subject:     subject(hdr.Header.Get("Subject")),
		To:          addresses(hdr.Header.Get("To")),
		Type:        typ,
	}, nil
}

// subject keeps the Subject as stored when it is 7-bit: a message errpd
// built carries RFC 2047 encoded words, which is ASCII as Ascio asks. A
// raw 8-bit subject is encoded (base64 words) so that it becomes so.
func subject(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.BEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// addresses returns the bare addresses of an address header, comma
// separated; the header as written if it does not parse.
func addresses(h string) string {
	list, err := mail.ParseAddressList(h)
	if err != nil {
		return strings.Join(strings.Fields(h), " ")
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return strings.Join(out, ",")
}
