// Package ascioteststand is a stand-in for Ascio's AWS v3 SOAP endpoint, for
// tests (Ascio cannot be reached from them) and, through its command
// cmd/ascio-standin, for end-to-end runs of errpd serve. It speaks the
// operations errpd uses: UploadMessage, GetMessages, PollQueue,
// GetQueueMessage, AckQueueMessage, GetOrder, GetDomain and GetDomains.
//
// It validates every request it receives (header and body payloads) and
// every answer it writes against Ascio's schemas with xmllint, and keeps
// the failures for the test to assert on. It records uploads and acks,
// holds Ascio's own sends of reminders the partner did not upload (which
// GetMessages lists, ownsend.go), holds a queue of messages and the orders
// and domains behind them, and can be scripted per operation to answer 554,
// 401, 405, a SOAP fault with HTTP 500, to stall, or to do the work and
// lose the answer; and, as a hostile peer, to redirect, cut its answer
// short, answer HTML or nothing with 200, leave out the element asked for,
// send a 3 MB fault or stream without end.
package ascioteststand

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
)

// Operation names, as in the SOAPAction header.
const (
	OpUploadMessage   = "UploadMessage"
	OpPollQueue       = "PollQueue"
	OpGetQueueMessage = "GetQueueMessage"
	OpAckQueueMessage = "AckQueueMessage"
	OpGetOrder        = "GetOrder"
	OpGetDomain       = "GetDomain"
	OpGetDomains      = "GetDomains"
	OpGetMessages     = "GetMessages"
)

// Answer scripts the reply to one request. Positive values are ResultCodes.
type Answer int

const (
	OK           Answer = 200
	Created      Answer = 201 // success, as Ascio's own clients read it
	TooLarge     Answer = 413 // success, as Ascio's own clients read it
	Denied       Answer = 401 // authorization failed
	AccessDenied Answer = 405
	NotFound     Answer = 404
	TryLater     Answer = 554
	Fault        Answer = -500 // a SOAP fault with HTTP 500, as WCF sends it
	Stall        Answer = -1   // hold the request until the client gives up
	// Lost carries the request out, then holds the answer until the client
	// gives up: Ascio did the work but the answer never arrived.
	Lost Answer = -2
)

// Hostile answers: what a broken proxy, a hijacked DNS name or a failing
// Ascio can send instead of an answer. None of them is a valid answer, so
// a client must treat each as a temporary failure (docs/ascio.md). Only
// Truncated does the work; the others change nothing at the stand-in.
const (
	// Redirect answers HTTP 307 with a Location (SetRedirect; by default
	// a host that does not resolve). A client that follows it sends the
	// request, password included, to that other host.
	Redirect Answer = -307
	// Truncated does the work, then sends only the first half of a valid
	// answer (with a Content-Length that matches what is sent).
	Truncated Answer = -3
	// HTML answers HTTP 200 with a maintenance page in text/html.
	HTML Answer = -4
	// Empty answers HTTP 200 with no body at all.
	Empty Answer = -5
	// WrongNamespace answers HTTP 200 with a well-formed answer in a SOAP
	// 1.2 envelope, which an AWS v3 client must not read as SOAP 1.1.
	WrongNamespace Answer = -6
	// Missing answers ResultCode 200 without the element the operation
	// is for: no OrderInfo (GetOrder), DomainInfo (GetDomain), TotalCount
	// and DomainInfos (GetDomains), Message
	// (GetQueueMessage), TotalCount and Message (PollQueue), Messages
	// (GetMessages), MessageId (UploadMessage), and for AckQueueMessage
	// no ResultCode. The answer still validates: the XSD makes every
	// element optional.
	Missing Answer = -7
	// HugeFault answers a SOAP fault with HTTP 500 whose faultstring is
	// HugeText bytes long.
	HugeFault Answer = -8
	// HugeResult answers ResultCode 554 with a ResultMessage of HugeText
	// bytes and HugeErrors Errors of 1 KiB each.
	HugeResult Answer = -9
	// Endless answers HTTP 200 and streams the start of an envelope
	// followed by whitespace until the client hangs up.
	Endless Answer = -10
)

