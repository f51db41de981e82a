package ascio_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
)

// fuzzPassword is the client's password in the fuzz targets; no error may
// carry it, whatever the answer holds.
const fuzzPassword = "fuzz-Pa55word-9Q"

// canned answers every request with one status and body, in memory: the
// fuzz targets decode millions of answers.
type canned struct {
	status int
	body   []byte
}

func (c canned) RoundTrip(req *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, req.Body)
	req.Body.Close()
	return &http.Response{StatusCode: c.status, Status: strconv.Itoa(c.status) + " " + http.StatusText(c.status),
		Header: http.Header{"Content-Type": {"text/xml; charset=utf-8"}}, Body: io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)), Request: req}, nil
}

func cannedClient(status int, body []byte) *ascio.Client {
	return &ascio.Client{Endpoint: "http://ascio.invalid/v3/AscioService.svc", Account: "acct",
		Password: config.Secret(fuzzPassword), HTTP: &http.Client{Transport: canned{status, body}}}
}

// answerOps are the operations an answer can be decoded as; each returns what
// it decoded.
type opCall struct {
	name string
	call func(*ascio.Client) (any, error)
}

var answerOps = []opCall{
	{"UploadMessage", func(c *ascio.Client) (any, error) {
		return c.UploadMessage(context.Background(), "O1", ascio.Message{Body: "b", Type: ascio.ExpiryReminder1})
	}},
	{"GetMessages", func(c *ascio.Client) (any, error) { return c.GetMessages(context.Background(), "O1") }},
	{"PollQueue", func(c *ascio.Client) (any, error) { return c.PollQueue(context.Background(), ascio.MessageToPartner) }},
	{"GetQueueMessage", func(c *ascio.Client) (any, error) { return c.GetQueueMessage(context.Background(), 7) }},
	{"AckQueueMessage", func(c *ascio.Client) (any, error) { return nil, c.AckQueueMessage(context.Background(), 7) }},
	{"GetOrder", func(c *ascio.Client) (any, error) { return c.GetOrder(context.Background(), "O1") }},
	{"GetDomain", func(c *ascio.Client) (any, error) { return c.GetDomain(context.Background(), "DOM-1") }},
}

// envelope wraps a response payload as Ascio's WCF service does.
func envelope(payload string) []byte {
	return []byte(`<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="` + ascio.NSSoap + `"><s:Body>` + payload + `</s:Body></s:Envelope>`)
}

// result opens an operation's answer with its AbstractResponse part.
func result(op string, code int, msg string, errs ...string) string {
	var b strings.Builder
	b.WriteString(`<` + op + `Response xmlns="` + ascio.NSService + `"><` + op + `Result xmlns:a="` + ascio.NSData + `" xmlns:i="` + ascio.NSInstance + `">`)
	text(&b, "a:ResultCode", strconv.Itoa(code))
	text(&b, "a:ResultMessage", msg)
	b.WriteString(`<a:Errors xmlns:b="` + ascio.NSArrays + `">`)
	for _, e := range errs {
		text(&b, "b:string", e)
	}
	b.WriteString(`</a:Errors>`)
	return b.String()
}

func closeResult(op string) string { return `</` + op + `Result></` + op + `Response>` }

func text(b *strings.Builder, name, v string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(v))
	b.WriteString("</" + name + ">")
}

func timeText(b *strings.Builder, name string, t time.Time) {
	if !t.IsZero() {
		text(b, name, t.Format(time.RFC3339Nano))
	}
}

func contact(b *strings.Builder, name string, c ascio.Contact) {
	b.WriteString("<" + name + ">")
	text(b, "a:Handle", c.Handle)
	text(b, "a:FirstName", c.FirstName)
	text(b, "a:LastName", c.LastName)
	text(b, "a:OrgName", c.OrgName)
	text(b, "a:CountryCode", c.CountryCode)
	text(b, "a:Email", c.Email)
	b.WriteString("</" + name + ">")
}

func queueMessage(b *strings.Builder, m ascio.QueueMessage) {
	b.WriteString("<a:Message>")
	if len(m.ErrorCodes) > 0 {
		b.WriteString("<a:ErrorCodes>")
		for _, e := range m.ErrorCodes {
			b.WriteString("<a:ErrorCode>")
			text(b, "a:Code", e.Code)
			text(b, "a:Message", e.Message)
			b.WriteString("</a:ErrorCode>")
		}
		b.WriteString("</a:ErrorCodes>")
	}
	text(b, "a:Id", strconv.Itoa(m.ID))
	text(b, "a:Message", m.Text)
	text(b, "a:MessageType", m.MessageType)
	text(b, "a:ObjectHandle", m.ObjectHandle)
	text(b, "a:ObjectName", m.ObjectName)
	text(b, "a:ObjectType", m.ObjectType)
	text(b, "a:OrderId", m.OrderID)
	text(b, "a:OrderStatus", m.OrderStatus)
	text(b, "a:OrderType", m.OrderType)
	b.WriteString("</a:Message>")
}

