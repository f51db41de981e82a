package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/delivery"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/preview"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
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
					in, err = preview.Input(tx, name, n)
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
				return preview.Text(a.stdout, m)
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

// messageRenderer is a dispatcher.Renderer over message.Builder.
type messageRenderer struct{ b *message.Builder }

func (r messageRenderer) Render(s store.Step, c store.Cycle) (dispatcher.Message, error) {
	m, err := r.b.Build(preview.StepInput(s, c))
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
