// Package ascio is errpd's client for Ascio's AWS v3 SOAP API: UploadMessage
// for proof of sent notices (and GetMessages, to check whether a cut-off
// upload arrived), PollQueue, GetQueueMessage and AckQueueMessage
// for the message queue, GetOrder and GetDomain for the facts behind a
// message.
//
// The envelope is written element by element with encoding/xml's escaping
// and sent over net/http, in the fixed order of the WSDL's sequences, with
// the namespace declarations on each payload's root so that the header and
// body validate on their own against Ascio's schemas (see package
// ascio/wsdl). docs/ascio.md says why this is not gosoap. Every call takes
// a context; the client holds no mutable state and is safe for concurrent
// use.
package ascio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errpd/errpd/config"
)

// Namespaces of AWS v3 (shared/reference/ascio/NOTES.md §1-2).
const (
	NSSoap     = "http://schemas.xmlsoap.org/soap/envelope/"
	NSService  = "http://www.ascio.com/2013/02/AscioService" // operation wrappers
	NSData     = "http://www.ascio.com/2013/02"              // data types and the auth header
	NSArrays   = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
	NSInstance = "http://www.w3.org/2001/XMLSchema-instance"
)

// maxAnswer bounds what is read of an answer; Ascio's are a few kilobytes.
const maxAnswer = 4 << 20

// Client calls Ascio. The zero HTTP uses http.DefaultClient; deadlines
// and cancellation come from each call's context.
type Client struct {
	Endpoint string // e.g. https://aws.demo.ascio.com/v3/AscioService.svc
	Account  string
	Password config.Secret
	HTTP     *http.Client
}

// UploadResult is UploadMessage's answer.
type UploadResult struct {
	Result
	MessageID int // Ascio's id of the stored message
}

// UploadMessage stores a message as sent by the partner on an order. A
// ResultCode other than success is returned as *Error with the Result.
func (c *Client) UploadMessage(ctx context.Context, orderID string, m Message) (UploadResult, error) {
	var w writer
	w.text("v3:OrderId", orderID)
	w.open("v3:Message")
	if len(m.Attachments) > 0 {
		w.open("v3:Attachments")
		for _, a := range m.Attachments {
			w.open("v3:Attachment")
			w.text("v3:FileName", a.FileName)
			w.text("v3:Content", base64.StdEncoding.EncodeToString(a.Content))
			w.close("v3:Attachment")
		}
		w.close("v3:Attachments")
	}
	w.text("v3:Body", m.Body)
	w.text("v3:Created", m.Created.UTC().Format(time.RFC3339))
	w.text("v3:FromAddress", m.From)
	w.text("v3:Subject", m.Subject)
	w.text("v3:ToAddress", m.To)
	w.text("v3:Type", string(m.Type))
	w.close("v3:Message")

	var out struct {
		R struct {
			wireResult
			MessageID int `xml:"MessageId"`
		} `xml:"UploadMessageResult"`
	}
	status, err := c.call(ctx, "UploadMessage", w.Bytes(), &out)
	if err != nil {
		return UploadResult{}, err
	}
	res := UploadResult{Result: c.result(out.R.wireResult), MessageID: out.R.MessageID}
	return res, classify("UploadMessage", status, res.Result)
}

// GetMessages lists the messages stored on an order, without attachment
// contents. errpd uses it to find out whether an upload that was cut off
// (a crash, a timeout) reached Ascio, before uploading again.
func (c *Client) GetMessages(ctx context.Context, orderID string) ([]Message, error) {
	var w writer
	w.text("v3:OrderId", orderID)
	w.text("v3:IncludeAttachmentContent", "false")
	var out struct {
		R struct {
			wireResult
			Messages []struct {
				Body    string `xml:"Body"`
				Created string `xml:"Created"`
				From    string `xml:"FromAddress"`
				Subject string `xml:"Subject"`
				To      string `xml:"ToAddress"`
				Type    string `xml:"Type"`
			} `xml:"Messages>Message"`
		} `xml:"GetMessagesResult"`
	}
	status, err := c.call(ctx, "GetMessages", w.Bytes(), &out)
	if err != nil {
		return nil, err
	}
	if err := classify("GetMessages", status, c.result(out.R.wireResult)); err != nil {
		return nil, err
	}
	var list []Message
	for _, m := range out.R.Messages {
		msg := Message{Body: m.Body, From: m.From, Subject: m.Subject, To: m.To, Type: MessageType(m.Type)}
		if m.Created != "" {
			if msg.Created, err = ParseTime(m.Created); err != nil {
				return nil, answerError("GetMessages", status, fmt.Errorf("message Created: %w", err))
			}
		}
		list = append(list, msg)
	}
	return list, nil
}

