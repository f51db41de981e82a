package store

import (
	"fmt"
)

// An older store is upgraded by the rewrite driver (rewrite.go), each
// record through upgradeV1. The old file is never written: it stays beside
// the new one as the backup (PATH.schema1-backup). A killed upgrade leaves
// PATH.upgrading, and the next Upgrade carries on from there.

// OldSchemaError is Open's answer for a file written by an older errpd:
// it must be upgraded (Upgrade; `errpd migrate`) before it is used.
type OldSchemaError struct {
	Path    string
	Version uint64
}

func (e *OldSchemaError) Error() string {
	return fmt.Sprintf("store %s has schema version %d, this errpd needs %d: upgrade it with `errpd migrate` "+
		"(errpd serve and errpd import also do it on start); the old file stays beside it as %s",
		e.Path, e.Version, SchemaVersion, backupName(e.Path, e.Version, 0))
}

// upgradeKind is the rewrite that Upgrade does: a schema-1 file converted
// by upgradeV1, the old file kept as the backup.
var upgradeKind = rewriteKind{
	suffix:  ".upgrading",
	verb:    "upgrading",
	accept:  acceptUpgrade,
	convert: upgradeV1,
	keep:    (*rewriter).keepBackup,
}

// acceptUpgrade upgrades a schema-1 file, and leaves a current one alone.
func acceptUpgrade(path string, from uint64) (bool, error) {
	if from == SchemaVersion {
		return false, nil
	}
	if from != 1 {
		return false, fmt.Errorf("store %s: schema version %d cannot be upgraded by this errpd (it upgrades version 1)", path, from)
	}
	return true, nil
}

// Upgrade rewrites the store at path in this errpd's schema, when it holds
// an older one; a missing file or a current one is left alone (From 0).
// The new file is written beside the old one (PATH.upgrading), in
// transactions of o.Chunk records, each through upgradeV1; then it is
// synced, the old file is kept as PATH.schemaN-backup (another name if
// that is taken: a backup is never overwritten) and the new one takes its
// name. Killed at any point, the next Upgrade resumes where the last
// committed chunk ended.
func Upgrade(path string, o UpgradeOptions) (Upgraded, error) {
	return rewriteFile(path, o, upgradeKind)
}

// keepBackup gives the old file its backup name by a hard link: a backup
// already there (from an earlier upgrade) is kept, and the next free name
// taken. A link left by a killed swap is found and used.
func (r *rewriter) keepBackup() (string, error) {
	for i := 0; i < 100; i++ {
		name := backupName(r.path, r.res.From, i)
		if ok, err := r.linkOld(name); ok || err != nil {
			return name, err
		}
	}
	return "", fmt.Errorf("store %s: no free backup name beside it (%s and 99 more are taken)", r.path, backupName(r.path, r.res.From, 0))
}

// backupName is PATH.schemaN-backup, and PATH.schemaN-backup.I after it.
func backupName(path string, from uint64, i int) string {
	name := fmt.Sprintf("%s.schema%d-backup", path, from)
	if i > 0 {
		name += fmt.Sprintf(".%d", i+1)
	}
	return name
}
