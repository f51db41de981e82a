package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/store"
)

func (a *app) newBackupCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the store, also while the daemon runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			path := a.outputArg(args[0])
			return a.readStore(cmd.Context(), c, func(db *store.DB) error {
				// A read transaction sees one consistent state while writers
				// go on.
				err := a.writeOutput(path, 0o600, func(w io.Writer) error {
					return db.Bolt().View(func(tx *bolt.Tx) error {
						m := a.meter(a.logger(c), "backup", tx.Size())
						if _, err := tx.WriteTo(meterWriter{w, m}); err != nil {
							return err
						}
						return m.Finish()
					})
				})
				if err != nil {
					return fmt.Errorf("backup: %w", err)
				}
				fmt.Fprintf(a.stdout, "store copied to %s\n", path)
				return nil
			})
		},
	}
}