// encode writes a decoded value back as the answer it came from, in
// Ascio's layout; ok is false for the operations with nothing to encode.
func encode(op string, v any) (body []byte, ok bool) {
	var b strings.Builder
	b.WriteString(result(op, 200, "OK"))
	switch v := v.(type) {
	case ascio.UploadResult:
		text(&b, "a:MessageId", strconv.Itoa(v.MessageID))
	case []ascio.Message:
		b.WriteString("<a:Messages>")
		for _, m := range v {
			b.WriteString("<a:Message>")
			text(&b, "a:Body", m.Body)
			timeText(&b, "a:Created", m.Created)
			text(&b, "a:FromAddress", m.From)
			text(&b, "a:Subject", m.Subject)
			text(&b, "a:ToAddress", m.To)
			text(&b, "a:Type", string(m.Type))
			b.WriteString("</a:Message>")
		}
		b.WriteString("</a:Messages>")
	case *ascio.QueueMessage: // PollQueue: TotalCount, then the oldest message
		if v == nil {
			text(&b, "a:TotalCount", "0")
			b.WriteString(`<a:Message i:nil="true"/>`)
		} else {
			text(&b, "a:TotalCount", "1")
			queueMessage(&b, *v)
		}
	case ascio.QueueMessage:
		queueMessage(&b, v)
	case ascio.Order:
		b.WriteString("<a:OrderInfo>")
		text(&b, "a:OrderId", v.ID)
		text(&b, "a:Status", v.Status)
		timeText(&b, "a:Created", v.Created)
		b.WriteString(`<a:OrderRequest i:type="a:DomainOrderRequest">`)
		text(&b, "a:Type", v.Type)
		b.WriteString("<a:Domain>")
		text(&b, "a:Name", v.DomainName)
		text(&b, "a:Handle", v.DomainHandle)
		contact(&b, "a:Owner", v.Owner)
		b.WriteString("</a:Domain></a:OrderRequest></a:OrderInfo>")
	case ascio.Domain:
		b.WriteString("<a:DomainInfo>")
		text(&b, "a:DomainName", v.Name)
		text(&b, "a:DomainHandle", v.Handle)
		text(&b, "a:Status", v.Status)
		timeText(&b, "a:Created", v.Created)
		timeText(&b, "a:Expires", v.Expires)
		contact(&b, "a:Owner", v.Owner)
		b.WriteString("</a:DomainInfo>")
	default:
		return nil, false
	}
	b.WriteString(closeResult(op))
	return envelope(b.String()), true
}