// PollQueue returns the oldest unacknowledged message of the given type,
// or nil when the queue is empty.
func (c *Client) PollQueue(ctx context.Context, t MessageType) (*QueueMessage, error) {
	var w writer
	w.text("v3:MessageType", string(t))
	var out struct {
		R struct {
			wireResult
			TotalCount int               `xml:"TotalCount"`
			Message    *wireQueueMessage `xml:"Message"`
		} `xml:"PollQueueResult"`
	}
	status, err := c.call(ctx, "PollQueue", w.Bytes(), &out)
	if err != nil {
		return nil, err
	}
	if err := classify("PollQueue", status, c.result(out.R.wireResult)); err != nil {
		return nil, err
	}
	if out.R.Message.absent() {
		return nil, nil
	}
	m := out.R.Message.message()
	return &m, nil
}

// GetQueueMessage reads one queue message by id. A message Ascio does not
// know is an *Error for which IsNotFound is true.
func (c *Client) GetQueueMessage(ctx context.Context, id int) (QueueMessage, error) {
	var w writer
	w.text("v3:MessageId", strconv.Itoa(id))
	var out struct {
		R struct {
			wireResult
			Message *wireQueueMessage `xml:"Message"`
		} `xml:"GetQueueMessageResult"`
	}
	status, err := c.call(ctx, "GetQueueMessage", w.Bytes(), &out)
	if err != nil {
		return QueueMessage{}, err
	}
	if err := classify("GetQueueMessage", status, c.result(out.R.wireResult)); err != nil {
		return QueueMessage{}, err
	}
	if out.R.Message.absent() {
		return QueueMessage{}, notFound("GetQueueMessage", status, fmt.Sprintf("message %d", id))
	}
	return out.R.Message.message(), nil
}

// AckQueueMessage removes a message from the queue.
func (c *Client) AckQueueMessage(ctx context.Context, id int) error {
	var w writer
	w.text("v3:MessageId", strconv.Itoa(id))
	var out struct {
		R wireResult `xml:"AckQueueMessageResult"`
	}
	status, err := c.call(ctx, "AckQueueMessage", w.Bytes(), &out)
	if err != nil {
		return err
	}
	return classify("AckQueueMessage", status, c.result(out.R))
}

// GetOrder reads an order.
func (c *Client) GetOrder(ctx context.Context, orderID string) (Order, error) {
	var w writer
	w.text("v3:OrderId", orderID)
	var out struct {
		R struct {
			wireResult
			Info *struct {
				Nil          bool   `xml:"nil,attr"`
				OrderID      string `xml:"OrderId"`
				Status       string `xml:"Status"`
				Created      string `xml:"Created"`
				OrderRequest struct {
					Type   string `xml:"Type"`
					Domain struct {
						Name   string      `xml:"Name"`
						Handle string      `xml:"Handle"`
						Owner  wireContact `xml:"Owner"`
					} `xml:"Domain"`
				} `xml:"OrderRequest"`
			} `xml:"OrderInfo"`
		} `xml:"GetOrderResult"`
	}
	status, err := c.call(ctx, "GetOrder", w.Bytes(), &out)
	if err != nil {
		return Order{}, err
	}
	if err := classify("GetOrder", status, c.result(out.R.wireResult)); err != nil {
		return Order{}, err
	}
	in := out.R.Info
	if in == nil || in.Nil || in.OrderID == "" {
		return Order{}, notFound("GetOrder", status, "order "+orderID)
	}
	o := Order{
		ID:           in.OrderID,
		Status:       in.Status,
		Type:         in.OrderRequest.Type,
		DomainName:   in.OrderRequest.Domain.Name,
		DomainHandle: in.OrderRequest.Domain.Handle,
		Owner:        in.OrderRequest.Domain.Owner.contact(),
	}
	if in.Created != "" {
		if o.Created, err = ParseTime(in.Created); err != nil {
			return Order{}, answerError("GetOrder", status, fmt.Errorf("order Created: %w", err))
		}
	}
	return o, nil
}

