package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/internal/failure"
)

// relay is a real SMTP server (emersion/go-smtp) on loopback that records
// what it receives and answers as scripted.
type relay struct {
	mu        sync.Mutex
	got       []received
	sessions  int // connections made
	open      int // connections open now
	maxOpen   int
	conns     []*gosmtp.Conn
	rcptReply map[string]*gosmtp.SMTPError // recipient -> RCPT reply
	dataReply []*gosmtp.SMTPError          // replies to the end of DATA, in turn; nil accepts
	password  string                       // non-empty: AUTH PLAIN required, user "errpd"
	inData    chan struct{}                // when set, DATA signals and waits for release
	release   chan struct{}

	addr string
}

type received struct {
	from string
	to   []string
	data []byte
}

func (r *relay) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions++
	r.open++
	r.maxOpen = max(r.maxOpen, r.open)
	r.conns = append(r.conns, c)
	return &session{r: r}, nil
}

type session struct {
	r      *relay
	authed bool
	cur    received
}

func (x *session) AuthMechanisms() []string {
	if x.r.password == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "errpd" || pass != x.r.password {
			return &gosmtp.SMTPError{Code: 535, EnhancedCode: gosmtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		x.authed = true
		return nil
	}), nil
}

func (x *session) Reset() { x.cur = received{} }
func (x *session) Logout() error {
	x.r.mu.Lock()
	x.r.open--
	x.r.mu.Unlock()
	return nil
}

func (x *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if x.r.password != "" && !x.authed {
		return &gosmtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	x.cur.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	if e := x.r.rcptReply[to]; e != nil {
		return e
	}
	x.cur.to = append(x.cur.to, to)
	return nil
}

func (x *session) Data(rd io.Reader) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	if x.r.inData != nil {
		x.r.inData <- struct{}{}
		<-x.r.release
	}
	x.r.mu.Lock()
	defer x.r.mu.Unlock()
	if len(x.r.dataReply) > 0 {
		e := x.r.dataReply[0]
		x.r.dataReply = x.r.dataReply[1:]
		if e != nil {
			return e
		}
	}
	x.cur.data = b
	x.r.got = append(x.r.got, x.cur)
	return nil
}

func startRelay(t *testing.T, r *relay) *relay {
	t.Helper()
	srv := gosmtp.NewServer(r)
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

func newSMTP(t *testing.T, addr string, o Options) *SMTP {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	fmt.Sscan(port, &o.Port)
	o.Host = host
	if o.TLS == "" {
		o.TLS = "none"
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	o.Helo = "errpd.test"
	s, err := NewSMTP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tricky holds what SMTP's transport must carry through untouched: lines
// starting with a dot, a line with only a dot, 8-bit text, long lines.
func tricky(i int) []byte {
	return []byte(fmt.Sprintf("From: a@example.net\r\nTo: b@example.org\r\nSubject: test %d\r\n"+
		"Message-ID: <%d@example.net>\r\n\r\n"+
		".leading dot\r\n.\r\n..two dots\r\nBücher, naïve, 日本\r\n%s\r\nend\r\n", i, i, strings.Repeat("x", 900)))
}

func TestSendsExactBytesOverOneConnection(t *testing.T) {
	r := startRelay(t, &relay{})
	s := newSMTP(t, r.addr, Options{MaxConnections: 2})
	var sent [][]byte
	for i := range 5 {
		raw := tricky(i)
		reply, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"b@example.org"}, raw)
		if err != nil {
			t.Fatal(err)
		}
		if reply.Code != 250 || !strings.Contains(reply.String(), "250 ") {
			t.Errorf("reply %+v", reply)
		}
		sent = append(sent, raw)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != len(sent) {
		t.Fatalf("relay got %d messages, want %d", len(r.got), len(sent))
	}
	for i, g := range r.got {
		if !bytes.Equal(g.data, sent[i]) {
			t.Errorf("message %d differs:\n got %q\nwant %q", i, g.data, sent[i])
		}
		if g.from != "bounces@errp.example.net" || !cmp.Equal(g.to, []string{"b@example.org"}) {
			t.Errorf("envelope %q -> %q", g.from, g.to)
		}
	}
	if r.sessions != 1 {
		t.Errorf("%d connections for sequential sends, want 1 reused", r.sessions)
	}
}

func TestRepliesAreTyped(t *testing.T) {
	tests := []struct {
		name      string
		rcpt      *gosmtp.SMTPError
		data      *gosmtp.SMTPError
		stage     Stage
		code      int
		permanent bool
	}{
		{"550 to RCPT", &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}, nil, StageRcpt, 550, true},
		{"451 to RCPT", &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}, nil, StageRcpt, 451, false},
		{"421 to RCPT", &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "shutting down"}, nil, StageRcpt, 421, false},
		{"451 to DATA", nil, &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try later"}, StageData, 451, false},
		{"421 to DATA", nil, &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "closing"}, StageData, 421, false},
		{"554 to DATA", nil, &gosmtp.SMTPError{Code: 554, EnhancedCode: gosmtp.EnhancedCode{5, 7, 1}, Message: "rejected as spam"}, StageData, 554, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startRelay(t, &relay{rcptReply: map[string]*gosmtp.SMTPError{}})
			if tc.rcpt != nil {
				r.rcptReply["b@example.org"] = tc.rcpt
			}
			r.dataReply = []*gosmtp.SMTPError{tc.data}
			s := newSMTP(t, r.addr, Options{})
			_, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"b@example.org"}, tricky(1))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if e.Stage != tc.stage || e.Code != tc.code || e.Permanent != tc.permanent || failure.IsPermanent(err) != tc.permanent {
				t.Errorf("got stage %s code %d permanent %v, want %s %d %v (%v)", e.Stage, e.Code, e.Permanent, tc.stage, tc.code, tc.permanent, err)
			}
			if e.Reply().Code != tc.code || e.Reply().Text == "" {
				t.Errorf("reply for the record: %+v", e.Reply())
			}
			// The relay stays usable: the next message goes through.
			r.mu.Lock()
			delete(r.rcptReply, "b@example.org")
			r.mu.Unlock()
			if _, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"b@example.org"}, tricky(2)); err != nil {
				t.Fatalf("next send: %v", err)
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.got) != 1 || !bytes.Equal(r.got[0].data, tricky(2)) {
				t.Errorf("relay got %d messages", len(r.got))
			}
		})
	}
}

