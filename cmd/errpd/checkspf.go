package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/mailauth"
	"github.com/errpd/errpd/message"
)

func (a *app) newCheckSPFCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-spf",
		Short: "Check that every brand's notices pass SPF and align with From (DMARC), and print the DNS records that fix a failure",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			verdicts, err := checkMailAuth(cmd.Context(), c)
			for _, v := range verdicts {
				fmt.Fprint(a.stdout, v.Report())
			}
			if err != nil {
				return err
			}
			failed := 0
			for _, v := range verdicts {
				if !v.OK {
					failed++
				}
			}
			if failed > 0 {
				return errRejected{fmt.Sprintf("%d of %d senders fail the check", failed, len(verdicts))}
			}
			return nil
		},
	}
}

// checkMailAuth checks the [mail] sender and every brand, in that order.
func checkMailAuth(ctx context.Context, c config.Config) ([]mailauth.Verdict, error) {
	ch := &mailauth.Checker{Resolver: mailauth.NewResolver(c.SMTP.Resolver)}
	for _, s := range c.SMTP.EgressIPs {
		ch.IPs = append(ch.IPs, net.ParseIP(s)) // validated by config
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	names := []string{""}
	for name := range c.Brands {
		names = append(names, name)
	}
	slices.Sort(names[1:])
	var out []mailauth.Verdict
	for _, name := range names {
		r := c.ResolveBrand(name)
		from, err := mail.ParseAddress(r.From)
		if err != nil {
			return out, fmt.Errorf("brand %q: from %q: %w", name, r.From, err)
		}
		env, err := mail.ParseAddress(r.EnvelopeFrom)
		if err != nil {
			return out, fmt.Errorf("brand %q: envelope_from %q: %w", name, r.EnvelopeFrom, err)
		}
		s := mailauth.Sender{Brand: name, From: from.Address, EnvelopeFrom: env.Address}
		if r.DKIMKey != "" {
			k, err := message.LoadDKIM(from.Address[strings.LastIndexByte(from.Address, '@')+1:], r.DKIMSelector, r.DKIMKey)
			if err != nil {
				return out, fmt.Errorf("brand %q: %w", name, err)
			}
			s.DKIM = &mailauth.DKIM{Domain: k.Domain, Selector: k.Selector, Record: k.Record()}
		}
		v, err := ch.Check(ctx, s)
		if err != nil {
			return out, fmt.Errorf("brand %q: %w", name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// startupMailAuth runs the check when errpd starts, as smtp.spf_check
// says: "off" skips it, "refuse" turns a failure into an error that stops
// errpd, "warn" (or empty) logs each failing sender with its fixes. Without
// a relay (the outbox) and without egress addresses there is nothing to
// check. A DNS failure is logged, never fatal: DNS may be down at boot.
// Everything goes through the logger, one line per sender (JSON when
// log.format is); `errpd check-spf` prints the full report.
func startupMailAuth(ctx context.Context, c config.Config, log *slog.Logger) error {
	if c.SMTP.SPFCheck == "off" || (c.SMTP.Host == "" && len(c.SMTP.EgressIPs) == 0) {
		return nil
	}
	verdicts, err := checkMailAuth(ctx, c)
	if err != nil {
		log.Warn("mail authentication check could not run", "err", err)
		return nil
	}
	var failed []string
	for _, v := range verdicts {
		if v.OK {
			continue
		}
		name := v.Sender.Brand
		if name == "" {
			name = "[mail]"
		}
		failed = append(failed, name)
		log.Warn("notices may fail SPF/DMARC", "brand", name, "from", v.Sender.From,
			"envelope_from", v.Sender.EnvelopeFrom, "problems", v.Problems, "fixes", v.Fixes)
	}
	if len(failed) > 0 && c.SMTP.SPFCheck == "refuse" {
		return fmt.Errorf("mail authentication fails for %s (smtp.spf_check = \"refuse\"; errpd check-spf shows the fixes)",
			strings.Join(failed, ", "))
	}
	return nil
}
