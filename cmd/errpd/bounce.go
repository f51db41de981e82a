package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/net/netutil"

	"github.com/errpd/errpd/bounce"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/store"
)

func (a *app) newBounceCmd() *cobra.Command {
	var rcpt string
	cmd := &cobra.Command{
		Use:   "bounce [MESSAGE]",
		Short: "Record a bounce read from MESSAGE or stdin (an MTA pipe transport)",
		Long: `bounce reads one message sent to a bounce address (from MESSAGE, else
stdin), finds the notice its VERP address names (--recipient, else the
message's Delivered-To, X-Original-To and To headers), and records the
bounce on its step: an RFC 3464 report's status, or a non-standard bounce
by its address alone. Auto-replies, and addresses without a valid token
(forged, or not errpd's), change nothing and exit 0, so that an MTA does
not bounce them again. See the README for a Postfix pipe.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			path := "/dev/stdin"
			if len(args) == 1 {
				path = args[0]
			}
			path = a.inputArg(path)
			var rcpts []string
			if rcpt != "" {
				rcpts = []string{rcpt}
			}
			return a.withStore(cmd.Context(), c, func(db *store.DB) error {
				raw, err := a.readInput(path, c.Bounces.MaxMessageBytes)
				if err != nil {
					return err
				}
				out, err := a.bounceRecorder(c, db).Take(rcpts, raw)
				var parse *bounce.ParseError
				switch {
				case errors.Is(err, bounce.ErrToken):
					fmt.Fprintln(a.stdout, "ignored: no valid bounce token in", rcpts, "(logged)")
					return nil
				case errors.As(err, &parse):
					fmt.Fprintln(a.stdout, "ignored: not readable:", err)
					return nil
				case err != nil:
					return err
				case out.Verdict.Kind == "":
					fmt.Fprintln(a.stdout, "ignored:", out.Verdict.Ignored)
					return nil
				}
				fmt.Fprintf(a.stdout, "recorded: %s %s on %s\n", out.Verdict.Kind, out.Verdict.Status, out.Step)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&rcpt, "recipient", "", "the envelope recipient (the VERP address), e.g. Postfix's ${original_recipient}")
	return cmd
}

// readInput reads a whole input file, refusing one over max bytes.
func (a *app) readInput(path string, max int) ([]byte, error) {
	f, _, err := a.openInput(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > max {
		return nil, fmt.Errorf("%s: %w: over bounces.max_message_bytes (%d)", path, bounce.ErrTooLarge, max)
	}
	return raw, nil
}

// bounceRecorder is the daemon's recorder (its log and metrics) inside
// the daemon, else one for this command.
func (a *app) bounceRecorder(c config.Config, db *store.DB) *bounce.Recorder {
	if a.daemon != nil && a.daemon.bounces != nil {
		return a.daemon.bounces
	}
	return &bounce.Recorder{DB: db, Log: a.logger(c), MaxBytes: c.Bounces.MaxMessageBytes}
}

// bounceConnections caps the bounce listener's open connections.
const bounceConnections = 16

// wireBounces makes the daemon's bounce recorder and, with bounces.listen,
// the SMTP listener's job (bound here, so a taken port stops serve at
// start).
func wireBounces(c config.Config, db *store.DB, log *slog.Logger, reg prometheus.Registerer) (*bounce.Recorder, func(context.Context) error, error) {
	rec := &bounce.Recorder{DB: db, Log: log.With("part", "bounces"), Metrics: bounce.NewMetrics(reg), MaxBytes: c.Bounces.MaxMessageBytes}
	if c.Bounces.Listen == "" {
		return rec, nil, nil
	}
	ln, err := net.Listen("tcp", c.Bounces.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("bounces.listen: %w", err)
	}
	// Bounces trickle in from one MX: a few connections at once are plenty,
	// and the rest wait in the backlog without costing a descriptor.
	ln = netutil.LimitListener(ln, bounceConnections)
	name := c.SMTP.Helo
	if name == "" {
		name = "errpd"
	}
	l := &bounce.Listener{Recorder: rec, Domains: c.BounceDomains(), Name: name, Timeout: c.Bounces.Timeout, Log: rec.Log}
	srv := l.Server()
	log.Info("bounce listener", "listen", ln.Addr().String(), "domains", l.Domains)
	return rec, func(ctx context.Context) error {
		stop := context.AfterFunc(ctx, func() { srv.Close() })
		defer stop()
		err := srv.Serve(ln)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}, nil
}

// verpSigner signs with the store's VERP key, made at first use; nil without
// bounces.verp.
func verpSigner(c config.Config, db *store.DB) (*bounce.Signer, error) {
	if !c.Bounces.VERP {
		return nil, nil
	}
	var key []byte
	err := db.Update(func(tx *store.Tx) (err error) {
		key, err = tx.VERPKey()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bounce key: %w", err)
	}
	return bounce.NewSigner(key), nil
}

// verpRenderer gives each rendered notice its step's VERP envelope
// sender. The message bytes (and so the Message-ID and the stored proof)
// do not change: the envelope is not in them; only the Return-Path a
// relay adds on delivery shows it.
type verpRenderer struct {
	next dispatcher.Renderer
	sign *bounce.Signer
}

func (r verpRenderer) Render(s store.Step, c store.Cycle) (dispatcher.Message, error) {
	m, err := r.next.Render(s, c)
	if err != nil || r.sign == nil {
		return m, err
	}
	m.EnvelopeFrom, err = r.sign.Address(m.EnvelopeFrom, s.ID)
	return m, err
}