func TestNetworkFailuresAreTemporary(t *testing.T) {
	// Nobody listens.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := newSMTP(t, addr, Options{})
	_, err = s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(1))
	if err == nil || failure.IsPermanent(err) {
		t.Errorf("connection refused: %v, want a temporary error", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageConnect || e.Code != 0 {
		t.Errorf("connection refused: %#v", e)
	}

	// Someone listens but never greets: the timeout ends the wait.
	l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	s = newSMTP(t, l.Addr().String(), Options{Timeout: 100 * time.Millisecond})
	_, err = s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(1))
	if err == nil || failure.IsPermanent(err) {
		t.Errorf("silent relay: %v, want a temporary error", err)
	}
}

// A 5xx before the transaction (here: bad credentials) is errpd's or the
// relay's problem, not the message's: temporary, and without the password.
func TestAuth(t *testing.T) {
	r := startRelay(t, &relay{password: "s3cret-pass"})
	s := newSMTP(t, r.addr, Options{Username: "errpd", Password: "s3cret-pass"})
	if _, err := s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(1)); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	s = newSMTP(t, r.addr, Options{Username: "errpd", Password: "wrong-pass"})
	_, err := s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(2))
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageConnect || e.Code != 535 || e.Permanent {
		t.Errorf("wrong password: %v, want a temporary 535 at connect", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-pass") {
		t.Errorf("the error shows the password: %v", err)
	}
	if got := fmt.Sprintf("%v %+v", s.o, s.o); strings.Contains(got, "wrong-pass") {
		t.Errorf("options print the password: %s", got)
	}
}

func TestConnectionsAreBoundedAndReused(t *testing.T) {
	r := startRelay(t, &relay{})
	s := newSMTP(t, r.addr, Options{MaxConnections: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		wg.Go(func() {
			if _, err := s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(i)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 60 {
		t.Errorf("relay got %d messages, want 60", len(r.got))
	}
	if r.maxOpen > 3 || r.sessions > 3 {
		t.Errorf("%d connections made, %d open at once; want at most 3", r.sessions, r.maxOpen)
	}
}

// A kept connection the relay has closed meanwhile is replaced, and the
// message still goes out once.
func TestStaleConnectionIsReplaced(t *testing.T) {
	r := startRelay(t, &relay{})
	s := newSMTP(t, r.addr, Options{})
	if _, err := s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(1)); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	c := r.conns[0]
	r.mu.Unlock()
	c.Close()
	if _, err := s.Send(context.Background(), "a@example.net", []string{"b@example.org"}, tricky(2)); err != nil {
		t.Fatalf("after the relay closed the idle connection: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 2 || r.sessions != 2 {
		t.Errorf("%d messages over %d connections, want 2 over 2", len(r.got), r.sessions)
	}
}

func TestCancelAbortsAWaitingSend(t *testing.T) {
	r := startRelay(t, &relay{inData: make(chan struct{}), release: make(chan struct{})})
	defer close(r.release)
	s := newSMTP(t, r.addr, Options{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-r.inData // the relay holds the final reply
		cancel()
	}()
	_, err := s.Send(ctx, "a@example.net", []string{"b@example.org"}, tricky(1))
	if err == nil || failure.IsPermanent(err) {
		t.Errorf("cancelled send: %v, want a temporary error", err)
	}
}
