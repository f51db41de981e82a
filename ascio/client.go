// Package ascio is errpd's client for Ascio's AWS v3 SOAP API: UploadMessage
// for proof of sent notices (and GetMessages, to check whether a cut-off
// upload arrived), PollQueue, GetQueueMessage and AckQueueMessage
// for the message queue, GetOrder and GetDomain for the facts behind a
// message, and GetDomains (GetDomainByName) for a domain whose handle
// errpd never learnt.
//
// The envelope is written element by element with encoding/xml's escaping
// and sent over net/http, in the fixed order of the WSDL's sequences, with
// the namespace declarations on each payload's root so that the header and
// body validate on their own against Ascio's schemas (see package
// ascio/wsdl). docs/ascio.md says why this is not gosoap. Every call takes
// a context; the client holds no mutable state and is safe for concurrent
// use.
//
// Nothing an answer says is taken on trust: an answer that is not a SOAP
// 1.1 answer to the operation asked, or a success without the element the
// operation is for, is a temporary *Error (ErrProtocol), as are redirects
// (ErrRedirect) and answers over 16 MiB (ErrTooLarge). Text taken from an
// answer is cut to peertext.Max, so nothing downstream stores or logs more.
package ascio

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/peertext"
)

// Namespaces of AWS v3 (shared/reference/ascio/NOTES.md §1-2).
const (
	NSSoap     = "http://schemas.xmlsoap.org/soap/envelope/"
	NSService  = "http://www.ascio.com/2013/02/AscioService" // operation wrappers
	NSData     = "http://www.ascio.com/2013/02"              // data types and the auth header
	NSArrays   = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
	NSInstance = "http://www.w3.org/2001/XMLSchema-instance"
)

// Client calls Ascio. The zero HTTP uses http.DefaultClient; deadlines
// and cancellation come from each call's context. Redirects are never
// followed, whatever HTTP's CheckRedirect says: the request carries the
// password.
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
		wireResult
		MessageID *int `xml:"MessageId"`
	}
	const op = "UploadMessage"
	status, res, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return UploadResult{Result: res}, err
	}
	// MessageId is an xs:int WCF always writes; a success without it
	// leaves open whether Ascio stored the message. The retry asks
	// GetMessages before uploading again.
	if out.MessageID == nil {
		return UploadResult{Result: res}, missing(op, status, "MessageId")
	}
	return UploadResult{Result: res, MessageID: *out.MessageID}, nil
}

// GetMessages lists the messages stored on an order, without attachment
// contents. errpd uses it to find out whether an upload that was cut off
// (a crash, a timeout) reached Ascio, before uploading again.
func (c *Client) GetMessages(ctx context.Context, orderID string) ([]Message, error) {
	var w writer
	w.text("v3:OrderId", orderID)
	w.text("v3:IncludeAttachmentContent", "false")
	var out struct {
		wireResult
		// Messages is nillable (no messages) but always written: a
		// success without it could hide an upload and cause a second.
		Messages *struct {
			List []struct {
				Body    string  `xml:"Body"`
				Created *string `xml:"Created"`
				From    string  `xml:"FromAddress"`
				Subject string  `xml:"Subject"`
				To      string  `xml:"ToAddress"`
				Type    *string `xml:"Type"`
			} `xml:"Message"`
		} `xml:"Messages"`
	}
	const op = "GetMessages"
	status, _, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return nil, err
	}
	if out.Messages == nil {
		return nil, missing(op, status, "Messages")
	}
	var list []Message
	for i, m := range out.Messages.List {
		if m.Created == nil || m.Type == nil {
			return nil, missing(op, status, fmt.Sprintf("Created and Type of message %d", i+1))
		}
		msg := Message{Body: capped(m.Body), From: capped(m.From), Subject: capped(m.Subject),
			To: capped(m.To), Type: MessageType(capped(*m.Type))}
		if msg.Created, err = ParseTime(*m.Created); err != nil {
			return nil, c.malformed(op, status, fmt.Errorf("message %d Created: %w", i+1, err))
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
		wireResult
		TotalCount *int              `xml:"TotalCount"`
		Message    *wireQueueMessage `xml:"Message"`
	}
	const op = "PollQueue"
	status, _, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return nil, err
	}
	// An empty queue is TotalCount 0 and Message nil. A success that
	// says nothing is not an empty queue.
	if out.TotalCount == nil {
		return nil, missing(op, status, "TotalCount")
	}
	if out.Message.null() {
		if *out.TotalCount > 0 {
			return nil, missing(op, status, fmt.Sprintf("Message (TotalCount %d)", *out.TotalCount))
		}
		return nil, nil
	}
	if out.Message.ID == 0 {
		return nil, missing(op, status, "Message Id")
	}
	m := out.Message.message()
	return &m, nil
}

