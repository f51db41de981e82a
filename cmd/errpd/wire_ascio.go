package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/intake"
	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/uploader"
)

// wireAscio adds, when an Ascio endpoint is configured, the proof uploader,
// the callback endpoint and the queue poller.
func (a *app) wireAscio(ctx context.Context, c config.Config, db *store.DB, log *slog.Logger, p *parts) error {
	if c.Ascio.Endpoint == "" {
		return nil
	}
	client := &ascio.Client{
		Endpoint: c.Ascio.Endpoint, Account: c.Ascio.Account, Password: c.Ascio.Password,
		HTTP: &http.Client{Timeout: c.Ascio.Timeout},
	}
	p.uploader = proofUploader{&uploader.Client{Ascio: client}}

	opts, err := planOptions(c)
	if err != nil {
		return err
	}
	cal := &storeCalendar{db: db, opts: opts, wake: p.wake}
	in := &intake.Intake{Ascio: client, Calendar: cal, Log: log, Now: time.Now}
	p.callback = intake.NewHandler(in, c.HTTP.CallbackToken, c.HTTP.AllowPrefixes(), 0)
	sched, err := c.Ascio.Schedule()
	if err != nil {
		return err
	}
	poller := &intake.Poller{Intake: in, Schedule: sched}
	renewals := &lifecycle.RenewalChecker{DB: db, Ascio: client, Plan: opts, Log: log}
	p.background = append(p.background, poller.Run, renewals.Run)
	return nil
}

// proofUploader adapts the uploader to the dispatcher's Uploader: Ascio's
// answer as text for the record. Its errors say what they mean themselves
// (failure.Kind). A notice Ascio has no message type for (the suspension
// notice) is done: the stored message is its proof, as the record says.
type proofUploader struct{ c *uploader.Client }

func (u proofUploader) Upload(ctx context.Context, orderID string, s store.Step, raw []byte) (string, error) {
	res, err := u.c.Upload(ctx, orderID, s.Notice, raw, s.UploadAttempts > 1)
	if errors.Is(err, uploader.ErrNotUploadable) {
		return err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	return res.String(), nil
}

// storeCalendar applies what Ascio's messages mean to the store, each
// together with the message id in one transaction, so that a replayed
// message changes nothing.
type storeCalendar struct {
	db   *store.DB
	opts store.PlanOptions
	wake *func()
}

func (s *storeCalendar) Apply(_ context.Context, ev intake.Event) (bool, error) {
	id := "ascio:" + strconv.Itoa(ev.MessageID)
	applied := false
	err := s.db.Update(func(tx *store.Tx) error {
		applied = false
		if tx.SeenMessage(id) {
			return nil
		}
		if e, ok := lifecycle.FromAscio(ev); ok {
			if _, _, err := lifecycle.Apply(tx, e, s.opts); err != nil {
				return err
			}
		}
		applied = true
		return tx.MarkMessage(id)
	})
	if err == nil && applied && s.wake != nil && *s.wake != nil {
		(*s.wake)()
	}
	return applied, err
}
