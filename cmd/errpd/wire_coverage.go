package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/coverage"
	"github.com/errpd/errpd/store"
)

// coverageJob is the covered_by_ascio check (package coverage), or nil
// without an Ascio endpoint: then the checks wait in the store's index
// until one is configured.
func coverageJob(c config.Config, db *store.DB, log *slog.Logger) func(context.Context) error {
	if c.Ascio.Endpoint == "" {
		return nil
	}
	client := &ascio.Client{
		Endpoint: c.Ascio.Endpoint, Account: c.Ascio.Account, Password: c.Ascio.Password,
		HTTP: &http.Client{Timeout: c.Ascio.Timeout},
	}
	ch := &coverage.Checker{DB: db, Ascio: client, Log: log.With("job", "coverage")}
	return ch.Run
}
