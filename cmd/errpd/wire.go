package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

// parts are the daemon's side-effecting components, built from the config.
type parts struct {
	renderer   dispatcher.Renderer
	sender     dispatcher.Sender
	uploader   dispatcher.Uploader // nil without an Ascio endpoint
	callback   http.Handler        // Ascio's callbacks; nil without an Ascio endpoint
	background []func(context.Context) error
	reload     func(config.Config) error
	templates  func() *templates.Set // the set the renderer uses now
	closers    []func()
	// wake is set once the dispatcher exists: intake calls it when a
	// message planned new work.
	wake *func()
	// builder is the current message builder (SIGHUP swaps it), for the
	// console's preview.
	builder func() *message.Builder
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
	// SIGHUP swaps the renderer whole, so a send never sees half a reload;
	// the template set goes with it, for the commands the daemon runs.
	var current atomic.Pointer[message.Builder]
	var currentSet atomic.Pointer[templates.Set]
	started := c.Policy
	build := func(c config.Config) error {
		// The policy changes on restart only; its day counts give the
		// notices their dates, which must agree with the planned steps.
		c.Policy = started
		set, err := loadTemplates(c, log)
		if err != nil {
			return err
		}
		b, err := message.New(c, set, nil)
		if err != nil {
			return err
		}
		current.Store(b)
		currentSet.Store(set)
		return nil
	}
	if err := build(c); err != nil {
		return nil, err
	}
	sign, err := verpSigner(c, db)
	if err != nil {
		return nil, err
	}
	p.builder = current.Load
	p.renderer = verpRenderer{rendererFunc(func() dispatcher.Renderer { return messageRenderer{current.Load()} }), sign}
	p.reload = build
	p.templates = currentSet.Load
	sender, closeSender, err := newDeliverySender(c)
	if err != nil {
		return nil, err
	}
	p.sender = sender
	p.closers = append(p.closers, closeSender)
	if err := a.wireAscio(ctx, c, db, log, p); err != nil {
		return nil, err
	}
	return p, nil
}

// rendererFunc reads the current renderer at each call.
type rendererFunc func() dispatcher.Renderer

func (f rendererFunc) Render(s store.Step, c store.Cycle) (dispatcher.Message, error) {
	return f().Render(s, c)
}
