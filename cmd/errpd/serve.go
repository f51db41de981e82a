package main

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/errpd/errpd/admin"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

func (a *app) newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: send due notices, upload proof, take Ascio's callbacks",
		Long: `serve runs errpd's main job until SIGTERM or SIGINT: it sends every due
notice inside its window, uploads its proof to Ascio, listens for Ascio's
callbacks and serves /healthz and /metrics. SIGHUP reloads the templates and
the settings that can change while running. While it runs, the other
commands (import, domains, resolve, ...) are carried out by it through a
unix socket beside the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.daemon != nil {
				return errors.New("serve cannot run through a running daemon")
			}
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			limit, from := applyMemoryLimit(os.Getenv)
			a.logger(c).Info("soft memory limit", "bytes", limit, "from", from)
			if err := a.serve(cmd.Context(), c); err != nil {
				a.logger(c).Error("errpd serve failed", "err", err)
				return errLogged{err}
			}
			return nil
		},
	}
}

// defaultMemoryLimit is the daemon's soft memory limit (Go's GOMEMLIMIT)
// when the environment sets none. Importing 1,000,000 rows through the
// daemon kept at most 123 MB live, but the collector's default headroom
// (GOGC=100) let its own memory reach 236 MiB; with this limit it peaked
// at 170 MiB, at the same CPU (scripts/bench-import.sh daemon). It is a
// soft limit: a larger live heap (a calendar of many millions of rows
// holds ~14 MB a million to catch duplicates) only makes the collector
// run more often. GOMEMLIMIT in the environment overrides it.
const defaultMemoryLimit = 180 << 20

// applyMemoryLimit sets defaultMemoryLimit unless GOMEMLIMIT is set (the
// runtime has applied that one already); it returns the limit in force
// and where it came from.
func applyMemoryLimit(getenv func(string) string) (int64, string) {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
	return defaultMemoryLimit, "default"
}

func (a *app) serve(ctx context.Context, c config.Config) error {
	log := a.logger(c)
	started := c // as read, without the passwords, to compare on SIGHUP
	// Only serve reads the passwords: the other commands run inside it.
	secrets, err := c.ReadSecrets()
	if err != nil {
		return err
	}
	for _, key := range slices.Sorted(maps.Keys(secrets)) {
		log.Info("secret read", "key", key, "from", secrets[key])
	}
	if err := startupMailAuth(ctx, c, log); err != nil {
		return err
	}
	// A daemon holds the store while it runs: a second one stops at once.
	// An older store is upgraded first, its progress in the log.
	if _, err := a.upgradeStore(c, log, true, false); err != nil {
		return err
	}
	db, err := store.Open(c.Store.Path, store.Options{NoWait: true})
	if err != nil {
		return err
	}
	defer db.Close()

	parts, err := a.wire(ctx, c, db, log)
	if err != nil {
		return err
	}
	defer parts.close()
	if job := coverageJob(c, db, log); job != nil { // Ascio's own sends, a day after each deadline
		parts.background = append(parts.background, job)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d := &dispatcher.Dispatcher{
		DB:            db,
		Renderer:      parts.renderer,
		Sender:        parts.sender,
		Uploader:      parts.uploader,
		Log:           log,
		Metrics:       dispatcher.NewMetrics(reg, db),
		Workers:       c.SMTP.MaxConnections,
		ResendInDoubt: c.Dispatch.InDoubt == "resend",
		Retry:         dispatcher.Retry{Base: c.Dispatch.RetryBase, Max: c.Dispatch.RetryMax},
		UploadGrace:   c.Ascio.Timeout,

		MaxPrepareAttempts: c.Dispatch.MaxPrepareAttempts,
	}
	*parts.wake = d.Wake
	bounces, listenBounces, err := wireBounces(c, db, log, reg)
	if err != nil {
		return err
	}
	if listenBounces != nil {
		parts.background = append(parts.background, listenBounces)
	}
	inDoubt, err := d.Recover()
	if err != nil {
		return err
	}
	for _, s := range inDoubt {
		if s.State == scheduler.StateInDoubt {
			log.Warn("step in doubt after an unclean stop; see `errpd resolve`", "step", s.ID)
		} else {
			log.Warn("step caught by an unclean stop is sent again (dispatch.in_doubt = \"resend\")", "step", s.ID)
		}
	}
	// Older ones too: a step in doubt waits for an operator however long ago
	// it got there.
	var waiting uint64
	db.View(func(tx *store.Tx) error {
		waiting = tx.Counts()[scheduler.StateInDoubt]
		return nil
	})
	if waiting > 0 {
		log.Warn("steps in doubt wait for an operator; list them with `errpd resolve`", "in_doubt", waiting)
	}
	if c.SMTP.Host == "" {
		log.Info("no smtp.host: each message is written to the outbox, exactly as it would be sent", "outbox", c.SMTP.OutboxDir)
	}
	if parts.uploader == nil {
		log.Info("no ascio.endpoint: proof uploads wait until Ascio credentials are set")
	}

	// /healthz and /metrics are served on http.listen, or on an address of
	// their own (http.metrics_listen), out of reach of the public side.
	mux := http.NewServeMux()
	ops := mux
	if c.HTTP.MetricsListen != "" {
		ops = http.NewServeMux()
	}
	ops.Handle("GET /healthz", d.HealthHandler())
	ops.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if parts.callback != nil {
		mux.Handle(c.HTTP.CallbackPath, parts.callback)
	}
	httpm := newHTTPMetrics(reg)
	listeners, err := openListeners(c, mux, ops, log, httpm)
	if err != nil {
		return err
	}
	if l, err := a.openConsole(c, db, parts, log, httpm); err != nil {
		for _, l := range listeners {
			l.ln.Close()
		}
		return err
	} else if l != nil {
		listeners = append(listeners, l)
	}
	checkFileLimit(c, len(listeners), log)
	// Bound before "errpd serving" is logged: from then on commands reach it.
	adminLn, err := admin.Listen(admin.SocketPath(c.Store.Path))
	if err != nil {
		for _, l := range listeners {
			l.ln.Close()
		}
		return err
	}

	// The safety tick: the loop wakes on its own at the next due time, but a
	// tick every minute catches anything a wake-up missed.
	tick := make(chan time.Time, 1)
	cr := cron.New(cron.WithLogger(cron.PrintfLogger(slog.NewLogLogger(log.Handler(), slog.LevelError))))
	cr.AddFunc("@every 1m", func() {
		select {
		case tick <- time.Now():
		default:
		}
	})
	if c.Audit.Retention > 0 {
		// Raw messages older than the retention are purged once a day;
		// each purge leaves an audit record, so the chain stays verifiable.
		cr.AddFunc("@daily", func() {
			n, err := db.PurgeMessages(store.RetentionAt(time.Now(), c.Audit.Retention))
			if err != nil {
				log.Error("retention purge failed", "err", err)
			} else if n > 0 {
				log.Info("retention purge", "messages", n, "retention", c.Audit.Retention)
			}
		})
	}
	cr.Start()
	defer cr.Stop()

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	state := &daemonState{cfg: c, db: db, wake: d.Wake, bounces: bounces, templates: parts.templates}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.Run(gctx, tick) })
	for _, l := range listeners {
		g.Go(func() error {
			err := l.srv.Serve(l.ln)
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		})
	}
	g.Go(func() error {
		errorLog := slog.NewLogLogger(log.With("listener", "admin").Handler(), slog.LevelWarn)
		return admin.Serve(gctx, adminLn, errorLog, func(ctx context.Context, call *admin.Call) (int, error) {
			root := newRootCmd(call.Stdout, call.Stderr, call.Args, state, call)
			root.SetArgs(call.Args)
			err := root.ExecuteContext(ctx)
			return exitCode(err), err
		})
	})
	for _, run := range parts.background {
		g.Go(func() error { return run(gctx) })
	}
	g.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				return shutdown(shut, listeners)
			case <-hup:
				if c, ok := a.reload(parts, log, started); ok {
					state.reloaded(c)
				}
			}
		}
	})
	log.Info("errpd serving", "store", c.Store.Path, "listen", listeners[0].ln.Addr().String(),
		"metrics_listen", addrOf(listeners, "metrics", listeners[0]), "console", addrOf(listeners, "console", nil),
		"admin_socket", admin.SocketPath(c.Store.Path))
	err = g.Wait()
	log.Info("errpd stopped")
	return err
}

// reload re-reads the config file and swaps in what can change while
// running: the templates, [mail] and the brands. The rest (store, listen
// address, relay, Ascio, policy, scope) stays as it is until a restart:
// the policy and scope shape steps already planned.
func (a *app) reload(p *parts, log *slog.Logger, started config.Config) (config.Config, bool) {
	c, err := a.loadConfig()
	if err != nil {
		log.Error("reload refused: config", "err", err)
		return c, false
	}
	if err := p.reload(c); err != nil {
		log.Error("reload refused: templates", "err", err)
		return c, false
	}
	log.Info("reloaded templates, [mail] and brands; store, listen address, relay, Ascio, policy and scope change on restart")
	if keys := restartKeys(started, c); len(keys) > 0 {
		log.Warn("changed settings take effect only on restart", "keys", strings.Join(keys, ", "))
	}
	return c, true
}
