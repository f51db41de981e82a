// Package relay hands rendered messages, byte for byte, to an SMTP relay, or
// to an outbox folder when no relay is configured. Connections are kept and
// reused across messages, a bounded number at a time. Failures are typed:
// a 5xx reply is permanent; 4xx replies, network errors and timeouts are
// temporary.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// Error is a failed delivery with the relay's reply when there was one.
type Error struct {
	Code      int    // SMTP reply code; 0 for network errors and timeouts
	Msg       string // the reply or the network error
	Permanent bool
}

func (e *Error) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("%s: %d %s", kind, e.Code, e.Msg)
	}
	return fmt.Sprintf("%s: %s", kind, e.Msg)
}

// classify turns whatever the SMTP client returned into an *Error. go-mail
// reports network errors as not temporary; for a notice they are: the next
// try may well get through.
func classify(err error) *Error {
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return &Error{Code: tp.Code, Msg: tp.Msg, Permanent: tp.Code >= 500 && tp.Code < 600}
	}
	return &Error{Msg: err.Error()}
}

// IsPermanent reports whether err is a permanent delivery failure.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// Options configure an SMTP relay.
type Options struct {
	Host           string
	Port           int
	TLS            string // none | starttls | tls
	Username       string
	Password       string
	Timeout        time.Duration // per connection attempt and per command
	MaxConnections int
	HelloName      string
	TLSConfig      *tls.Config // nil: verify against the system roots for Host
}

// SMTP sends over a pool of reused connections.
type SMTP struct {
	o    Options
	pool chan *smtp.Client // idle connections
	sem  chan struct{}     // bounds open connections
}

// NewSMTP returns a relay client; it connects lazily.
func NewSMTP(o Options) *SMTP {
	if o.MaxConnections < 1 {
		o.MaxConnections = 1
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.HelloName == "" {
		o.HelloName, _ = os.Hostname()
	}
	if o.TLSConfig == nil {
		o.TLSConfig = &tls.Config{ServerName: o.Host, MinVersion: tls.VersionTLS12}
	}
	return &SMTP{o: o, pool: make(chan *smtp.Client, o.MaxConnections), sem: make(chan struct{}, o.MaxConnections)}
}

// Send delivers raw exactly as given (the SMTP layer only dot-stuffs it on
// the wire) and returns the relay's reply to the end of DATA.
func (s *SMTP) Send(ctx context.Context, envelopeFrom string, to []string, raw []byte) (string, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", &Error{Msg: ctx.Err().Error()}
	}
	defer func() { <-s.sem }()
	var c *smtp.Client
	select {
	case c = <-s.pool:
		// A kept connection may have been closed by the relay meanwhile.
		if err := c.Reset(); err != nil {
			c.Close()
			c = nil
		}
	default:
	}
	if c == nil {
		var err error
		if c, err = s.dial(ctx); err != nil {
			return "", classify(err)
		}
	}
	reply, err := s.transact(ctx, c, envelopeFrom, to, raw)
	var e *Error
	if err != nil && !(errors.As(err, &e) && e.Code != 0) {
		c.Close() // a network error leaves the connection useless
		return "", err
	}
	select {
	case s.pool <- c:
	default:
		c.Quit()
	}
	return reply, err
}

func (s *SMTP) dial(ctx context.Context) (*smtp.Client, error) {
	addr := net.JoinHostPort(s.o.Host, fmt.Sprint(s.o.Port))
	d := &net.Dialer{Timeout: s.o.Timeout}
	var conn net.Conn
	var err error
	if s.o.TLS == "tls" {
		conn, err = (&tls.Dialer{NetDialer: d, Config: s.o.TLSConfig}).DialContext(ctx, "tcp", addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(s.o.Timeout))
	c, err := smtp.NewClient(conn, s.o.Host)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := c.Hello(s.o.HelloName); err != nil {
		c.Close()
		return nil, err
	}
	if s.o.TLS == "starttls" {
		if err := c.StartTLS(s.o.TLSConfig); err != nil {
			c.Close()
			return nil, err
		}
	}
	if s.o.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.o.Username, s.o.Password, s.o.Host, false)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (s *SMTP) transact(ctx context.Context, c *smtp.Client, from string, to []string, raw []byte) (string, error) {
	if err := c.UpdateDeadline(s.o.Timeout); err != nil {
		return "", classify(err)
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < s.o.Timeout {
		c.UpdateDeadline(time.Until(d))
	}
	if err := c.Mail(from); err != nil {
		return "", classify(err)
	}
	for _, rcpt := range to {
		if err := c.Rcpt(rcpt); err != nil {
			c.Reset()
			return "", classify(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		c.Reset()
		return "", classify(err)
	}
	if _, err := w.Write(raw); err != nil {
		return "", classify(err)
	}
	if err := w.Close(); err != nil {
		return "", classify(err)
	}
	reply := "250 accepted"
	if dc, ok := w.(*smtp.DataCloser); ok && dc.ServerResponse() != "" {
		reply = "250 " + dc.ServerResponse()
	}
	return reply, nil
}

// Close ends every kept connection.
func (s *SMTP) Close() {
	for {
		select {
		case c := <-s.pool:
			c.Quit()
		default:
			return
		}
	}
}

// Outbox writes each message into a folder instead of sending it: for a
// first run with no relay, and for operators who hand messages on by
// other means. Each file holds the exact bytes that would have been sent.
type Outbox struct{ Dir string }

// Send writes raw to DIR/NAME.eml, NAME derived from the recipient and a
// hash-free timestamp-free id: the message's own Message-ID, so that a
// resend overwrites rather than duplicates.
func (o Outbox) Send(_ context.Context, envelopeFrom string, to []string, raw []byte) (string, error) {
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return "", &Error{Msg: err.Error()}
	}
	name := safeName(messageID(raw)) + ".eml"
	tmp, err := os.CreateTemp(o.Dir, ".tmp-*")
	if err != nil {
		return "", &Error{Msg: err.Error()}
	}
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(o.Dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", &Error{Msg: err.Error()}
	}
	return "250 written to outbox as " + name, nil
}

func messageID(raw []byte) string {
	head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
	for _, line := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Message-ID") {
			return strings.Trim(strings.TrimSpace(v), "<>")
		}
	}
	return fmt.Sprintf("message-%d", time.Now().UnixNano())
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == '@' {
			return r
		}
		return '_'
	}, s)
}
