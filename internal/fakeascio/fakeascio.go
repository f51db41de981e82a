// Package fakeascio is a stand-in for Ascio's AWS v3 SOAP endpoint, for
// tests: Ascio itself cannot be reached from here. It validates every
// request's header and body against Ascio's published schemas with xmllint,
// answers with responses that validate against them too, records uploads,
// and can be told to answer 554, 401, a SOAP fault with HTTP 500, or to
// stall.
package fakeascio

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Upload is one accepted UploadMessage.
type Upload struct {
	OrderID string
	Type    string
	Subject string
	To      string
	Raw     []byte // the .eml attachment
}

// Answer scripts the reply to one request.
type Answer int

const (
	OK       Answer = 200
	TryLater Answer = 554
	Denied   Answer = 401
	Fault    Answer = 500 // SOAP fault with HTTP 500
	Stall    Answer = -1  // hold the request until the client gives up
)

// Server is a running stand-in.
type Server struct {
	URL string
	// NoValidation skips the schema check (two xmllint runs per request),
	// for throughput benchmarks that measure errpd rather than xmllint.
	NoValidation bool

	mu       sync.Mutex
	uploads  []Upload
	script   []Answer
	invalid  []string // schema errors of requests received
	srv      *httptest.Server
	xsdDir   string
	stalling chan struct{}
}

// XSDDir is the folder holding Ascio's schemas in this repository.
func XSDDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "ascio", "xsd")
}

// Start runs a stand-in on a loopback port.
func Start() *Server {
	s := &Server{xsdDir: XSDDir(), stalling: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v3/AscioService.svc"
	return s
}

// Close stops the server.
func (s *Server) Close() {
	close(s.stalling)
	s.srv.Close()
}

// Script sets the answers to the next requests, in order; after them, OK.
func (s *Server) Script(a ...Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, a...)
}

// Uploads returns the accepted uploads.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.uploads...)
}

// Invalid returns the schema errors of the requests received.
func (s *Server) Invalid() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.invalid...)
}

type request struct {
	Header struct {
		Security struct {
			Account  string `xml:"Account"`
			Password string `xml:"Password"`
		} `xml:"SecurityHeaderDetails"`
	} `xml:"Header"`
	Body struct {
		Upload struct {
			Request struct {
				OrderID string `xml:"OrderId"`
				Message struct {
					Attachments []struct {
						FileName string `xml:"FileName"`
						Content  string `xml:"Content"`
					} `xml:"Attachments>Attachment"`
					Subject string `xml:"Subject"`
					To      string `xml:"ToAddress"`
					Type    string `xml:"Type"`
				} `xml:"Message"`
			} `xml:"request"`
		} `xml:"UploadMessage"`
	} `xml:"Body"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.Header.Get("SOAPAction") != `"UploadMessage"` {
		s.fault(w, "a:ActionNotSupported", "only UploadMessage is served by this stand-in")
		return
	}
	if s.NoValidation {
		// measured elsewhere: every other test validates
	} else if err := s.validate(data); err != nil {
		s.mu.Lock()
		s.invalid = append(s.invalid, err.Error())
		s.mu.Unlock()
		s.fault(w, "s:Client", "request does not validate: "+err.Error())
		return
	}
	s.mu.Lock()
	answer := OK
	if len(s.script) > 0 {
		answer, s.script = s.script[0], s.script[1:]
	}
	s.mu.Unlock()
	switch answer {
	case Stall:
		select {
		case <-r.Context().Done():
		case <-s.stalling:
		}
		return
	case Fault:
		s.fault(w, "s:Server", "The server was unable to process the request due to an internal error.")
		return
	case TryLater:
		s.result(w, 554, "Temporary error, try again later", "Service busy")
		return
	case Denied:
		s.result(w, 401, "Authorization failed", "Authorization failed")
		return
	}
	var req request
	if err := xml.Unmarshal(data, &req); err != nil {
		s.fault(w, "s:Client", err.Error())
		return
	}
	m := req.Body.Upload.Request.Message
	u := Upload{OrderID: req.Body.Upload.Request.OrderID, Type: m.Type, Subject: m.Subject, To: m.To}
	for _, a := range m.Attachments {
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a.Content))
		if err == nil && strings.HasSuffix(a.FileName, ".eml") {
			u.Raw = raw
		}
	}
	s.mu.Lock()
	s.uploads = append(s.uploads, u)
	s.mu.Unlock()
	s.result(w, 200, "OK")
}

// Response renders an UploadMessageResponse envelope, as Ascio's WCF
// service writes it.
func Response(code int, msg string, errs ...string) []byte {
	var e bytes.Buffer
	for _, x := range errs {
		e.WriteString("<b:string>")
		xml.EscapeText(&e, []byte(x))
		e.WriteString("</b:string>")
	}
	var m bytes.Buffer
	xml.EscapeText(&m, []byte(msg))
	id := 0
	if code == 200 {
		id = int(time.Now().UnixNano() % 1e9)
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><UploadMessageResponse xmlns="http://www.ascio.com/2013/02/AscioService"><UploadMessageResult xmlns:a="http://www.ascio.com/2013/02" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><a:ResultCode>%d</a:ResultCode><a:ResultMessage>%s</a:ResultMessage><a:Errors xmlns:b="http://schemas.microsoft.com/2003/10/Serialization/Arrays">%s</a:Errors><a:MessageId>%d</a:MessageId></UploadMessageResult></UploadMessageResponse></s:Body></s:Envelope>`,
		code, m.String(), e.String(), id)
}

func (s *Server) result(w http.ResponseWriter, code int, msg string, errs ...string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(Response(code, msg, errs...))
}

func (s *Server) fault(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	var m bytes.Buffer
	xml.EscapeText(&m, []byte(msg))
	fmt.Fprintf(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none">%s</faultcode><faultstring xml:lang="en-US">%s</faultstring></s:Fault></s:Body></s:Envelope>`, code, m.String())
}

// validate checks the envelope's header and body payloads against Ascio's
// schemas with xmllint, as NOTES.md describes: the body's child against
// AscioService.xsd, the header's SecurityHeaderDetails against
// ascio-2013-02.xsd. Each payload must declare its own namespaces.
func (s *Server) validate(envelope []byte) error {
	header, err := child(envelope, "Header")
	if err != nil {
		return err
	}
	body, err := child(envelope, "Body")
	if err != nil {
		return err
	}
	if err := Validate(filepath.Join(s.xsdDir, "ascio-2013-02.xsd"), header); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if err := Validate(filepath.Join(s.xsdDir, "AscioService.xsd"), body); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

// child returns the bytes of the first element inside the envelope's
// Header or Body, as written.
func child(envelope []byte, name string) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(envelope))
	depth := 0
	inside := false
	var start int64
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("envelope has no %s payload: %v", name, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Local == name && t.Name.Space == "http://schemas.xmlsoap.org/soap/envelope/" {
				inside = true
			} else if inside && depth == 3 {
				start = off
			}
		case xml.EndElement:
			if inside && depth == 3 {
				return envelope[start:d.InputOffset()], nil
			}
			if inside && depth == 2 {
				return nil, fmt.Errorf("envelope %s is empty", name)
			}
			depth--
		}
	}
}

// Validate runs xmllint on one document against one schema.
func Validate(xsd string, doc []byte) error {
	f, err := os.CreateTemp("", "ascio-*.xml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	f.Write(doc)
	f.Close()
	out, err := exec.Command("xmllint", "--noout", "--schema", xsd, f.Name()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xmllint: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
