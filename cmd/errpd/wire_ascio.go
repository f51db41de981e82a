package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/proof"
	"github.com/errpd/errpd/store"
)

// wireAscio adds the proof uploader when an Ascio endpoint is configured.
func (a *app) wireAscio(ctx context.Context, c config.Config, db *store.DB, log *slog.Logger, p *parts) error {
	if c.Ascio.Endpoint == "" {
		return nil
	}
	p.uploader = uploader{&proof.Client{
		Endpoint: c.Ascio.Endpoint, Account: c.Ascio.Account, Password: c.Ascio.Password,
		HTTP: &http.Client{Timeout: c.Ascio.Timeout},
	}}
	return nil
}

// uploader adapts proof.Client to the dispatcher's Uploader.
type uploader struct{ c *proof.Client }

func (u uploader) Upload(ctx context.Context, orderID string, s store.Step, raw []byte) (string, error) {
	res, err := u.c.Upload(ctx, orderID, s.Notice, raw)
	switch {
	case errors.Is(err, proof.ErrNotUploadable):
		return "", dispatcher.ErrNoUpload
	case err != nil && proof.IsPermanent(err):
		return "", dispatcher.Permanent(err)
	}
	return res, err
}