// GetQueueMessage reads one queue message by id. A message Ascio does not
// know (ResultCode 404) is an *Error for which IsNotFound is true.
func (c *Client) GetQueueMessage(ctx context.Context, id int) (QueueMessage, error) {
	var w writer
	w.text("v3:MessageId", strconv.Itoa(id))
	var out struct {
		wireResult
		Message *wireQueueMessage `xml:"Message"`
	}
	const op = "GetQueueMessage"
	status, _, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return QueueMessage{}, err
	}
	if out.Message.null() || out.Message.ID == 0 {
		return QueueMessage{}, missing(op, status, "Message")
	}
	return out.Message.message(), nil
}

// AckQueueMessage removes a message from the queue.
func (c *Client) AckQueueMessage(ctx context.Context, id int) error {
	var w writer
	w.text("v3:MessageId", strconv.Itoa(id))
	var out struct{ wireResult }
	_, _, err := c.call(ctx, "AckQueueMessage", w.Bytes(), &out)
	return err
}

// GetOrder reads an order. An order Ascio does not know (ResultCode 404)
// is an *Error for which IsNotFound is true; a success without the order
// is a temporary protocol error, not "not found": intake would otherwise
// record the message as ignored and acknowledge it.
func (c *Client) GetOrder(ctx context.Context, orderID string) (Order, error) {
	var w writer
	w.text("v3:OrderId", orderID)
	var out struct {
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
	}
	const op = "GetOrder"
	status, _, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return Order{}, err
	}
	in := out.Info
	if in == nil || in.Nil || in.OrderID == "" {
		return Order{}, missing(op, status, "OrderInfo")
	}
	o := Order{
		ID:           capped(in.OrderID),
		Status:       capped(in.Status),
		Type:         capped(in.OrderRequest.Type),
		DomainName:   capped(in.OrderRequest.Domain.Name),
		DomainHandle: capped(in.OrderRequest.Domain.Handle),
		Owner:        in.OrderRequest.Domain.Owner.contact(),
	}
	if in.Created != "" {
		if o.Created, err = ParseTime(in.Created); err != nil {
			return Order{}, c.malformed(op, status, fmt.Errorf("order Created: %w", err))
		}
	}
	return o, nil
}

// GetDomain reads a domain by its handle. A domain Ascio does not know
// (ResultCode 404) is an *Error for which IsNotFound is true.
func (c *Client) GetDomain(ctx context.Context, handle string) (Domain, error) {
	var w writer
	w.text("v3:Handle", handle)
	var out struct {
		wireResult
		Info *wireDomain `xml:"DomainInfo"`
	}
	const op = "GetDomain"
	status, _, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return Domain{}, err
	}
	return c.domain(op, status, out.Info, "DomainInfo")
}