// Sizes of the huge answers: the 3 MB faultstring.
const (
	HugeText   = 3 << 20
	HugeErrors = 1000
)

// DefaultRedirect is where Redirect points unless SetRedirect says
// otherwise: a name that never resolves (RFC 2606 .invalid).
const DefaultRedirect = "http://ascio-elsewhere.invalid/v3/AscioService.svc"

var answerNames = map[string]Answer{
	"stall": Stall, "lost": Lost, "fault": Fault, "redirect": Redirect, "truncated": Truncated,
	"html": HTML, "empty": Empty, "wrong-namespace": WrongNamespace, "missing": Missing,
	"huge-fault": HugeFault, "huge-result": HugeResult, "endless": Endless,
}

// String is the answer's name as ParseAnswer reads it, or its ResultCode.
func (a Answer) String() string {
	for name, b := range answerNames {
		if a == b {
			return name
		}
	}
	return strconv.Itoa(int(a))
}

// ParseAnswer reads an answer as cmd/ascio-standin's -script takes it: a
// ResultCode (554), a negative number of a scripted behaviour (-500), or
// its name (fault, stall, lost, redirect, truncated, html, empty,
// wrong-namespace, missing, huge-fault, huge-result, endless).
func ParseAnswer(s string) (Answer, error) {
	s = strings.TrimSpace(s)
	if a, ok := answerNames[strings.ToLower(s)]; ok {
		return a, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("answer %q is neither a ResultCode nor one of %s", s, strings.Join(slices.Sorted(maps.Keys(answerNames)), ", "))
	}
	return Answer(n), nil
}

// Upload is one UploadMessage the stand-in accepted.
type Upload struct {
	OrderID     string
	Type        string
	From        string
	To          string
	Subject     string
	Body        string
	Created     string
	Attachments []ascio.Attachment
	Envelope    []byte // the request as received
}

// Server is a stand-in. Its zero value is not usable; use New or Start.
type Server struct {
	// Account and Password, when Account is set, are the credentials
	// every request must carry; others get ResultCode 401.
	Account  string
	Password string

	schemas *Schemas
	stop    chan struct{}
	once    sync.Once

	mu       sync.Mutex
	script   map[string][]Answer
	uploads  []Upload
	own      []Upload             // Ascio's own sends, held on the order (ownsend.go)
	queue    []ascio.QueueMessage // not yet acknowledged, oldest first
	acked    []int
	orders   map[string]ascio.Order
	domains  map[string]ascio.Domain // by handle
	calls    []string
	invalid  []string
	envs     map[string][]byte // last envelope received per operation
	redirect string            // Location of a Redirect answer
}

// New returns a stand-in whose schemas live in a temporary folder; Close
// removes it. It fails with ErrNoXMLLint when xmllint is missing.
func New() (*Server, error) {
	sch, err := WriteSchemas()
	if err != nil {
		return nil, err
	}
	return &Server{
		schemas: sch,
		stop:    make(chan struct{}),
		script:  map[string][]Answer{},
		orders:  map[string]ascio.Order{},
		domains: map[string]ascio.Domain{},
		envs:    map[string][]byte{},
	}, nil
}

// LowPriority runs the schema checks at the lowest CPU priority, so that
// in a benchmark the stand-in takes only the CPU errpd leaves idle, as
// Ascio, on its own machines, would.
func (s *Server) LowPriority() { s.schemas.Nice.Store(true) }

// Release lets stalled requests return.
func (s *Server) Release() { s.once.Do(func() { close(s.stop) }) }

// Close releases stalled requests and removes the schemas. Stop the HTTP
// server in between (Release, stop serving, Close) so that no request is
// being validated when the schemas go.
func (s *Server) Close() error {
	s.Release()
	return s.schemas.Close()
}

