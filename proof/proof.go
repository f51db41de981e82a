// Package proof uploads a sent notice to Ascio as proof, with AWS v3's
// UploadMessage over SOAP 1.1, against the domain's Autorenew/Autodelete
// order. The request is built from the stored bytes of the message as sent,
// so that what Ascio holds is what the registrant received.
//
// The SOAP envelope is written with encoding/xml escaping over net/http
// rather than through gosoap: see docs/ascio.md.
package proof

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/jordan-wright/email"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
)

// Namespaces of Ascio AWS v3 (NOTES.md §1-2).
const (
	nsSoap    = "http://schemas.xmlsoap.org/soap/envelope/"
	nsService = "http://www.ascio.com/2013/02/AscioService"
	nsData    = "http://www.ascio.com/2013/02"
)

// ErrNotUploadable is returned for the suspension notice, for which Ascio
// has no message type.
var ErrNotUploadable = errors.New("Ascio has no message type for the suspension notice; the stored message is the proof")

// Error is an upload Ascio refused or that did not get through.
type Error struct {
	Code      int      // Ascio's ResultCode, or the HTTP status when there was none
	Msg       string   // ResultMessage, fault string or network error
	Errors    []string // Ascio's Errors list
	Permanent bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("ascio %d %s", e.Code, e.Msg)
	if len(e.Errors) > 0 {
		s += ": " + strings.Join(e.Errors, "; ")
	}
	return s
}

// IsPermanent reports whether err is an upload failure retrying cannot fix.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// Client calls UploadMessage. It is safe for concurrent use.
type Client struct {
	Endpoint string
	Account  string
	Password config.Secret
	HTTP     *http.Client
}

// MessageType maps a notice to Ascio's MessageType.
func MessageType(n scheduler.Notice) (string, error) {
	switch n {
	case scheduler.Reminder1:
		return "ExpiryReminder1", nil
	case scheduler.Reminder2:
		return "ExpiryReminder2", nil
	case scheduler.Reminder3:
		return "ExpiryReminder3", nil
	}
	return "", ErrNotUploadable
}

// Request builds the SOAP envelope for one upload. Exported for tests that
// validate it against Ascio's schema.
func (c *Client) Request(orderID string, n scheduler.Notice, raw []byte) ([]byte, error) {
	typ, err := MessageType(n)
	if err != nil {
		return nil, err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading the stored message: %w", err)
	}
	parsed, err := email.NewEmailFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading the stored message: %w", err)
	}
	created, err := msg.Header.Date()
	if err != nil {
		return nil, fmt.Errorf("stored message has no valid Date: %w", err)
	}
	from, to := addrs(msg.Header.Get("From")), addrs(msg.Header.Get("To"))
	// Ascio asks for the subject as 7-bit ASCII or base64: the header as
	// stored, with its RFC 2047 encoded words, is 7-bit.
	subject := unfold(msg.Header.Get("Subject"))
	body := string(parsed.Text)
	if body == "" {
		body = string(parsed.HTML)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + nsSoap + `"><soapenv:Header>`)
	b.WriteString(`<v3:SecurityHeaderDetails xmlns:v3="` + nsData + `">`)
	elem(&b, "v3:Account", c.Account)
	elem(&b, "v3:Password", c.Password.Reveal())
	b.WriteString(`</v3:SecurityHeaderDetails></soapenv:Header><soapenv:Body>`)
	b.WriteString(`<service:UploadMessage xmlns:service="` + nsService + `" xmlns:v3="` + nsData + `"><service:request>`)
	elem(&b, "v3:OrderId", orderID)
	b.WriteString(`<v3:Message><v3:Attachments><v3:Attachment>`)
	elem(&b, "v3:FileName", "notice.eml")
	elem(&b, "v3:Content", base64.StdEncoding.EncodeToString(raw))
	b.WriteString(`</v3:Attachment></v3:Attachments>`)
	elem(&b, "v3:Body", body)
	elem(&b, "v3:Created", created.UTC().Format(time.RFC3339))
	elem(&b, "v3:FromAddress", from)
	elem(&b, "v3:Subject", subject)
	elem(&b, "v3:ToAddress", to)
	elem(&b, "v3:Type", typ)
	b.WriteString(`</v3:Message></service:request></service:UploadMessage></soapenv:Body></soapenv:Envelope>`)
	return b.Bytes(), nil
}

func elem(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

func unfold(s string) string { return strings.Join(strings.Fields(s), " ") }

// addrs returns the bare addresses of an address header.
func addrs(h string) string {
	list, err := mail.ParseAddressList(h)
	if err != nil {
		return unfold(h)
	}
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return strings.Join(out, ",")
}

// Upload sends one message as proof and returns Ascio's answer.
func (c *Client) Upload(ctx context.Context, orderID string, n scheduler.Notice, raw []byte) (string, error) {
	body, err := c.Request(orderID, n, raw)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"UploadMessage"`)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// A *url.Error names the URL, never the body: no password in it.
		return "", &Error{Msg: err.Error()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", &Error{Code: resp.StatusCode, Msg: err.Error()}
	}
	var env envelope
	if err := xml.Unmarshal(data, &env); err != nil {
		return "", &Error{Code: resp.StatusCode, Msg: "unreadable answer: " + resp.Status, Permanent: resp.StatusCode < 500}
	}
	if f := env.Body.Fault; f != nil {
		// WCF answers a fault with HTTP 500; a fault may be passing (a
		// server restart) so it is retried like any 5xx.
		return "", &Error{Code: resp.StatusCode, Msg: "SOAP fault " + f.Code + ": " + f.String}
	}
	r := env.Body.Response.Result
	if r == nil {
		return "", &Error{Code: resp.StatusCode, Msg: "no UploadMessageResult in the answer", Permanent: resp.StatusCode < 500}
	}
	answer := strconv.Itoa(r.ResultCode) + " " + r.ResultMessage
	switch r.ResultCode {
	case 200, 201, 413:
		return answer + " (MessageId " + r.MessageID + ")", nil
	case 554:
		return "", &Error{Code: r.ResultCode, Msg: r.ResultMessage, Errors: r.Errors}
	}
	return "", &Error{Code: r.ResultCode, Msg: r.ResultMessage, Errors: r.Errors, Permanent: true}
}

type envelope struct {
	Body struct {
		Fault *struct {
			Code   string `xml:"faultcode"`
			String string `xml:"faultstring"`
		} `xml:"Fault"`
		Response struct {
			Result *struct {
				ResultCode    int      `xml:"ResultCode"`
				ResultMessage string   `xml:"ResultMessage"`
				Errors        []string `xml:"Errors>string"`
				MessageID     string   `xml:"MessageId"`
			} `xml:"UploadMessageResult"`
		} `xml:"UploadMessageResponse"`
	} `xml:"Body"`
}
