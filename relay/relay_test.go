package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// server is a real SMTP server (emersion/go-smtp) on loopback that records
// what it receives and answers as scripted per recipient.
type server struct {
	mu       sync.Mutex
	got      [][]byte
	sessions int
	reply    map[string]*gosmtp.SMTPError // recipient -> RCPT reply
	dataErr  *gosmtp.SMTPError            // reply to the end of DATA
	addr     string
}

func (s *server) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.mu.Unlock()
	return &session{s: s}, nil
}

type session struct{ s *server }

func (x *session) Reset()                                 {}
func (x *session) Logout() error                          { return nil }
func (x *session) Mail(string, *gosmtp.MailOptions) error { return nil }
func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if e := x.s.reply[to]; e != nil {
		return e
	}
	return nil
}
func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.mu.Lock()
	defer x.s.mu.Unlock()
	if x.s.dataErr != nil {
		return x.s.dataErr
	}
	x.s.got = append(x.s.got, b)
	return nil
}

func startServer(t *testing.T) *server {
	t.Helper()
	s := &server{reply: map[string]*gosmtp.SMTPError{}}
	srv := gosmtp.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func client(t *testing.T, s *server, conns int) *SMTP {
	host, port, _ := net.SplitHostPort(s.addr)
	var p int
	for _, c := range port {
		p = p*10 + int(c-'0')
	}
	c := NewSMTP(Options{Host: host, Port: p, TLS: "none", Timeout: 5 * time.Second, MaxConnections: conns, HelloName: "errpd.test"})
	t.Cleanup(c.Close)
	return c
}

// message has a line that starts with a dot and non-ASCII bytes: the
// transport must give them back unchanged.
var message = []byte("From: a@example.net\r\nTo: b@example.org\r\nSubject: =?UTF-8?q?B=C3=BCcher?=\r\nMessage-ID: <1@example.net>\r\n\r\n.leading dot\r\nbücher\r\n")

func TestSendsExactBytesOverReusedConnections(t *testing.T) {
	s := startServer(t)
	c := client(t, s, 2)
	for range 10 {
		reply, err := c.Send(context.Background(), "bounces@example.net", []string{"b@example.org"}, message)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(reply, "250") {
			t.Errorf("reply %q", reply)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 10 {
		t.Fatalf("%d messages received", len(s.got))
	}
	for _, g := range s.got {
		if !bytes.Equal(g, message) {
			t.Fatalf("received bytes differ:\n%q\nwant\n%q", g, message)
		}
	}
	if s.sessions > 2 {
		t.Errorf("%d connections for 10 messages, want reuse (at most 2)", s.sessions)
	}
}

func TestFailureClasses(t *testing.T) {
	s := startServer(t)
	s.reply["busy@example.org"] = &gosmtp.SMTPError{Code: 421, Message: "service not available"}
	s.reply["later@example.org"] = &gosmtp.SMTPError{Code: 451, Message: "try again later"}
	s.reply["nobody@example.org"] = &gosmtp.SMTPError{Code: 550, Message: "no such user"}
	c := client(t, s, 1)
	for to, permanent := range map[string]bool{"busy@example.org": false, "later@example.org": false, "nobody@example.org": true} {
		_, err := c.Send(context.Background(), "bounces@example.net", []string{to}, message)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%s: %v is not a *relay.Error", to, err)
		}
		if IsPermanent(err) != permanent {
			t.Errorf("%s: %v: permanent %v, want %v", to, err, IsPermanent(err), permanent)
		}
	}
	// The connection survives a refused recipient.
	if _, err := c.Send(context.Background(), "bounces@example.net", []string{"ok@example.org"}, message); err != nil {
		t.Errorf("after refusals: %v", err)
	}
}

func TestNetworkErrorsAreTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	// A server that drops the connection at once.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	c := NewSMTP(Options{Host: "127.0.0.1", Port: addr.Port, Timeout: time.Second})
	_, err = c.Send(context.Background(), "b@example.net", []string{"r@example.org"}, message)
	ln.Close()
	if err == nil || IsPermanent(err) {
		t.Errorf("dropped connection: %v, want a temporary error", err)
	}
	_, err = c.Send(context.Background(), "b@example.net", []string{"r@example.org"}, message)
	if err == nil || IsPermanent(err) {
		t.Errorf("refused connection: %v, want a temporary error", err)
	}
}

func TestOutboxWritesExactBytes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	reply, err := Outbox{Dir: dir}.Send(context.Background(), "b@example.net", []string{"r@example.org"}, message)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "1@example.net.eml"))
	if err != nil {
		t.Fatalf("%v (reply %q)", err, reply)
	}
	if !bytes.Equal(got, message) {
		t.Errorf("outbox bytes differ")
	}
}
