package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/store"
)

func (a *app) newVerifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the file's structure, the audit chain and the stored messages; report the first break",
		Long: `verify first checks the file's structure: it reads every key and value,
and bbolt's own check (tx.Check) looks for pages unreachable, freed twice or
out of order; a file that does not hold together is BROKEN. Then it checks
that the audit records form an unbroken hash chain (sequence contiguous,
each record linked to the previous one's hash, each hash its record's own,
the last one the stored head) and that every stored message still hashes
to the SHA-256 recorded when it was sent. Messages purged by retention are
accepted when the chain records their purge. It exits 1 on a
break. Works while errpd serve runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			err = a.readStore(cmd.Context(), c, func(db *store.DB) error {
				v, err := db.Verify()
				var b *store.Break
				if errors.As(err, &b) {
					return errRejected{msg: "BROKEN: " + b.Error()}
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "ok: %d pages pass bbolt's structural check; %d audit records chained, head %d %s at %s; %d messages intact, %d purged by retention\n",
					v.Pages, v.Records, v.Head.Seq, v.Head.Hash, rfc(v.Head.At), v.Messages, v.Purged)
				return nil
			})
			// A file that does not hold together is broken too, whether
			// opening it or reading a page found out.
			var damaged *store.DamagedError
			if errors.As(err, &damaged) {
				return errRejected{msg: "BROKEN: " + damaged.Error()}
			}
			return err
		},
	}
}

func (a *app) newChainHeadCmd() *cobra.Command {
	var daily bool
	cmd := &cobra.Command{
		Use:   "chain-head",
		Short: "Print the audit chain's head (seq, hash, time) as JSON, to anchor elsewhere",
		Long: `chain-head prints the audit chain's last record as {"seq","hash","at"}. With
--daily it prints the last record of every UTC day, one JSON object a line.
Sending the day's head somewhere errpd cannot write (a partner's ticket, a
mail, a timestamping service) makes a later rewrite of the chain up to it
detectable. Works while errpd serve runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(a.stdout)
			return a.readStore(cmd.Context(), c, func(db *store.DB) error {
				if daily {
					return db.DailyHeads(func(h store.Head) error { return enc.Encode(h) })
				}
				return db.View(func(tx *store.Tx) error {
					h, err := tx.ChainHead()
					if err != nil {
						return err
					}
					return enc.Encode(h)
				})
			})
		},
	}
	cmd.Flags().BoolVar(&daily, "daily", false, "print each UTC day's last record")
	return cmd
}

func (a *app) newPurgeCmd() *cobra.Command {
	var before string
	cmd := &cobra.Command{
		Use:   "purge [--before DATE]",
		Short: "Delete raw messages older than audit.retention, leaving an audit record each",
		Long: `purge deletes the stored raw messages of notices sent (or, if never sent,
due) before now less audit.retention, or before --before, of domains that
left the calendar (deleted, transferred away) more than two years ago: a
domain still in the calendar keeps every message. Only steps in a final
state lose their bytes. Each purge appends an audit record, so that
errpd verify stays green and shows what was purged. Works while errpd serve
runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			cut, err := parseDate(before)
			if err != nil {
				return fmt.Errorf("--before: %w", err)
			}
			if cut.IsZero() {
				if c.Audit.Retention == 0 {
					return errors.New("audit.retention is 0: messages are kept forever (give --before to purge anyway)")
				}
				cut = time.Now().Add(-c.Audit.Retention)
			}
			return a.withStore(cmd.Context(), c, func(db *store.DB) error {
				n, err := db.PurgeMessages(store.Retention{SentBefore: cut, LeftBefore: time.Now().Add(-store.LeftHold)})
				if err != nil {
					return fmt.Errorf("purge: %w", err)
				}
				fmt.Fprintf(a.stdout, "%d messages of notices before %s purged (those of domains in the calendar, or that left it less than two years ago, are kept)\n", n, rfc(cut))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&before, "before", "", "purge messages of notices before `DATE` instead of now less audit.retention")
	return cmd
}
