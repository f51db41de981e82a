package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/notice"
	"github.com/errpd/errpd/relay"
	"github.com/errpd/errpd/store"
)

// parts are the daemon's side-effecting components, built from the config.
type parts struct {
	renderer   dispatcher.Renderer
	sender     dispatcher.Sender
	uploader   dispatcher.Uploader // nil without an Ascio endpoint
	callback   http.Handler        // Ascio's callbacks; nil without an Ascio endpoint
	background []func(context.Context) error
	reload     func(config.Config) error
	closers    []func()
	// wake is set once the dispatcher exists: intake calls it when a
	// message planned new work.
	wake *func()
}

func (p *parts) close() {
	for _, c := range p.closers {
		c()
	}
}

// wire builds the parts. It is the one place that knows which package does
// what; everything else talks through the dispatcher's small interfaces.
func (a *app) wire(ctx context.Context, c config.Config, db *store.DB, log *slog.Logger) (*parts, error) {
	p := &parts{wake: new(func())}
	r, err := newRenderer(c)
	if err != nil {
		return nil, err
	}
	// SIGHUP swaps the renderer whole, so a send never sees half a reload.
	var current atomic.Pointer[notice.Renderer]
	current.Store(r)
	p.renderer = rendererFunc(func() dispatcher.Renderer { return current.Load() })
	p.reload = func(c config.Config) error {
		r, err := newRenderer(c)
		if err != nil {
			return err
		}
		current.Store(r)
		return nil
	}
	if c.SMTP.Host == "" {
		p.sender = sendError{relay.Outbox{Dir: c.SMTP.OutboxDir}}
	} else {
		s := relay.NewSMTP(relay.Options{
			Host: c.SMTP.Host, Port: c.SMTP.Port, TLS: c.SMTP.TLS,
			Username: c.SMTP.Username, Password: c.SMTP.Password.Reveal(),
			Timeout: c.SMTP.Timeout, MaxConnections: c.SMTP.MaxConnections,
		})
		p.sender = sendError{s}
		p.closers = append(p.closers, s.Close)
	}
	if err := a.wireAscio(ctx, c, db, log, p); err != nil {
		return nil, err
	}
	return p, nil
}

func newRenderer(c config.Config) (*notice.Renderer, error) {
	set, err := notice.Load(c.Templates)
	if err != nil {
		return nil, err
	}
	return &notice.Renderer{Set: set, Mail: c.Mail, Brands: c.Brands, EnvelopeFrom: c.SMTP.EnvelopeFrom}, nil
}

// rendererFunc reads the current renderer at each call.
type rendererFunc func() dispatcher.Renderer

func (f rendererFunc) Render(s store.Step, c store.Cycle) (dispatcher.Message, error) {
	return f().Render(s, c)
}

// sendError turns the relay's typed errors into the dispatcher's.
type sendError struct{ dispatcher.Sender }

func (s sendError) Send(ctx context.Context, from string, to []string, raw []byte) (string, error) {
	reply, err := s.Sender.Send(ctx, from, to, raw)
	if err != nil && relay.IsPermanent(err) {
		return reply, dispatcher.Permanent(err)
	}
	return reply, err
}
