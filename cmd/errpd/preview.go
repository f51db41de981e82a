package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/delivery"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

func (a *app) newPreviewCmd() *cobra.Command {
	var domain, notice, now string
	var raw bool
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Print the notice a stored domain would be sent (headers and text body), without sending it",
		Long: `preview renders one notice of a stored domain exactly as errpd would build it
for sending: the partner's templates for the domain's brand and registrant's
language, the brand's sender, the Message-ID of the step. Nothing is sent
and nothing is stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			name, err := calendar.DomainName(domain)
			if err != nil {
				return fmt.Errorf("--domain: %w", err)
			}
			n, err := scheduler.ParseNotice(notice)
			if err != nil {
				return fmt.Errorf("--notice: %w", err)
			}
			clock := time.Now
			if now != "" {
				t, err := time.Parse(time.RFC3339, now)
				if err != nil {
					return fmt.Errorf("--now: %w", err)
				}
				clock = func() time.Time { return t }
			}
			b, err := newMessageBuilder(c, clock, a.logger(c))
			if err != nil {
				return err
			}
			return a.readStore(cmd.Context(), c, func(db *store.DB) error {
				var in message.Input
				err := db.View(func(tx *store.Tx) error {
					var err error
					in, err = previewInput(tx, name, n)
					return err
				})
				if err != nil {
					return err
				}
				m, err := b.Build(in)
				if err != nil {
					return err
				}
				if raw {
					_, err = a.stdout.Write(m.Raw)
					return err
				}
				return printPreview(a.stdout, m)
			})
		},
	}
	cmd.Flags().StringVar(&domain, "domain", "", "the stored domain (A-label or U-label)")
	cmd.Flags().StringVar(&notice, "notice", string(scheduler.Reminder1), "reminder1, reminder2, reminder3 or suspension")
	cmd.Flags().StringVar(&now, "now", "", "render as of this RFC 3339 time (default: now)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the whole message exactly as it would be sent")
	cmd.MarkFlagRequired("domain")
	return cmd
}

// previewInput finds what a notice of a stored domain would be built from:
// the current cycle's registrant snapshot and brand when there is one,
// else the domain's.
func previewInput(tx *store.Tx, name string, n scheduler.Notice) (message.Input, error) {
	d, ok, err := tx.Domain(name)
	if err != nil {
		return message.Input{}, err
	}
	if !ok {
		return message.Input{}, fmt.Errorf("domain %s is not in the store (errpd import, or errpd domains to list them)", name)
	}
	cyc := store.Cycle{Domain: d.Name, Expiry: d.Expiry, Mode: d.Mode, Registrant: d.Registrant, Brand: d.Brand}
	if d.Cycle != "" {
		if got, ok, err := tx.Cycle(d.Cycle); err != nil {
			return message.Input{}, err
		} else if ok {
			cyc = got
		}
	}
	step := store.Step{ID: store.StepID(cyc.Domain, cyc.Expiry, n), Domain: cyc.Domain, Expiry: cyc.Expiry, Notice: n}
	in := messageInput(step, cyc)
	if !slices.Contains(templates.Kinds, string(cyc.Mode)+"-"+string(n)) {
		return in, fmt.Errorf("%s is in mode %s, which sends no %s", name, cyc.Mode, n)
	}
	return in, nil
}

// printPreview writes the header block as it will be sent, then the plain
// text alternative decoded.
func printPreview(w io.Writer, m message.Message) error {
	head, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
	var out bytes.Buffer
	out.Write(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")))
	out.WriteString("\n\n")
	pm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	_, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return errors.New("the message has no text/plain part")
		}
		if err != nil {
			return err
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			body, err := io.ReadAll(p)
			if err != nil {
				return err
			}
			out.Write(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")))
			lang := "language " + m.Language
			if m.LanguageFallback != "" {
				lang += ", no template in the registrant's " + m.LanguageFallback
			}
			fmt.Fprintf(&out, "\n(templates: %s; %s; %d bytes as sent; --raw prints them)\n", m.Source, lang, len(m.Raw))
			_, err = w.Write(out.Bytes())
			return err
		}
	}
}

// The functions below connect the mail packages to the dispatcher; wire.go
// uses them.

// newMessageBuilder loads and lints the templates (embedded and config's
// folder) and makes the builder, test-rendering every notice for every
// brand: a broken template or brand stops errpd here, and so does a
// template without a required fact unless templates.lint = "warn".
func newMessageBuilder(c config.Config, now func() time.Time, log *slog.Logger) (*message.Builder, error) {
	set, err := loadTemplates(c, log)
	if err != nil {
		return nil, err
	}
	return message.New(c, set, now)
}

// messageInput is the builder's input for a step of a cycle.
func messageInput(s store.Step, c store.Cycle) message.Input {
	return message.Input{
		StepID: s.ID, Domain: s.Domain, Expiry: s.Expiry, Mode: string(c.Mode), Notice: string(s.Notice),
		Brand:      c.Brand,
		Registrant: message.Registrant{Name: c.Registrant.Name, Email: c.Registrant.Email, Language: c.Registrant.Language},
	}
}

// messageRenderer is a dispatcher.Renderer over message.Builder.
type messageRenderer struct{ b *message.Builder }

func (r messageRenderer) Render(s store.Step, c store.Cycle) (dispatcher.Message, error) {
	m, err := r.b.Build(messageInput(s, c))
	if err != nil {
		return dispatcher.Message{}, err
	}
	return dispatcher.Message{Raw: m.Raw, MessageID: m.MessageID, From: m.From, To: m.To, EnvelopeFrom: m.EnvelopeFrom,
		Language: m.Language, LanguageFallback: m.LanguageFallback}, nil
}

// deliverySender is a dispatcher.Sender over a delivery.Sender: the reply
// as text for the record. Its errors tell the dispatcher what they mean
// themselves (failure.Kind), so they pass as they are.
type deliverySender struct{ s delivery.Sender }

func (d deliverySender) Send(ctx context.Context, from string, to []string, raw []byte, gate func() error) (string, error) {
	reply, err := d.s.SendGated(ctx, from, to, raw, gate)
	return reply.String(), err
}

// newDeliverySender is the relay from [smtp], or the outbox without a
// host; close ends its connections.
func newDeliverySender(c config.Config) (s dispatcher.Sender, close func(), err error) {
	if c.SMTP.Host == "" {
		return deliverySender{delivery.Outbox{Dir: c.SMTP.OutboxDir}}, func() {}, nil
	}
	relay, err := delivery.NewSMTP(delivery.OptionsFrom(c.SMTP))
	if err != nil {
		return nil, nil, err
	}
	return deliverySender{relay}, func() { relay.Close() }, nil
}