// GetDomain reads a domain by its handle.
func (c *Client) GetDomain(ctx context.Context, handle string) (Domain, error) {
	var w writer
	w.text("v3:Handle", handle)
	var out struct {
		R struct {
			wireResult
			Info *struct {
				Nil     bool        `xml:"nil,attr"`
				Name    string      `xml:"DomainName"`
				Handle  string      `xml:"DomainHandle"`
				Status  string      `xml:"Status"`
				Created string      `xml:"Created"`
				Expires string      `xml:"Expires"`
				Owner   wireContact `xml:"Owner"`
			} `xml:"DomainInfo"`
		} `xml:"GetDomainResult"`
	}
	status, err := c.call(ctx, "GetDomain", w.Bytes(), &out)
	if err != nil {
		return Domain{}, err
	}
	if err := classify("GetDomain", status, c.result(out.R.wireResult)); err != nil {
		return Domain{}, err
	}
	in := out.R.Info
	if in == nil || in.Nil || in.Name == "" {
		return Domain{}, notFound("GetDomain", status, "domain "+handle)
	}
	d := Domain{Name: in.Name, Handle: in.Handle, Status: in.Status, Owner: in.Owner.contact()}
	for _, f := range []struct {
		s   string
		t   *time.Time
		key string
	}{{in.Created, &d.Created, "Created"}, {in.Expires, &d.Expires, "Expires"}} {
		if f.s == "" {
			continue
		}
		if *f.t, err = ParseTime(f.s); err != nil {
			return Domain{}, answerError("GetDomain", status, fmt.Errorf("domain %s: %w", f.key, err))
		}
	}
	return d, nil
}

// call sends one operation and decodes the body's payload into out. It
// returns the HTTP status. Errors are *Error and never contain the request.
func (c *Client) call(ctx context.Context, op string, payload []byte, out any) (int, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + NSSoap + `"><soapenv:Header>`)
	var h writer
	h.text("v3:Account", c.Account)
	h.text("v3:Password", c.Password.Reveal())
	b.WriteString(`<v3:SecurityHeaderDetails xmlns:v3="` + NSData + `">`)
	b.Write(h.Bytes())
	b.WriteString(`</v3:SecurityHeaderDetails></soapenv:Header><soapenv:Body>`)
	b.WriteString(`<service:` + op + ` xmlns:service="` + NSService + `" xmlns:v3="` + NSData + `"><service:request>`)
	b.Write(payload)
	b.WriteString(`</service:request></service:` + op + `></soapenv:Body></soapenv:Envelope>`)

	if c.Endpoint == "" {
		return 0, &Error{Op: op, Err: ErrNoEndpoint}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, &b)
	if err != nil {
		return 0, &Error{Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	// The WSDL's soapAction is the bare operation name, not a URI.
	req.Header.Set("SOAPAction", `"`+op+`"`)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A *url.Error names the method and URL (net/http strips any
		// password from it), never the body.
		return 0, &Error{Op: op, Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.StatusCode, &Error{Op: op, HTTPStatus: resp.StatusCode, Temporary: true, Err: err}
	}
	var env struct {
		Body struct {
			Fault *struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault"`
			Inner []byte `xml:",innerxml"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(data, &env); err != nil {
		return resp.StatusCode, answerError(op, resp.StatusCode, fmt.Errorf("unreadable answer (%s): %w", resp.Status, err))
	}
	if f := env.Body.Fault; f != nil {
		// WCF sends a fault with HTTP 500. It may be passing (a restart, an
		// overload), so it is retried like any 5xx; Ascio's own errors
		// come as ResultCodes.
		return resp.StatusCode, &Error{Op: op, HTTPStatus: resp.StatusCode, Temporary: true,
			Fault: c.redact(strings.TrimSpace(f.Code + ": " + f.String))}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, answerError(op, resp.StatusCode, fmt.Errorf("HTTP %s without a SOAP fault", resp.Status))
	}
	if err := xml.Unmarshal(env.Body.Inner, out); err != nil {
		return resp.StatusCode, answerError(op, resp.StatusCode, fmt.Errorf("decoding %sResponse: %w", op, err))
	}
	return resp.StatusCode, nil
}

// answerError is an answer errpd could not use: temporary when the server
// said 5xx (a proxy's error page), permanent otherwise.
func answerError(op string, status int, err error) error {
	return &Error{Op: op, HTTPStatus: status, Temporary: status >= 500, Err: err}
}

func notFound(op string, status int, what string) error {
	return &Error{Op: op, HTTPStatus: status, Result: Result{Code: 404, Message: what + " not found"}}
}

func (c *Client) redact(s string) string {
	if p := c.Password.Reveal(); len(p) >= 4 {
		s = strings.ReplaceAll(s, p, "[redacted]")
	}
	return s
}

// result copies Ascio's answer, with the password masked: Ascio's texts
// are not expected to echo the request, but if one ever does, the password
// must not reach a log or a report through it.
func (c *Client) result(w wireResult) Result {
	r := Result{Code: w.Code, Message: c.redact(w.Message)}
	for _, e := range w.Errors {
		r.Errors = append(r.Errors, c.redact(e))
	}
	return r
}

// ErrNoEndpoint is returned by calls on a client with no endpoint.
var ErrNoEndpoint = errors.New("ascio: no endpoint configured")
