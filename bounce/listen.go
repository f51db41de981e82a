package bounce

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// Listener is the SMTP side: the partner's MX forwards bounce mail for
// the bounce domains to it. It accepts recipients under those domains
// only, caps the message size and the recipients, and times out idle
// peers.
type Listener struct {
	Recorder *Recorder
	Domains  []string // lower-case; RCPT TO outside them is refused
	Name     string   // the name in the greeting
	Timeout  time.Duration
	Log      *slog.Logger
}

// Server is the go-smtp server to Serve on a listener; Close or Shutdown
// stops it.
func (l *Listener) Server() *smtp.Server {
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{l: l}, nil
	}))
	s.Domain = l.Name
	s.MaxMessageBytes = int64(l.Recorder.MaxBytes)
	s.MaxRecipients = 16
	s.ReadTimeout, s.WriteTimeout = l.Timeout, l.Timeout
	s.ErrorLog = slogLogger{l.Log}
	return s
}

type session struct {
	l     *Listener
	rcpts []string
}

func (s *session) Reset()        { s.rcpts = nil }
func (s *session) Logout() error { return nil }

func (s *session) Mail(string, *smtp.MailOptions) error { return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	at := strings.LastIndexByte(to, '@')
	domain := strings.ToLower(to[at+1:])
	for _, d := range s.l.Domains {
		if at > 0 && domain == d {
			s.rcpts = append(s.rcpts, to)
			return nil
		}
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "not a bounce address here"}
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // go-smtp answers 552 for a message over the cap
	}
	_, err = s.l.Recorder.Take(s.rcpts, raw)
	switch {
	case err == nil, errors.Is(err, ErrToken):
		// A forged or foreign token was logged; the sender learns nothing.
		return nil
	case errors.Is(err, ErrTooLarge):
		return smtp.ErrDataTooLarge
	}
	var parse *ParseError
	if errors.As(err, &parse) {
		return nil // logged; a retry would not make it readable
	}
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "bounce not recorded, try again later"}
}

// slogLogger puts go-smtp's own errors in errpd's log.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Printf(format string, v ...any) {
	s.l.Warn("bounce listener", "msg", fmt.Sprintf(format, v...))
}
func (s slogLogger) Println(v ...any) { s.l.Warn("bounce listener", "msg", fmt.Sprint(v...)) }
