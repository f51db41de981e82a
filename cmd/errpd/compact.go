package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/store"
)

// compactTook1M is how long a compaction of 1,000,000 domains took
// (docs/store_encoding.md), for an operator deciding when to stop the
// daemon for one.
const compactTook1M = "49 s (1,523 MiB to 1,066 MiB, on 2 shared cores)"

var compactTexts = meterTexts{
	start:    "compacting the store: writing it in key order beside it; the daemon must stay stopped until the end",
	progress: "store compaction",
	bar:      "compacting store",
}

func (a *app) newCompactCmd() *cobra.Command {
	var keep string
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the store in key order with full pages, to take less disk (stop the daemon first)",
		Long: `compact rewrites the store with every bucket in key order and its pages
filled, beside it (STORE.compacting), a few thousand records a transaction,
then syncs the new file and renames it over the store. Keys that arrived in
random places (an import) leave bbolt's pages about 70% full, and pages that
errpd purge freed stay in the file: compact gives both back. The records are
the same, byte for byte; the old file is removed, or kept at --keep PATH.

It is an offline tool, like bbolt compact: it refuses while errpd serve (or
any errpd that writes) holds the store; stop the daemon, compact, start it
again. Killed, it carries on where it stopped when run again, unless the store
was written to in between (then it starts again). It refuses when the disk
beside the store has less room than the store's size, and a store of an
older schema (errpd migrate upgrades it).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.daemon != nil {
				return errors.New("compact cannot run through a running daemon: stop the daemon first, it is an offline tool")
			}
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			if _, err := os.Stat(c.Store.Path); err != nil {
				fmt.Fprintf(a.stdout, "no store at %s: nothing to compact\n", c.Store.Path)
				return nil
			}
			start := time.Now()
			res, err := a.compactStore(c, keep)
			if err != nil {
				return err
			}
			secs := time.Since(start).Seconds()
			fmt.Fprintf(a.stdout, "store %s compacted: %d records (%d copied now%s) in %.1f s\n",
				c.Store.Path, res.Total, res.Copied, compactResumed(res), secs)
			fmt.Fprintf(a.stdout, "size: %d MiB before, %d MiB after (%d bytes -> %d bytes, %.0f%%); %s\n",
				res.OldSize>>20, res.NewSize>>20, res.OldSize, res.NewSize, 100*float64(res.NewSize)/float64(max(res.OldSize, 1)), keptText(res))
			return nil
		},
	}
	cmd.Flags().StringVar(&keep, "keep", "", "keep the old file at `PATH` (a hard link: on the store's file system, never over a file) instead of removing it")
	return cmd
}

// compactStore runs store.Compact with its progress shown, and says what
// to do when it is refused.
func (a *app) compactStore(c config.Config, keep string) (store.Compacted, error) {
	log := a.logger(c)
	m := a.rewriteMeter(log, c.Store.Path, &compactTexts, true)
	res, err := store.Compact(c.Store.Path, store.CompactOptions{Keep: keep, UpgradeOptions: store.UpgradeOptions{
		Timeout: c.Store.OpenTimeout, NoWait: true, Progress: m.show}})
	m.finish()
	var old *store.OldSchemaError
	switch {
	case errors.Is(err, store.ErrLocked):
		return res, fmt.Errorf("%w: errpd compact is an offline tool: stop the daemon first (systemctl stop errpd), "+
			"run it, then start the daemon again; a store of 1,000,000 domains took %s", err, compactTook1M)
	case errors.As(err, &old):
		return res, fmt.Errorf("store %s has schema version %d; compact rewrites only a store of this errpd's schema %d: run `%s` first",
			old.Path, old.Version, store.SchemaVersion, a.migrateCommand())
	case err != nil:
		return res, err
	}
	log.Info("store compacted", "path", c.Store.Path, "records", res.Total, "copied", res.Copied, "resumed", res.Resumed,
		"kept", res.Kept, "old_bytes", res.OldSize, "new_bytes", res.NewSize)
	return res, nil
}

func compactResumed(res store.Compacted) string {
	if res.Resumed {
		return ", carrying on a killed compaction"
	}
	return ""
}

func keptText(res store.Compacted) string {
	if res.Kept != "" {
		return "old file kept as " + res.Kept
	}
	return "old file removed"
}
