package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/console"
	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/store"
)

// openConsole opens the operator console's listener, with the same bounds
// as the HTTP listener's (timeouts, header cap, connection cap); nil when
// [console] listen is empty or no user is configured.
func (a *app) openConsole(c config.Config, db *store.DB, p *parts, log *slog.Logger, m *httpMetrics) (*listener, error) {
	if c.Console.Listen == "" {
		return nil, nil
	}
	if len(c.Console.Users) == 0 {
		log.Info("console off: no [console] users (errpd hash-password makes a user's hash)")
		return nil, nil
	}
	h, err := console.New(console.Options{
		DB: db, Users: c.Console.Users, SessionTTL: c.Console.SessionTTL, Log: log.With("listener", "console"),
		Now:        time.Now,
		Build:      func(in message.Input) (message.Message, error) { return p.builder().Build(in) },
		SigningKey: c.Audit.SigningKey,
		Wake:       func() { (*p.wake)() },
	})
	if err != nil {
		return nil, err
	}
	l, err := listenHTTP("console", c.Console.Listen, c.HTTP, nil, h, log, m)
	if err != nil {
		return nil, fmt.Errorf("console.listen: %w", err)
	}
	if c.Console.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.Console.CertFile, c.Console.KeyFile)
		if err != nil {
			l.ln.Close()
			return nil, fmt.Errorf("console.cert_file, console.key_file: %w", err)
		}
		l.ln = tls.NewListener(l.ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return l, nil
}

// addrOf is the address of the listener named name, else of or (nil: "").
func addrOf(ls []*listener, name string, or *listener) string {
	for _, l := range ls {
		if l.name == name {
			return l.ln.Addr().String()
		}
	}
	if or != nil {
		return or.ln.Addr().String()
	}
	return ""
}

func (a *app) newHashPasswordCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Read a console password on stdin and print its bcrypt hash for [console] users",
		Long: `hash-password reads one line (a password) from standard input and prints
its bcrypt hash, to put in config as [console] users = { name = "HASH" }.
From a terminal the password is not echoed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd.InOrStdin(), a.stderr)
			if err != nil {
				return err
			}
			hash, err := bcrypt.GenerateFromPassword(pw, bcrypt.DefaultCost)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, string(hash))
			return nil
		},
	}
}

// readPassword reads a line: without echo from a terminal, else as piped.
func readPassword(in io.Reader, prompt io.Writer) ([]byte, error) {
	var pw []byte
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, err
		}
		pw = b
	} else {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		pw = []byte(strings.TrimRight(line, "\r\n"))
	}
	switch {
	case len(pw) == 0:
		return nil, errors.New("no password on stdin")
	case len(pw) > 72:
		return nil, errors.New("the password is longer than bcrypt's 72 bytes")
	}
	return pw, nil
}