// Start runs a stand-in on a loopback port for one test and returns it with
// its endpoint URL. The test is skipped when xmllint is missing. At the
// end of the test it fails the test if any request or answer did not
// validate.
func Start(t testing.TB) (*Server, string) {
	t.Helper()
	s, err := New()
	if err == ErrNoXMLLint {
		t.Skip("skipping: xmllint not found; install libxml2-utils to run the Ascio schema checks")
	}
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Release() // first, so that stalled handlers return
		hs.Close()  // waits for the handlers
		s.Close()
		if bad := s.Invalid(); len(bad) > 0 {
			t.Errorf("Ascio stand-in saw %d documents that do not validate:\n%s", len(bad), strings.Join(bad, "\n"))
		}
	})
	return s, hs.URL + "/v3/AscioService.svc"
}

// Script sets the answers to the next requests of one operation, in order;
// after them, the operation answers normally.
func (s *Server) Script(op string, a ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[op] = append(s.script[op], a...)
}

// SetRedirect sets the Location a Redirect answer points to.
func (s *Server) SetRedirect(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirect = url
}

// AddMessage appends a message to the queue.
func (s *Server) AddMessage(m ascio.QueueMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, m)
}

// AddOrder makes an order known to GetOrder.
func (s *Server) AddOrder(o ascio.Order) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders[o.ID] = o
}

// AddDomain makes a domain known to GetDomain, by its handle, and to
// GetDomains, by its name.
func (s *Server) AddDomain(d ascio.Domain) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.domains[d.Handle] = d
}

// Uploads returns the accepted uploads.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// Acked returns the ids of acknowledged messages, in order.
func (s *Server) Acked() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.acked...)
}

// Queue returns the messages not yet acknowledged.
func (s *Server) Queue() []ascio.QueueMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ascio.QueueMessage(nil), s.queue...)
}

// Calls returns the operations received, in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// LastEnvelope returns the last request envelope received for op, as sent.
func (s *Server) LastEnvelope(op string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.envs[op]
}

// Invalid returns the schema errors of requests received and answers
// written.
func (s *Server) Invalid() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.invalid...)
}

func (s *Server) bad(format string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalid = append(s.invalid, fmt.Sprintf(format, a...))
}

