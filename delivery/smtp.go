package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/peertext"
)

// Options configure an SMTP relay.
type Options struct {
	Host           string
	Port           int
	TLS            string // none | starttls | tls
	Username       string // empty: no AUTH
	Password       config.Secret
	Helo           string        // empty: the host name
	Timeout        time.Duration // per connection attempt and per command; 0: 30s
	MaxConnections int           // parallel connections, each reused; 0: 1

	// TLSConfig overrides the TLS settings (tests give their own roots);
	// nil verifies the relay's certificate for Host.
	TLSConfig *tls.Config
	// Dial makes the TCP connection; nil uses a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// OptionsFrom reads the [smtp] section.
func OptionsFrom(c config.SMTP) Options {
	return Options{
		Host: c.Host, Port: c.Port, TLS: c.TLS, Username: c.Username, Password: c.Password,
		Helo: c.Helo, Timeout: c.Timeout, MaxConnections: c.MaxConnections,
	}
}

// SMTP sends over a pool of at most MaxConnections connections, each kept
// open and reused for the next message. go-mail's Client makes each
// connection (dial, EHLO, STARTTLS); the transaction itself uses go-mail's
// low-level smtp.Client, because go-mail's Msg-level Send renders a Msg
// anew and errpd must send exactly the bytes it stored.
type SMTP struct {
	o      Options
	client *gomail.Client
	slots  chan struct{} // one per connection in use or idle
	idle   chan *conn

	mu     sync.Mutex
	closed bool
}

type conn struct {
	c      *smtp.Client
	nc     net.Conn
	broken bool // out of step with the relay: close, never reuse
}

// connSlot carries the raw connection out of go-mail's dial, through the
// context, so that a connection whose EHLO or STARTTLS fails is closed
// rather than leaked.
type connSlot struct{ nc net.Conn }

type connSlotKey struct{}

// NewSMTP returns a relay client; it connects on the first Send.
func NewSMTP(o Options) (*SMTP, error) {
	if o.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if o.MaxConnections < 1 {
		o.MaxConnections = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Helo == "" {
		o.Helo, _ = os.Hostname()
		if o.Helo == "" {
			o.Helo = "localhost"
		}
	}
	if o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{ServerName: o.Host, MinVersion: tls.VersionTLS12}
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{Timeout: o.Timeout}).DialContext
	}
	policy := gomail.NoTLS
	switch o.TLS {
	case "none", "tls", "":
	case "starttls":
		policy = gomail.TLSMandatory
	default:
		return nil, fmt.Errorf("smtp: tls %q is not none, starttls or tls", o.TLS)
	}
	s := &SMTP{o: o, slots: make(chan struct{}, o.MaxConnections), idle: make(chan *conn, o.MaxConnections)}
	// AUTH is done per connection below, not by go-mail: its Auth values
	// keep per-conversation state (LOGIN's step), and one Client serves
	// every connection of the pool at once.
	c, err := gomail.NewClient(o.Host,
		gomail.WithPort(o.Port), gomail.WithTimeout(o.Timeout), gomail.WithHELO(o.Helo),
		gomail.WithTLSConfig(o.TLSConfig), gomail.WithTLSPolicy(policy),
		gomail.WithSMTPAuth(gomail.SMTPAuthNoAuth), gomail.WithDialContextFunc(s.dialConn))
	if err != nil {
		return nil, fmt.Errorf("smtp: %w", err)
	}
	s.client = c
	return s, nil
}

