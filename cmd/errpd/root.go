package main

import (
	"errors"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/store"
)

// errRejected makes errpd exit 1 without printing more than it already did
// (e.g. an import whose bad rows were listed).
type errRejected struct{ msg string }

func (e errRejected) Error() string { return e.msg }

func exitCode(err error) int {
	var r errRejected
	if errors.As(err, &r) {
		return 1
	}
	return 2
}

// app is what every subcommand shares: the output streams and the
// --config flag.
type app struct {
	stdout, stderr io.Writer
	configPath     string
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdout: stdout, stderr: stderr}
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
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "configuration `FILE` (default: the embedded defaults, as in config.example.toml)")
	root.AddCommand(
		a.newPlanCmd(),
		a.newImportCmd(),
		a.newDomainsCmd(),
		a.newServeCmd(),
	)
	return root
}

func (a *app) loadConfig() (config.Config, error) {
	return config.Load(a.configPath)
}

// openStore opens the configured store for writing.
func (a *app) openStore(c config.Config) (*store.DB, error) {
	return store.Open(c.Store.Path, store.Options{Timeout: c.Store.OpenTimeout})
}

func planOptions(c config.Config) (store.PlanOptions, error) {
	p, err := c.Policy.Scheduler()
	return store.PlanOptions{Policy: p, InScope: c.Scope.InScope}, err
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