// FuzzAnswer decodes any answer as each operation's. Properties: no
// panic; a failure is an *ascio.Error naming the operation and never
// holding the password in Ascio's texts; a decoded answer, written back in Ascio's layout,
// decodes to the same value.
func FuzzAnswer(f *testing.F) {
	dom := ascio.Domain{Name: "bücher.example", Handle: "DOM-1", Status: "Active", Created: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC),
		Expires: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), Owner: ascio.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.net", CountryCode: "GB"}}
	if b, ok := encode("GetDomain", dom); ok {
		f.Add(uint8(6), uint16(200), b)
	}
	ord := ascio.Order{ID: "O1", Status: "Completed", Type: "AutoRenew", Created: time.Date(2026, 1, 25, 9, 0, 0, 0, time.UTC), DomainName: "example.com", DomainHandle: "DOM-1"}
	if b, ok := encode("GetOrder", ord); ok {
		f.Add(uint8(5), uint16(200), b)
	}
	qm := ascio.QueueMessage{ID: 7, Text: "Autorenew_Domain example.com", MessageType: "MessageToPartner", ObjectHandle: "DOM-1",
		ObjectName: "example.com", ObjectType: "DomainType", OrderID: "O1", OrderStatus: "Completed", OrderType: "AutoRenew",
		ErrorCodes: []ascio.ErrorCode{{Code: "E1", Message: "<&>"}}}
	if b, ok := encode("GetQueueMessage", qm); ok {
		f.Add(uint8(3), uint16(200), b)
		f.Add(uint8(2), uint16(200), bytes.ReplaceAll(b, []byte("GetQueueMessage"), []byte("PollQueue")))
	}
	msgs := []ascio.Message{{Body: "Dear registrant,\r\n", Created: time.Date(2026, 1, 30, 9, 15, 0, 0, time.UTC), From: "a@b.example", Subject: "s", To: "c@d.example", Type: ascio.ExpiryReminder1}}
	if b, ok := encode("GetMessages", msgs); ok {
		f.Add(uint8(1), uint16(200), b)
	}
	f.Add(uint8(6), uint16(200), envelope(result("GetDomain", 200, "OK")+`<a:DomainInfo><a:DomainName>x.example</a:DomainName><a:Expires>2027-03-01T00:00:00</a:Expires></a:DomainInfo>`+closeResult("GetDomain")))
	f.Add(uint8(6), uint16(200), envelope(result("GetDomain", 404, "Domain not found", "Domain DOM-1 not found")+`<a:DomainInfo i:nil="true"/>`+closeResult("GetDomain")))
	f.Add(uint8(6), uint16(200), envelope(result("GetDomain", 200, "OK")+`<a:DomainInfo><a:DomainName>x.example</a:DomainName><a:Expires>31.12.2027</a:Expires></a:DomainInfo>`+closeResult("GetDomain")))
	f.Add(uint8(4), uint16(200), envelope(result("AckQueueMessage", 554, "Temporary error, try again later")+closeResult("AckQueueMessage")))
	f.Add(uint8(0), uint16(200), envelope(result("UploadMessage", 401, "Authorization failed for "+fuzzPassword, fuzzPassword)+closeResult("UploadMessage")))
	f.Add(uint8(0), uint16(500), envelope(`<s:Fault><faultcode>a:InternalServiceFault</faultcode><faultstring xml:lang="en-US">bad password `+fuzzPassword+`</faultstring></s:Fault>`))
	// A decoding error quotes the answer: here, an element named after the
	// password (found by the fuzzer before decoding errors were redacted).
	f.Add(uint8(0), uint16(200), envelope(`<x></`+fuzzPassword+`>`))
	f.Add(uint8(5), uint16(200), envelope(result("GetOrder", 200, "OK")+`<a:OrderInfo><a:OrderId>O1</a:OrderId><a:Created>`+fuzzPassword+`</a:Created></a:OrderInfo>`+closeResult("GetOrder")))
	f.Add(uint8(0), uint16(502), []byte("<html><body>Bad Gateway</body></html>"))
	f.Add(uint8(2), uint16(200), envelope(result("PollQueue", 200, "OK")+`<a:TotalCount>0</a:TotalCount><a:Message i:nil="true"/>`+closeResult("PollQueue")))
	f.Add(uint8(3), uint16(200), []byte(""))
	f.Add(uint8(3), uint16(200), []byte("<"))
	f.Fuzz(func(t *testing.T, opIndex uint8, status uint16, body []byte) {
		op := answerOps[int(opIndex)%len(answerOps)]
		code := int(status)
		if code < 100 || code > 599 {
			code = 100 + code%500
		}
		got, err := op.call(cannedClient(code, body))
		if err != nil {
			var ae *ascio.Error
			if !errors.As(err, &ae) || ae.Op != op.name {
				t.Fatalf("%s: error %T %v is not an *ascio.Error naming the operation", op.name, err, err)
			}
			// Nothing in the error holds the password: Ascio's texts
			// and decoding errors that quote the answer are redacted.
			if strings.Contains(ae.Error(), fuzzPassword) {
				t.Fatalf("%s: the error holds the password: %v", op.name, err)
			}
			return
		}
		again, ok := encode(op.name, got)
		if !ok {
			return
		}
		back, err := op.call(cannedClient(200, again))
		if err != nil {
			t.Fatalf("%s: %+v written back does not decode: %v\n%s", op.name, got, err, again)
		}
		if !reflect.DeepEqual(got, back) {
			t.Fatalf("%s: decoded %+v; written back it decodes as %+v", op.name, got, back)
		}
	})
}

// FuzzParseTime: no panic; an accepted time is UTC and, written as RFC
// 3339, reads back as the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2027-03-01T00:00:00", "2027-03-01T00:00:00Z", "2027-03-01T00:00:00.1234567+01:00", " 2027-03-01T00:00:00 ",
		"2027-03-01", "0001-01-01T00:00:00", "9999-12-31T23:59:59.9999999-14:00", "2027-02-29T00:00:00", "2027-03-01T24:00:00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ascio.ParseTime(s)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not UTC", s, got)
		}
		if got.Year() < 0 || got.Year() > 9999 {
			return // RFC 3339 cannot write it
		}
		back, err := ascio.ParseTime(got.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(got) {
			t.Fatalf("ParseTime(%q) = %v; written back it reads %v, %v", s, got, back, err)
		}
	})
}