// GetDomainByName reads a domain by its name, for a domain whose handle
// errpd never learnt (one known from the calendar alone): GetDomains with
// ObjectNames holding the one name, first page. A name Ascio does not hold
// (ResultCode 404, or a success listing no domain of that name) is an
// *Error for which IsNotFound is true, as GetDomain's unknown handle is.
func (c *Client) GetDomainByName(ctx context.Context, name string) (Domain, error) {
	var w writer
	// GetDomainsRequest's sequence: ObjectNames first, PageInfo after the
	// criteria errpd does not use. ObjectNames is an ArrayOfstring, in
	// the Arrays namespace, declared here so the payload stays whole.
	w.b.WriteString(`<v3:ObjectNames xmlns:arr="` + NSArrays + `">`)
	w.text("arr:string", name)
	w.close("v3:ObjectNames")
	w.open("v3:PageInfo")
	w.text("v3:PageIndex", "1")
	w.text("v3:PageSize", strconv.Itoa(domainsPage))
	w.close("v3:PageInfo")
	var out struct {
		wireResult
		TotalCount *int `xml:"TotalCount"`
		// DomainInfos is nillable (none) but always written, as is
		// TotalCount: a success without them is not "no such domain".
		Infos *struct {
			Nil  bool          `xml:"nil,attr"`
			List []*wireDomain `xml:"DomainInfo"`
		} `xml:"DomainInfos"`
	}
	const op = "GetDomains"
	status, res, err := c.call(ctx, op, w.Bytes(), &out)
	if err != nil {
		return Domain{}, err
	}
	if out.TotalCount == nil {
		return Domain{}, missing(op, status, "TotalCount")
	}
	if out.Infos == nil {
		return Domain{}, missing(op, status, "DomainInfos")
	}
	if *out.TotalCount > 0 && (out.Infos.Nil || len(out.Infos.List) == 0) {
		return Domain{}, missing(op, status, fmt.Sprintf("DomainInfos (TotalCount %d)", *out.TotalCount))
	}
	for i, in := range out.Infos.List {
		d, err := c.domain(op, status, in, fmt.Sprintf("DomainInfo %d", i+1))
		if err != nil {
			return Domain{}, err
		}
		if strings.EqualFold(d.Name, name) {
			return d, nil
		}
	}
	// Asked by one name, Ascio lists that domain or none. A list without
	// it is read as GetDomain's 404 is: the Result says so, with the
	// ResultCode Ascio actually sent.
	return Domain{}, &Error{Op: op, HTTPStatus: status, Result: Result{Code: 404,
		Message: fmt.Sprintf("no domain named %q among the %d listed (Ascio's ResultCode %d, read as not found)",
			peertext.Cap(name), len(out.Infos.List), res.Code)}}
}

// domainsPage is the PageSize of GetDomainByName: one name matches one
// domain, the rest is room for an answer that lists more than asked.
const domainsPage = 10

// domain checks one DomainInfo for the elements errpd needs and copies
// it, capped.
func (c *Client) domain(op string, status int, in *wireDomain, what string) (Domain, error) {
	if in == nil || in.Nil || in.Name == "" {
		return Domain{}, missing(op, status, what)
	}
	// Expires is nillable (Ascio knows no expiry: intake records the
	// message as unusable) but always written; left out, errpd would take
	// a broken answer for a domain without expiry.
	if in.Expires == nil {
		return Domain{}, missing(op, status, what+" Expires")
	}
	d := Domain{Name: capped(in.Name), Handle: capped(in.Handle), Status: capped(in.Status), Owner: in.Owner.contact()}
	for _, f := range []struct {
		s   string
		t   *time.Time
		key string
	}{{in.Created, &d.Created, "Created"}, {in.Expires.Value, &d.Expires, "Expires"}} {
		if f.s == "" {
			continue
		}
		var err error
		if *f.t, err = ParseTime(f.s); err != nil {
			return Domain{}, c.malformed(op, status, fmt.Errorf("domain %s: %w", f.key, err))
		}
	}
	return d, nil
}

