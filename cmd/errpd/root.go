package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/admin"
	"github.com/errpd/errpd/bounce"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

// errRejected makes errpd exit 1 without printing more than it already did
// (e.g. an import whose bad rows were listed).
type errRejected struct{ msg string }

func (e errRejected) Error() string { return e.msg }

// errLogged is an error serve has written to its log already: main does
// not print it again, so that with log.format = "json" every line is JSON.
type errLogged struct{ error }

func (e errLogged) Unwrap() error { return e.error }

func exitCode(err error) int {
	var r errRejected
	var remote *admin.RemoteError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &r):
		return 1
	case errors.As(err, &remote):
		return remote.Exit
	}
	return 2
}

// app is what every subcommand shares: the output streams, the --config
// flag and, inside the daemon, its configuration and open store.
type app struct {
	stdout, stderr io.Writer
	configPath     string
	args           []string // the command line, to forward to a running daemon

	daemon  *daemonState // set when a command runs inside `errpd serve`
	call    *admin.Call  // and the client's call it runs for, with its files
	inputs  []string     // files the command reads, sent along when forwarded
	outputs []string     // files it writes, written here from the daemon's answer
	// forwardOpts are the command's wishes for forwarding (a progress bar)
	forwardOpts []admin.Option
}

// daemonState is what the daemon lends the commands it runs for clients.
type daemonState struct {
	mu   sync.Mutex
	cfg  config.Config // what the daemon runs with; SIGHUP updates the reloadable part
	db   *store.DB
	wake func() // new work may be due
	// bounces records the bounces that `errpd bounce` forwards.
	bounces *bounce.Recorder
	// templates is the set the daemon sends with: a reload that was
	// refused leaves it, not the broken files on disk, in use.
	templates func() *templates.Set
}

func (d *daemonState) config() config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// reloaded takes, from a config read again on SIGHUP, what the daemon
// swapped in (templates, [mail] and brands), so that the commands it runs
// (preview, say) agree with the notices it sends. Everything else stays
// as started.
func (d *daemonState) reloaded(c config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Templates, d.cfg.Mail, d.cfg.Brands = c.Templates, c.Mail, c.Brands
}