// request is every operation's envelope as the stand-in reads it.
type request struct {
	Header struct {
		Security struct {
			Account  string `xml:"Account"`
			Password string `xml:"Password"`
		} `xml:"SecurityHeaderDetails"`
	} `xml:"Header"`
	Body struct {
		Op struct {
			Request struct {
				OrderID     string   `xml:"OrderId"`
				MessageID   string   `xml:"MessageId"`
				MessageType string   `xml:"MessageType"`
				Handle      string   `xml:"Handle"`
				ObjectNames []string `xml:"ObjectNames>string"`
				PageInfo    struct {
					Index int `xml:"PageIndex"`
					Size  int `xml:"PageSize"`
				} `xml:"PageInfo"`
				Message struct {
					Attachments []struct {
						FileName string `xml:"FileName"`
						Content  string `xml:"Content"`
					} `xml:"Attachments>Attachment"`
					Body    string `xml:"Body"`
					Created string `xml:"Created"`
					From    string `xml:"FromAddress"`
					Subject string `xml:"Subject"`
					To      string `xml:"ToAddress"`
					Type    string `xml:"Type"`
				} `xml:"Message"`
			} `xml:"request"`
		} `xml:",any"`
	} `xml:"Body"`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		// The client went away mid-request (a killed errpd): Ascio would
		// not see a request at all, so neither does the stand-in.
		return
	}
	op := strings.Trim(r.Header.Get("SOAPAction"), `"`)
	switch op {
	case OpUploadMessage, OpPollQueue, OpGetQueueMessage, OpAckQueueMessage, OpGetOrder, OpGetDomain, OpGetDomains, OpGetMessages:
	default:
		s.bad("unknown SOAPAction %q", r.Header.Get("SOAPAction"))
		s.fault(w, "a:ActionNotSupported", "The message with Action '"+op+"' cannot be processed.")
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/xml") {
		s.bad("%s: method %s, Content-Type %q", op, r.Method, r.Header.Get("Content-Type"))
		s.fault(w, "s:Client", "SOAP 1.1 wants POST with text/xml")
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, op)
	s.envs[op] = data
	s.mu.Unlock()
	if err := s.schemas.Envelope(data); err != nil {
		s.bad("%s request: %v", op, err)
		s.fault(w, "s:Client", "request does not validate")
		return
	}
	var req request
	if err := xml.Unmarshal(data, &req); err != nil {
		s.bad("%s request: %v", op, err)
		s.fault(w, "s:Client", err.Error())
		return
	}
	if s.Account != "" && (req.Header.Security.Account != s.Account || req.Header.Security.Password != s.Password) {
		s.answer(w, op, 401, "Authorization failed", []string{"Authorization failed"}, nil)
		return
	}

	s.mu.Lock()
	answer := OK
	if q := s.script[op]; len(q) > 0 {
		answer, s.script[op] = q[0], q[1:]
	}
	s.mu.Unlock()
	stall := func() {
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	}
	switch answer {
	case Stall:
		stall()
		return
	case Lost:
		defer stall()
		w, answer = httptest.NewRecorder(), OK // the answer is dropped
	case Truncated:
		rec := httptest.NewRecorder()
		defer cutShort(w, rec)
		w, answer = rec, OK
	case Fault:
		s.fault(w, "s:Server", "The server was unable to process the request due to an internal error.")
		return
	case Redirect, HTML, Empty, WrongNamespace, Missing, HugeFault, HugeResult, Endless:
		s.hostile(w, r, op, answer)
		return
	case OK, Created, TooLarge:
	default:
		s.answer(w, op, int(answer), message(int(answer)), []string{message(int(answer))}, nil)
		return
	}

	in := req.Body.Op.Request
	switch op {
	case OpUploadMessage:
		s.upload(w, int(answer), in.OrderID, data, &req)
	case OpPollQueue:
		s.mu.Lock()
		var m *ascio.QueueMessage
		if len(s.queue) > 0 {
			m = &s.queue[0]
		}
		total := len(s.queue)
		s.mu.Unlock()
		s.answer(w, op, 200, "OK", nil, func(b *wbuf) {
			b.text("a:TotalCount", strconv.Itoa(total))
			b.queueMessage(m)
		})
	case OpGetQueueMessage:
		id, _ := strconv.Atoi(in.MessageID)
		s.mu.Lock()
		var m *ascio.QueueMessage
		for i := range s.queue {
			if s.queue[i].ID == id {
				c := s.queue[i]
				m = &c
			}
		}
		s.mu.Unlock()
		if m == nil {
			s.answer(w, op, 404, "Message not found", []string{"Message " + in.MessageID + " not found"}, func(b *wbuf) { b.nilElem("a:Message") })
			return
		}
		s.answer(w, op, 200, "OK", nil, func(b *wbuf) { b.queueMessage(m) })
	case OpAckQueueMessage:
		id, _ := strconv.Atoi(in.MessageID)
		s.mu.Lock()
		found := false
		for i := range s.queue {
			if s.queue[i].ID == id {
				s.queue = append(s.queue[:i], s.queue[i+1:]...)
				s.acked = append(s.acked, id)
				found = true
				break
			}
		}
		s.mu.Unlock()
		if !found {
			s.answer(w, op, 404, "Message not found", []string{"Message " + in.MessageID + " not found"}, nil)
			return
		}
		s.answer(w, op, 200, "OK", nil, nil)
	case OpGetOrder:
		s.mu.Lock()
		o, ok := s.orders[in.OrderID]
		s.mu.Unlock()
		if !ok {
			s.answer(w, op, 404, "Order not found", []string{"Order " + in.OrderID + " not found"}, func(b *wbuf) { b.nilElem("a:OrderInfo") })
			return
		}
		s.answer(w, op, 200, "OK", nil, func(b *wbuf) { b.order(o) })
	case OpGetMessages:
		s.mu.Lock()
		held := s.heldLocked(in.OrderID)
		s.mu.Unlock()
		s.answer(w, op, 200, "OK", nil, func(b *wbuf) {
			b.WriteString("<a:Messages>")
			for _, u := range held {
				// Attachments are left out: errpd asks without their content.
				b.WriteString("<a:Message>")
				b.text("a:Body", u.Body)
				b.text("a:Created", u.Created)
				b.text("a:FromAddress", u.From)
				b.text("a:Subject", u.Subject)
				b.text("a:ToAddress", u.To)
				b.text("a:Type", u.Type)
				b.WriteString("</a:Message>")
			}
			b.WriteString("</a:Messages>")
		})
	case OpGetDomain:
		s.mu.Lock()
		d, ok := s.domains[in.Handle]
		s.mu.Unlock()
		if !ok {
			s.answer(w, op, 404, "Domain not found", []string{"Domain " + in.Handle + " not found"}, func(b *wbuf) { b.nilElem("a:DomainInfo") })
			return
		}
		s.answer(w, op, 200, "OK", nil, func(b *wbuf) { b.domain(d) })
	case OpGetDomains:
		s.getDomains(w, in.ObjectNames, in.PageInfo.Index, in.PageInfo.Size)
	}
}

