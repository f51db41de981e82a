package main

import (
	"github.com/spf13/cobra"

	"github.com/errpd/errpd/store"
)

func (a *app) newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			log := a.logger(c)
			db, err := a.openStore(c)
			if err != nil {
				return err
			}
			defer db.Close()
			var missed []store.Step
			err = db.Update(func(tx *store.Tx) error {
				missed, err = tx.Sweep()
				return err
			})
			if err != nil {
				return err
			}
			for _, s := range missed {
				log.Warn("notice missed its window", "step", s.ID, "deadline", s.Deadline)
			}
			if c.SMTP.Host == "" {
				log.Info("no smtp.host: messages are written to the outbox instead of sent", "outbox", c.SMTP.OutboxDir)
			}
			if c.Ascio.Endpoint == "" {
				log.Info("no ascio.endpoint: proof uploads wait until Ascio credentials are set")
			}
			log.Info("errpd serving", "store", c.Store.Path, "listen", c.HTTP.Listen)
			<-cmd.Context().Done()
			log.Info("errpd stopping")
			return nil
		},
	}
}