func newRootCmd(stdout, stderr io.Writer, args []string, d *daemonState, call *admin.Call) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr, args: args, daemon: d, call: call}
	root := &cobra.Command{
		Use:   "errpd",
		Short: "Send ICANN ERRP expiry notices, prove them to Ascio, report to auditors",
		Long: `errpd plans the ERRP notices of every expiring gTLD domain, sends each one
inside its window, uploads the sent message to Ascio as proof before Ascio's
own fallback send, and keeps every step in a bbolt store for auditors.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.Version = versionText(debug.ReadBuildInfo())
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "configuration `FILE` (default: the embedded defaults, as in config.example.toml)")
	root.AddCommand(
		a.newPlanCmd(),
		a.newImportCmd(),
		a.newDomainsCmd(),
		a.newServeCmd(),
		a.newResolveCmd(),
		a.newBackupCmd(),
		a.newStepsCmd(),
		a.newPreviewCmd(),
		a.newTemplatesCmd(),
		a.newCheckSPFCmd(),
		a.newReportCmd(),
		a.newEvidenceCmd(),
		a.newVerifyEvidenceCmd(),
		a.newKeygenCmd(),
		a.newVerifyCmd(),
		a.newChainHeadCmd(),
		a.newPurgeCmd(),
		a.newBounceCmd(),
		a.newHashPasswordCmd(),
		a.newExampleCalendarCmd(),
		a.newVersionCmd(),
		a.newMigrateCmd(),
		a.newCompactCmd(),
	)
	return root
}

func (a *app) loadConfig() (config.Config, error) {
	if a.daemon != nil {
		return a.daemon.config(), nil
	}
	return config.Load(a.configPath)
}

// withStore runs fn against the store. While `errpd serve` holds the store,
// the whole command is forwarded to it over the admin socket and run there;
// otherwise the store is opened here.
func (a *app) withStore(ctx context.Context, c config.Config, fn func(*store.DB) error) error {
	return a.runStore(ctx, c, false, fn)
}

// readStore is withStore for a command that only reads: opened here, the
// store is opened read-only, so that several such commands (two reports,
// a report and a backup) run side by side. Here or in the daemon, the
// kernel is let read ahead in the store's map first (store.DB.ReadAhead):
// such a command reads much of the file.
func (a *app) readStore(ctx context.Context, c config.Config, fn func(*store.DB) error) error {
	return a.runStore(ctx, c, true, func(db *store.DB) error {
		db.ReadAhead()
		return fn(db)
	})
}

func (a *app) runStore(ctx context.Context, c config.Config, readOnly bool, fn func(*store.DB) error) error {
	if a.daemon != nil {
		return fn(a.daemon.db)
	}
	err := admin.Forward(ctx, admin.SocketPath(c.Store.Path), a.args, a.inputs, a.outputs, a.stdout, a.stderr, append(a.forwardOpts, a.drawProgress())...)
	if !errors.Is(err, admin.ErrNoDaemon) {
		return err
	}
	if !readOnly { // a writer upgrades an older store; a reader leaves it as it is
		if _, err := a.upgradeStore(c, a.logger(c), false, true); err != nil {
			return err
		}
	}
	db, err := store.Open(c.Store.Path, store.Options{Timeout: c.Store.OpenTimeout, ReadOnly: readOnly})
	if old := (*store.OldSchemaError)(nil); errors.As(err, &old) {
		return fmt.Errorf("store %s has schema version %d, this errpd needs %d; this command only reads and does not upgrade it: "+
			"run `%s` (errpd serve and errpd import also upgrade it on start, keeping the old file beside it)",
			old.Path, old.Version, store.SchemaVersion, a.migrateCommand())
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// migrateCommand is the command line that upgrades this config's store.
func (a *app) migrateCommand() string {
	if a.configPath == "" {
		return "errpd migrate"
	}
	return "errpd migrate --config " + a.configPath
}

func planOptions(c config.Config) (store.PlanOptions, error) {
	p, err := c.Policy.Scheduler()
	o := store.PlanOptions{Policy: p, InScope: c.Scope.InScope}
	if c.Ascio.Endpoint != "" {
		o.RenewalCheck = c.Policy.RenewalCheckAfter // checked by the daemon's lifecycle.RenewalChecker
	}
	return o, err
}

func (a *app) logger(c config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}

// inputArg names a file the command reads. When the command is forwarded
// to the daemon, the file is read here and sent along, under the name as
// given: the daemon looks it up by that name and never opens a path.
func (a *app) inputArg(path string) string {
	if a.call == nil {
		a.inputs = append(a.inputs, path)
	}
	return path
}

// outputArg names a file the command writes. When the command is forwarded,
// the daemon streams its bytes back and this process writes it; no other
// file is accepted from the daemon.
func (a *app) outputArg(path string) string {
	if a.call == nil {
		a.outputs = append(a.outputs, path)
	}
	return path
}

// openInput opens a file named by inputArg, and tells its size: from the
// client's call inside the daemon (streamed by the client), else from
// disk; either way streamed, as a calendar may be large.
func (a *app) openInput(path string) (io.ReadCloser, int64, error) {
	if a.call != nil {
		r, size, err := a.call.Input(path)
		return io.NopCloser(r), size, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// writeOutput writes a file named by outputArg through fn: inside the
// daemon, to the client, which writes it; else here (writeFile). Either
// way a failed command leaves no half file under the real name.
func (a *app) writeOutput(path string, perm os.FileMode, fn func(io.Writer) error) error {
	if a.call != nil {
		return fn(a.call.Output(path, perm))
	}
	return writeFile(path, perm, fn)
}