// dialConn is go-mail's dialer: TCP, then TLS for implicit TLS.
func (s *SMTP) dialConn(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := s.o.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if s.o.TLS == "tls" {
		tc := tls.Client(nc, s.o.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	if slot, ok := ctx.Value(connSlotKey{}).(*connSlot); ok {
		slot.nc = nc
	}
	return nc, nil
}

func (s *SMTP) dial(ctx context.Context) (*conn, error) {
	slot := &connSlot{}
	c, err := s.client.DialToSMTPClientWithContext(context.WithValue(ctx, connSlotKey{}, slot))
	if err != nil {
		if slot.nc != nil {
			slot.nc.Close()
		}
		return nil, classify(StageConnect, err)
	}
	cn := &conn{c: c, nc: slot.nc}
	if s.o.Username != "" {
		if err := s.auth(cn); err != nil {
			cn.close()
			return nil, classify(StageConnect, err)
		}
	}
	return cn, nil
}

// auth logs in with PLAIN, or LOGIN when the relay offers only that. Both
// refuse to send the password over a connection without TLS, except to
// localhost.
func (s *SMTP) auth(cn *conn) error {
	ok, mechs := cn.c.Extension("AUTH")
	if !ok {
		return errors.New("smtp: the relay offers no AUTH, but smtp.username is set")
	}
	list := strings.Fields(strings.ToUpper(mechs))
	var a smtp.Auth
	switch {
	case slices.Contains(list, "PLAIN"):
		a = smtp.PlainAuth("", s.o.Username, s.o.Password.Reveal(), s.o.Host, false)
	case slices.Contains(list, "LOGIN"):
		a = smtp.LoginAuth(s.o.Username, s.o.Password.Reveal(), s.o.Host, false)
	default:
		return fmt.Errorf("smtp: the relay offers AUTH %s; errpd speaks PLAIN and LOGIN", mechs)
	}
	if err := cn.c.UpdateDeadline(s.o.Timeout); err != nil {
		return err
	}
	return cn.c.Auth(a)
}

func (cn *conn) close() {
	cn.c.Close()
	if cn.nc != nil {
		cn.nc.Close()
	}
}

// Send delivers raw exactly as given (the SMTP layer only dot-stuffs it on
// the wire) to every address in to, and returns the relay's reply to the
// end of DATA.
func (s *SMTP) Send(ctx context.Context, envelopeFrom string, to []string, raw []byte) (Reply, error) {
	return s.SendGated(ctx, envelopeFrom, to, raw, nil)
}

// SendGated is Send with gate called once the message, all but the final
// dot, is on the wire (see Sender). When gate fails the connection is
// dropped without the dot, which makes the relay discard the message.
func (s *SMTP) SendGated(ctx context.Context, envelopeFrom string, to []string, raw []byte, gate func() error) (Reply, error) {
	if len(to) == 0 {
		return Reply{}, &Error{Stage: StageRcpt, Text: "no recipients", Permanent: true}
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return Reply{}, classify(StageConnect, ctx.Err())
	}
	defer func() { <-s.slots }()

	var cn *conn
	select {
	case cn = <-s.idle:
	default:
	}
	reused := cn != nil
	if cn == nil {
		var err error
		if cn, err = s.dial(ctx); err != nil {
			return Reply{}, err
		}
	}
	reply, err := s.transact(ctx, cn, envelopeFrom, to, raw, gate)
	var e *Error
	if reused && errors.As(err, &e) && e.Stage == StageMail && (e.Code == 0 || e.Code == 421) {
		// The relay closed the idle connection meanwhile; nothing of this
		// message was accepted, so a fresh connection may try it.
		cn.close()
		if cn, err = s.dial(ctx); err != nil {
			return Reply{}, err
		}
		reply, err = s.transact(ctx, cn, envelopeFrom, to, raw, gate)
	}
	s.release(cn, err)
	return reply, err
}

// release keeps a connection for the next message, unless the failure
// left it unusable.
func (s *SMTP) release(cn *conn, err error) {
	if cn.broken {
		cn.close()
		return
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Code == 0 || e.Code == 421 {
			cn.close() // a network error, a timeout or a closing relay
			return
		}
		// A refused command may leave a transaction open: start afresh.
		cn.c.UpdateDeadline(s.o.Timeout)
		if cn.c.Reset() != nil {
			cn.close()
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		cn.quit(s.o.Timeout)
		return
	}
	select {
	case s.idle <- cn:
	default:
		cn.quit(s.o.Timeout)
	}
}

func (cn *conn) quit(timeout time.Duration) {
	cn.c.UpdateDeadline(timeout)
	cn.c.Quit()
	cn.close()
}

func (s *SMTP) transact(ctx context.Context, cn *conn, from string, to []string, raw []byte, gate func() error) (reply Reply, err error) {
	// Cancelling ctx aborts whatever command is waiting.
	stop := context.AfterFunc(ctx, func() {
		if cn.nc != nil {
			cn.nc.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		if !stop() && err == nil {
			// ctx ended just as the transaction did: the reply stands,
			// but the connection's deadline is spoilt.
			cn.c.UpdateDeadline(s.o.Timeout)
		}
	}()
	deadline := func() error {
		d := s.o.Timeout
		if at, ok := ctx.Deadline(); ok && time.Until(at) < d {
			d = time.Until(at)
		}
		return cn.c.UpdateDeadline(d)
	}
	w, err := cn.open(from, to, deadline)
	if err != nil {
		return Reply{}, err
	}
	if _, err := w.Write(raw); err != nil {
		return Reply{}, classify(StageData, err)
	}
	if gate != nil {
		// Put the body on the wire first, so that the relay reads it
		// while the gate (errpd's fsync) runs; only the dot remains.
		if err := cn.c.Text.W.Flush(); err != nil {
			return Reply{}, classify(StageData, err)
		}
		if err := gate(); err != nil {
			return Reply{}, classify(StageGate, err)
		}
	}
	// The answer to the dot may take a relay long (RFC 5321 allows it ten
	// minutes, 4.5.3.2.6), and one that comes too late for errpd leaves
	// the notice in doubt: so wait as long as the send may last, not only
	// smtp.timeout.
	wait := 10 * time.Minute
	if at, ok := ctx.Deadline(); ok {
		wait = time.Until(at)
	}
	if err := cn.c.UpdateDeadline(wait); err != nil {
		return Reply{}, classify(StageData, err)
	}
	// Checked after setting the deadline, which would otherwise undo the
	// abort of a context ending in between: if the send's time ran out
	// during the gate, the dot is not sent, and the relay certainly has
	// nothing (the connection is dropped).
	if err := ctx.Err(); err != nil {
		return Reply{}, classify(StageData, fmt.Errorf("before the final dot: %w", err))
	}
	// From here on the relay may have the whole message: a reply refusing
	// it is an answer, but a broken connection or a timeout is not.
	if err := w.Close(); err != nil {
		return Reply{}, afterDot(err)
	}
	_, text, err := cn.c.Text.ReadResponse(250)
	if err != nil {
		return Reply{}, afterDot(err)
	}
	if text == "" {
		text = "accepted"
	}
	return Reply{Code: 250, Text: peertext.Cap(text)}, nil
}

// afterDot classifies a failure once the final dot may have been sent.
func afterDot(err error) *Error {
	e := classify(StageData, err)
	var tp *textproto.Error
	if !errors.As(err, &tp) {
		e.Unknown = true
	}
	return e
}

// Close ends every kept connection. Sends still running finish first and
// then close their connection instead of keeping it.
func (s *SMTP) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for {
		select {
		case cn := <-s.idle:
			cn.quit(s.o.Timeout)
		default:
			return nil
		}
	}
}