// call sends one operation and decodes its Result element into out. It
// returns the HTTP status and Ascio's Result (redacted and capped), with
// an *Error for a ResultCode other than success. Errors never contain the
// request.
func (c *Client) call(ctx context.Context, op string, payload []byte, out result) (int, Result, error) {
	if c.Endpoint == "" {
		return 0, Result{}, &Error{Op: op, Err: ErrNoEndpoint}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(c.envelope(op, payload)))
	if err != nil {
		return 0, Result{}, &Error{Op: op, Err: err}
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	// The WSDL's soapAction is the bare operation name, not a URI.
	req.Header.Set("SOAPAction", `"`+op+`"`)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// A *url.Error names the method and URL (net/http strips any
		// password from it), never the body.
		return 0, Result{}, &Error{Op: op, Temporary: true, Err: err}
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	if status >= 300 && status < 400 {
		// Following it would send the body, password included, to
		// wherever Location points. An operator decides whether the
		// endpoint moved.
		loc := peertext.Cap(c.redact(resp.Header.Get("Location")))
		return status, Result{}, &Error{Op: op, HTTPStatus: status, Temporary: true,
			Err: fmt.Errorf("%w: %s to %q; set ascio.endpoint if Ascio moved", ErrRedirect, resp.Status, loc)}
	}
	data, err := readAnswer(resp.Body)
	if err != nil {
		return status, Result{}, &Error{Op: op, HTTPStatus: status, Temporary: true, Err: err}
	}
	fault, derr := decode(data, op, out)
	if fault != nil {
		// WCF sends a fault with HTTP 500. It may be passing (a restart, an
		// overload), so it is retried like any 5xx; Ascio's own errors
		// come as ResultCodes.
		return status, Result{}, &Error{Op: op, HTTPStatus: status, Temporary: true,
			Fault: peertext.Cap(c.redact(strings.TrimSpace(fault.Code + ": " + fault.String)))}
	}
	if status >= 300 {
		// A proxy's error page, an IP not yet allowed, a wrong path: an
		// operator fixes these, and the step waits for it.
		return status, Result{}, &Error{Op: op, HTTPStatus: status, Temporary: true,
			Err: fmt.Errorf("HTTP %s without a SOAP fault; %s", resp.Status, c.excerpt(data))}
	}
	if derr != nil {
		return status, Result{}, &Error{Op: op, HTTPStatus: status, Temporary: true,
			Err: fmt.Errorf("%w: %s; %s", ErrProtocol, peertext.Cap(c.redact(derr.Error())), c.excerpt(data))}
	}
	w := out.wire()
	if w.Code == nil {
		return status, Result{}, missing(op, status, "ResultCode")
	}
	r := c.result(*w)
	return status, r, classify(op, status, r)
}

// envelope wraps an operation's payload with the security header.
func (c *Client) envelope(op string, payload []byte) []byte {
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
	return b.Bytes()
}

// httpClient is the caller's client (or the default one) with redirects
// turned off. A shallow copy: the transport and its connections are
// shared.
func (c *Client) httpClient() *http.Client {
	var hc http.Client
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// missing is a success answer without an element errpd needs. The XSD
// makes every element optional, as WCF exports any schema; WCF writes each
// one all the same (nil when empty), so an answer without one is broken
// or not Ascio's, and errpd asks again later instead of acting on it.
func missing(op string, status int, what string) error {
	return &Error{Op: op, HTTPStatus: status, Temporary: true,
		Err: fmt.Errorf("%w: success answer without %s", ErrProtocol, what)}
}

// malformed is a success answer with a value errpd cannot read. The
// value is quoted in err, so it is redacted and capped like Ascio's texts.
func (c *Client) malformed(op string, status int, err error) error {
	return &Error{Op: op, HTTPStatus: status, Temporary: true,
		Err: fmt.Errorf("%w: %s", ErrProtocol, peertext.Cap(c.redact(err.Error())))}
}

func (c *Client) redact(s string) string {
	if p := c.Password.Reveal(); len(p) >= 4 {
		s = strings.ReplaceAll(s, p, "[redacted]")
	}
	return s
}

// excerpt is the start of an answer that could not be used, for the
// operator (a proxy's error page says what went wrong), redacted and
// capped.
func (c *Client) excerpt(data []byte) string {
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "empty body"
	}
	return fmt.Sprintf("body %q", peertext.CapN(c.redact(s), excerptMax))
}

// result copies Ascio's answer, with the password masked (Ascio's texts
// are not expected to echo the request, but if one ever does, the password
// must not reach a log or a report through it) and capped: the message to
// peertext.Max, and Errors, all entries together, to peertext.Max too,
// so that a thousand short entries cannot do what one long one cannot.
func (c *Client) result(w wireResult) Result {
	r := Result{Code: *w.Code, Message: peertext.Cap(c.redact(w.Message))}
	budget := peertext.Max
	for i, e := range w.Errors {
		if budget <= 0 {
			r.Errors = append(r.Errors, fmt.Sprintf("…[cut: %d of %d errors kept]", i, len(w.Errors)))
			break
		}
		e = peertext.CapN(c.redact(e), budget)
		budget -= len(e)
		r.Errors = append(r.Errors, e)
	}
	return r
}

// ErrNoEndpoint is returned by calls on a client with no endpoint.
var ErrNoEndpoint = errors.New("ascio: no endpoint configured")

// Sentinels for answers errpd does not use; each comes as a temporary
// *Error, so the step waits and the operator is told.
var (
	// ErrProtocol: not a SOAP 1.1 answer to the operation asked (not XML,
	// cut short, another envelope or payload), or a success answer
	// without an element the operation is for.
	ErrProtocol = errors.New("not an Ascio answer")
	// ErrRedirect: the endpoint answered 3xx; it is not followed.
	ErrRedirect = errors.New("redirect not followed")
	// ErrTooLarge: the answer is longer than maxAnswer.
	ErrTooLarge = errors.New("answer too large")
)