// getDomains answers GetDomains by ObjectNames (the only criterion errpd
// sends; names match without regard to case), one page of them sorted by
// name. PageIndex counts from 1 [I]; a missing PageInfo is one page of
// everything. Nothing matching is a success with TotalCount 0 and nil
// DomainInfos.
func (s *Server) getDomains(w http.ResponseWriter, names []string, page, size int) {
	s.mu.Lock()
	var found []ascio.Domain
	for _, d := range s.domains {
		for _, n := range names {
			if strings.EqualFold(d.Name, strings.TrimSpace(n)) {
				found = append(found, d)
				break
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(found, func(a, b ascio.Domain) int { return strings.Compare(a.Name, b.Name) })
	total := len(found)
	if size > 0 {
		from := min(max(page-1, 0)*size, total)
		found = found[from:min(from+size, total)]
	}
	s.answer(w, OpGetDomains, 200, "OK", nil, func(b *wbuf) {
		b.text("a:TotalCount", strconv.Itoa(total))
		if len(found) == 0 {
			b.nilElem("a:DomainInfos")
			return
		}
		b.WriteString("<a:DomainInfos>")
		for _, d := range found {
			b.domain(d)
		}
		b.WriteString("</a:DomainInfos>")
	})
}

func (s *Server) upload(w http.ResponseWriter, code int, orderID string, env []byte, req *request) {
	m := req.Body.Op.Request.Message
	u := Upload{OrderID: orderID, Type: m.Type, From: m.From, To: m.To, Subject: m.Subject,
		Body: m.Body, Created: m.Created, Envelope: env}
	for _, a := range m.Attachments {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Content))
		if err != nil {
			s.bad("UploadMessage attachment %q: %v", a.FileName, err)
		}
		u.Attachments = append(u.Attachments, ascio.Attachment{FileName: a.FileName, Content: raw})
	}
	s.mu.Lock()
	s.uploads = append(s.uploads, u)
	id := 100000 + len(s.uploads)
	s.mu.Unlock()
	s.answer(w, OpUploadMessage, code, message(code), nil, func(b *wbuf) { b.text("a:MessageId", strconv.Itoa(id)) })
}

// hostile writes one of the answers that are not an answer.
func (s *Server) hostile(w http.ResponseWriter, r *http.Request, op string, a Answer) {
	switch a {
	case Redirect:
		s.mu.Lock()
		loc := s.redirect
		s.mu.Unlock()
		if loc == "" {
			loc = DefaultRedirect
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
	case HTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head><body><h1>We'll be back soon</h1><p>Scheduled maintenance.<br></body></html>\n")
	case Empty:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	case WrongNamespace:
		doc := s.document(op, 200, "OK", nil, nil)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.Write(bytes.Replace(doc, []byte(ascio.NSSoap), []byte("http://www.w3.org/2003/05/soap-envelope"), 1))
	case Missing:
		code := 200
		if op == OpAckQueueMessage {
			code = 0 // its only required element is the ResultCode
		}
		s.answer(w, op, code, "OK", nil, nil)
	case HugeFault:
		s.fault(w, "s:Server", hugeText("Object reference not set to an instance of an object. "))
	case HugeResult:
		errs := make([]string, HugeErrors)
		for i := range errs {
			errs[i] = fmt.Sprintf("error %d: %s", i, strings.Repeat("e", 1024))
		}
		s.answer(w, op, 554, hugeText("Temporary error, try again later. "), errs, nil)
	case Endless:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, `<s:Envelope xmlns:s="`+ascio.NSSoap+`"><s:Body>`)
		pad := bytes.Repeat([]byte(" "), 64<<10)
		for {
			select {
			case <-r.Context().Done():
				return
			case <-s.stop:
				return
			default:
			}
			if _, err := w.Write(pad); err != nil {
				return
			}
		}
	}
}

// hugeText repeats s to HugeText bytes.
func hugeText(s string) string {
	return strings.Repeat(s, HugeText/len(s)+1)[:HugeText]
}

// cutShort sends the first half of what rec recorded, as a complete HTTP
// answer: the XML is cut, the HTTP exchange is not.
func cutShort(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	body := rec.Body.Bytes()
	body = body[:len(body)/2]
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func message(code int) string {
	switch code {
	case 200, 201:
		return "OK"
	case 413:
		return "Message already uploaded"
	case 401:
		return "Authorization failed"
	case 404:
		return "Object not found"
	case 405:
		return "Access denied"
	case 554:
		return "Temporary error, try again later"
	}
	return "Error " + strconv.Itoa(code)
}

// answer writes an operation's response envelope as Ascio's WCF service
// lays it out, after checking it against the schema.
func (s *Server) answer(w http.ResponseWriter, op string, code int, msg string, errs []string, extra func(*wbuf)) {
	doc := s.document(op, code, msg, errs, extra)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(doc)
}

// document is an answer envelope, checked against the schema. Code 0
// leaves the ResultCode out (Missing).
func (s *Server) document(op string, code int, msg string, errs []string, extra func(*wbuf)) []byte {
	var b wbuf
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	b.WriteString(`<s:Envelope xmlns:s="` + ascio.NSSoap + `"><s:Body>`)
	b.WriteString(`<` + op + `Response xmlns="` + ascio.NSService + `">`)
	b.WriteString(`<` + op + `Result xmlns:a="` + ascio.NSData + `" xmlns:i="` + ascio.NSInstance + `">`)
	if code != 0 {
		b.text("a:ResultCode", strconv.Itoa(code))
	}
	b.text("a:ResultMessage", msg)
	b.WriteString(`<a:Errors xmlns:b="` + ascio.NSArrays + `">`)
	for _, e := range errs {
		b.text("b:string", e)
	}
	b.WriteString(`</a:Errors>`)
	if extra != nil {
		extra(&b)
	}
	b.WriteString(`</` + op + `Result></` + op + `Response></s:Body></s:Envelope>`)
	if err := s.schemas.Response(b.Bytes()); err != nil {
		s.bad("%s answer: %v", op, err)
	}
	return b.Bytes()
}

// fault writes a SOAP 1.1 fault with HTTP 500, as WCF does.
func (s *Server) fault(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	var b wbuf
	b.WriteString(`<s:Envelope xmlns:s="` + ascio.NSSoap + `"><s:Body><s:Fault>`)
	b.WriteString(`<faultcode xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none">` + code + `</faultcode>`)
	b.WriteString(`<faultstring xml:lang="en-US">`)
	xml.EscapeText(&b, []byte(msg))
	b.WriteString(`</faultstring></s:Fault></s:Body></s:Envelope>`)
	w.Write(b.Bytes())
}

// wbuf writes answer elements in the WSDL's sequence order.
type wbuf struct{ bytes.Buffer }

func (b *wbuf) text(name, v string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(v))
	b.WriteString("</" + name + ">")
}

// opt writes an optional element only when it has a value.
func (b *wbuf) opt(name, v string) {
	if v != "" {
		b.text(name, v)
	}
}

func (b *wbuf) time(name string, t time.Time) {
	if !t.IsZero() {
		b.text(name, t.UTC().Format("2006-01-02T15:04:05"))
	}
}

func (b *wbuf) nilElem(name string) { b.WriteString("<" + name + ` i:nil="true"/>`) }

func (b *wbuf) queueMessage(m *ascio.QueueMessage) {
	if m == nil {
		b.nilElem("a:Message")
		return
	}
	b.WriteString("<a:Message>")
	b.nilElem("a:Attachments")
	if len(m.ErrorCodes) == 0 {
		b.nilElem("a:ErrorCodes")
	} else {
		b.WriteString("<a:ErrorCodes>")
		for _, e := range m.ErrorCodes {
			b.WriteString("<a:ErrorCode>")
			b.text("a:Code", e.Code)
			b.text("a:Message", e.Message)
			b.WriteString("</a:ErrorCode>")
		}
		b.WriteString("</a:ErrorCodes>")
	}
	b.text("a:Id", strconv.Itoa(m.ID))
	b.text("a:Message", m.Text)
	b.text("a:MessageType", def(m.MessageType, "MessageToPartner"))
	b.opt("a:ObjectHandle", m.ObjectHandle)
	b.opt("a:ObjectName", m.ObjectName)
	b.text("a:ObjectType", def(m.ObjectType, "DomainType"))
	b.text("a:OrderId", m.OrderID)
	b.opt("a:OrderStatus", m.OrderStatus)
	b.opt("a:OrderType", m.OrderType)
	b.WriteString("</a:Message>")
}

func (b *wbuf) contact(name string, c ascio.Contact) {
	b.WriteString("<" + name + ">")
	b.opt("a:Handle", c.Handle)
	b.opt("a:FirstName", c.FirstName)
	b.opt("a:LastName", c.LastName)
	b.opt("a:OrgName", c.OrgName)
	b.opt("a:CountryCode", c.CountryCode)
	b.opt("a:Email", c.Email)
	b.WriteString("</" + name + ">")
}

func (b *wbuf) order(o ascio.Order) {
	b.WriteString("<a:OrderInfo>")
	b.text("a:OrderId", o.ID)
	b.opt("a:Status", o.Status)
	b.time("a:Created", o.Created)
	b.WriteString(`<a:OrderRequest i:type="a:DomainOrderRequest">`)
	b.opt("a:Type", o.Type)
	b.WriteString("<a:Domain>")
	b.opt("a:Name", o.DomainName)
	b.opt("a:Handle", o.DomainHandle)
	b.contact("a:Owner", o.Owner)
	b.WriteString("</a:Domain></a:OrderRequest>")
	b.text("a:IsCancellable", "false")
	b.WriteString("</a:OrderInfo>")
}

func (b *wbuf) domain(d ascio.Domain) {
	b.WriteString("<a:DomainInfo>")
	b.text("a:DomainName", d.Name)
	b.text("a:DomainHandle", d.Handle)
	b.opt("a:Status", d.Status)
	b.time("a:Created", d.Created)
	if d.Expires.IsZero() {
		b.nilElem("a:Expires")
	} else {
		b.time("a:Expires", d.Expires)
	}
	b.contact("a:Owner", d.Owner)
	b.WriteString("</a:DomainInfo>")
}

func def(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
