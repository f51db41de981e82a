package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/store"
)

// schema1Store puts a copy of the schema-1 fixture (a store written by
// errpd at 2a23107) where cfg's store lives.
func schema1Store(t *testing.T, cfg string) string {
	t.Helper()
	raw, err := os.ReadFile("../../store/testdata/schema1/errpd.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(cfg), "errpd.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func schemaOf(t *testing.T, path string) uint64 {
	t.Helper()
	v, err := store.SchemaOf(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateCommand(t *testing.T) {
	cfg := testConfig(t)
	path := schema1Store(t, cfg)
	out, errOut, err := errpd(t, context.Background(), "migrate", "--config", cfg)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "upgraded from schema 1 to 2") || !strings.Contains(out, path+".schema1-backup") {
		t.Errorf("migrate printed:\n%s", out)
	}
	// Not a terminal: the progress is in the log, from start to end.
	for _, want := range []string{"upgrading the store", "percent=100", "store upgraded"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("migrate's log lacks %q:\n%s", want, errOut)
		}
	}
	if v := schemaOf(t, path); v != store.SchemaVersion {
		t.Errorf("schema after migrate: %d", v)
	}
	if v := schemaOf(t, path+".schema1-backup"); v != 1 {
		t.Errorf("the backup's schema: %d, want 1", v)
	}
	if _, _, err := errpd(t, context.Background(), "verify", "--config", cfg); err != nil {
		t.Errorf("verify after migrate: %v", err)
	}
	out, _, err = errpd(t, context.Background(), "migrate", "--config", cfg)
	if err != nil || !strings.Contains(out, "is at schema 2: nothing to upgrade") {
		t.Errorf("a second migrate: %v\n%s", err, out)
	}
	out, _, err = errpd(t, context.Background(), "migrate", "--config", testConfig(t))
	if err != nil || !strings.Contains(out, "no store at") {
		t.Errorf("migrate without a store: %v\n%s", err, out)
	}
}

// A command that only reads leaves a schema-1 store as it is and says how
// to upgrade it.
func TestReaderRefusesOldStore(t *testing.T) {
	cfg := testConfig(t)
	path := schema1Store(t, cfg)
	before, _ := os.ReadFile(path)
	_, _, err := errpd(t, context.Background(), "domains", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "errpd migrate --config "+cfg) {
		t.Errorf("domains on a schema-1 store: %v; want a refusal naming the command to run", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a reader changed the schema-1 file")
	}
	if _, err := os.Stat(path + ".schema1-backup"); err == nil {
		t.Error("a reader upgraded the store")
	}
}

func TestImportUpgradesOldStore(t *testing.T) {
	cfg := testConfig(t)
	path := schema1Store(t, cfg)
	cal := filepath.Join(t.TempDir(), "cal.csv")
	os.WriteFile(cal, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"+
		"new.example,2031-01-01,renew,Ann,ann@mail.example,en,,\n"), 0o600)
	out, errOut, err := errpd(t, context.Background(), "import", "--config", cfg, cal)
	if err != nil {
		t.Fatalf("import on a schema-1 store: %v\n%s%s", err, out, errOut)
	}
	if v := schemaOf(t, path); v != store.SchemaVersion || !strings.Contains(errOut, "store upgraded") {
		t.Errorf("after import the schema is %d; log:\n%s", v, errOut)
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *store.Tx) error {
		for _, name := range []string{"new.example", "gone.com", "bounced.com"} {
			if _, ok, err := tx.Domain(name); !ok || err != nil {
				t.Errorf("domain %s after import into the upgraded store: %v, %v", name, ok, err)
			}
		}
		return nil
	})
}

// serve upgrades a schema-1 store on start, its progress in its log,
// which stays JSON.
func TestServeUpgradesOldStore(t *testing.T) {
	cfg := writeServeConfig(t, "[smtp]\noutbox_dir = \"outbox\"\n")
	path := schema1Store(t, cfg)
	logs := serveInProcess(t, cfg)
	var saw []string
	for i, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l struct{ Msg string }
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("serve's log line %d is not JSON: %s", i+1, line)
		}
		if strings.Contains(l.Msg, "upgrad") {
			saw = append(saw, l.Msg)
		}
	}
	if len(saw) < 3 {
		t.Errorf("serve logged %q about the upgrade; want its start, progress and end", saw)
	}
	if _, err := os.Stat(path + ".schema1-backup"); err != nil {
		t.Errorf("serve's upgrade kept no backup: %v", err)
	}
}

// On a terminal the upgrade draws a bar counting records; elsewhere it
// logs its start and each tenth, whatever the chunks.
func TestUpgradeMeter(t *testing.T) {
	var bar, logs bytes.Buffer
	m := &upgradeMeter{log: slog.New(slog.NewTextHandler(&logs, nil)), path: "errpd.db", out: &bar}
	for done := int64(7); done < 100; done += 7 {
		m.show(store.UpgradeProgress{Done: done, Total: 100})
	}
	m.show(store.UpgradeProgress{Done: 100, Total: 100})
	m.finish()
	if !strings.Contains(bar.String(), "upgrading store") || !strings.Contains(bar.String(), "100/100") {
		t.Errorf("bar drew %q", bar.String())
	}
	if n := strings.Count(logs.String(), "msg=\"store upgrade\""); n != 0 {
		t.Errorf("with a bar, %d progress lines were logged too", n)
	}

	logs.Reset()
	m = &upgradeMeter{log: slog.New(slog.NewTextHandler(&logs, nil)), path: "errpd.db"}
	for done := int64(7); done < 100; done += 7 {
		m.show(store.UpgradeProgress{Done: done, Total: 100})
	}
	m.show(store.UpgradeProgress{Done: 100, Total: 100})
	if n := strings.Count(logs.String(), "msg=\"store upgrade\""); n != 10 || !strings.Contains(logs.String(), "percent=100") {
		t.Errorf("logged %d progress lines, want one a tenth:\n%s", n, logs.String())
	}
}
