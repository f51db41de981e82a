package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/store"
)

func (a *app) newMigrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Upgrade the store to this errpd's schema, keeping the old file beside it",
		Long: `migrate rewrites a store written by an older errpd in this errpd's schema.
The old file is never changed: the new one is written beside it
(STORE.upgrading) and takes its name at the end, and the old one stays as
STORE.schemaN-backup. Killed, it carries on where it stopped when run
again. errpd serve and errpd import do the same on start; the commands
that only read refuse an older store until it is upgraded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.daemon != nil {
				return errors.New("migrate cannot run through a running daemon: the daemon upgraded the store when it started")
			}
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := a.upgradeStore(c, a.logger(c), false, true)
			if err != nil {
				return err
			}
			if _, err := os.Stat(c.Store.Path); err != nil {
				fmt.Fprintf(a.stdout, "no store at %s: nothing to upgrade (errpd import or errpd serve creates it)\n", c.Store.Path)
				return nil
			}
			if res.From == 0 {
				fmt.Fprintf(a.stdout, "store %s is at schema %d: nothing to upgrade\n", c.Store.Path, store.SchemaVersion)
				return nil
			}
			secs := time.Since(start).Seconds()
			fmt.Fprintf(a.stdout, "store %s upgraded from schema %d to %d: %d records (%d converted now%s) in %.1f s, %.0f records/s\n",
				c.Store.Path, res.From, store.SchemaVersion, res.Total, res.Converted, resumedText(res), secs, float64(res.Converted)/max(secs, 1e-9))
			fmt.Fprintf(a.stdout, "old file kept as %s (%d MiB); new file %d MiB\n", res.Backup, res.OldSize>>20, res.NewSize>>20)
			return nil
		},
	}
}

func resumedText(res store.Upgraded) string {
	if res.Resumed {
		return ", carrying on a killed upgrade"
	}
	return ""
}

// upgradeStore upgrades the store when it is older than this errpd
// (store.Upgrade), showing its progress: a bar on a terminal when bar is
// set, else lines in the log (also the daemon's, JSON when configured).
func (a *app) upgradeStore(c config.Config, log *slog.Logger, noWait, bar bool) (store.Upgraded, error) {
	p := a.rewriteMeter(log, c.Store.Path, nil, bar)
	res, err := store.Upgrade(c.Store.Path, store.UpgradeOptions{Timeout: c.Store.OpenTimeout, NoWait: noWait, Progress: p.show})
	p.finish()
	if err != nil || res.From == 0 {
		return res, err
	}
	log.Info("store upgraded", "path", c.Store.Path, "from", res.From, "to", store.SchemaVersion, "records", res.Total,
		"converted", res.Converted, "resumed", res.Resumed, "backup", res.Backup, "old_bytes", res.OldSize, "new_bytes", res.NewSize)
	return res, nil
}

// rewriteMeter is the meter of a rewrite of the store at path: a bar on a
// terminal when bar is set, else lines in log.
func (a *app) rewriteMeter(log *slog.Logger, path string, texts *meterTexts, bar bool) *upgradeMeter {
	m := &upgradeMeter{log: log, path: path, texts: texts}
	if out := a.terminal(); bar && out != nil {
		m.out = out
	}
	return m
}

// terminal is stderr when it is a terminal, for a progress bar.
func (a *app) terminal() *os.File {
	if f, ok := a.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// upgradeMeter shows a rewrite's progress (the upgrade's, or with texts
// set another's): a bar on out when set, else a log line at its start and
// at each tenth of the records.
type upgradeMeter struct {
	log     *slog.Logger
	path    string
	texts   *meterTexts // nil: the upgrade's
	out     io.Writer   // nil: no bar
	bar     *progressbar.ProgressBar
	started bool
	lines   tenths // without a bar
}

// meterTexts are what an upgradeMeter says: its log line at the start
// (with attributes beside path and records), at each tenth, and its bar's
// label.
type meterTexts struct {
	start      string
	startAttrs []any
	progress   string
	bar        string
}

var upgradeTexts = meterTexts{
	start:      "upgrading the store to this errpd's schema; the old file stays beside it as the backup",
	startAttrs: []any{"to", store.SchemaVersion},
	progress:   "store upgrade",
	bar:        "upgrading store",
}

func (m *upgradeMeter) show(p store.UpgradeProgress) {
	t := m.texts
	if t == nil {
		t = &upgradeTexts
	}
	if !m.started {
		m.started = true
		m.log.Info(t.start, append([]any{"path", m.path, "records", p.Total}, t.startAttrs...)...)
		m.lines = tenths{log: m.log, msg: t.progress}
		if m.out != nil {
			m.bar = progressbar.NewOptions64(p.Total,
				progressbar.OptionSetWriter(m.out),
				progressbar.OptionSetDescription(t.bar),
				progressbar.OptionShowCount(),
				progressbar.OptionSetItsString("records"),
				progressbar.OptionShowIts(),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(m.out) }),
			)
		}
	}
	if m.bar != nil {
		m.bar.Set64(p.Done)
		return
	}
	m.lines.at(p.Done, p.Total, "path", m.path, "done", p.Done, "total", p.Total)
}

func (m *upgradeMeter) finish() {
	if m.bar != nil {
		m.bar.Finish()
	}
}
