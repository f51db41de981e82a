package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/store"
)

// TestAuditCommands runs report, keygen, evidence, verify-evidence, verify,
// purge and chain-head against a seeded store, as an operator would.
func TestAuditCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errpd.toml")
	err := os.WriteFile(cfg, []byte("[store]\npath = \"errpd.db\"\nopen_timeout = \"200ms\"\n[http]\nlisten = \"127.0.0.1:0\"\n[audit]\nsigning_key = \"ev.key\"\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := reporttest.SeedAt(t, filepath.Join(dir, "errpd.db"))
	s.DB.Close()
	must := func(args ...string) (string, string) {
		t.Helper()
		out, errOut, err := errpd(t, ctx, append(args, "--config", cfg)...)
		if err != nil {
			t.Fatalf("errpd %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out, errOut
	}

	out, errOut := must("report", "--from", "2025-01-01", "--to", "2025-04-01", "--domain", "bücher.com", "--domain", "proved.com")
	if n := strings.Count(out, "\n"); n != 1+6 || !strings.Contains(out, "xn--bcher-kva.com,bücher.com") {
		t.Errorf("report: %d lines\n%s", n, out)
	}
	// bücher.com's reminder 1 went out in its window but its proof came
	// after Ascio's deadline: not errpd's answer (Ascio's copy unknown).
	if !strings.Contains(errOut, "sent in window and proved in time 2 + covered by Ascio's own send 0") || !strings.Contains(errOut, "compliance 33.3%") {
		t.Errorf("report summary: %s", errOut)
	}
	html := filepath.Join(dir, "r.html")
	must("report", "--format", "html", "--tld", "com", "--output", html)
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("html report: %v", err)
	}

	must("keygen", "--output", filepath.Join(dir, "ev"))
	zip := filepath.Join(dir, "ev.zip")
	must("evidence", "--domain", "proved.com", "--output", zip)
	out, _ = must("verify-evidence", zip, "--key", filepath.Join(dir, "ev.pub"))
	if !strings.Contains(out, "verifies") {
		t.Errorf("verify-evidence: %s", out)
	}

	must("verify")
	// Messages of domains in the calendar are kept whatever their age:
	// these three left it (transferred away) over two years ago.
	db3, err := store.Open(filepath.Join(dir, "errpd.db"), store.Options{Now: func() time.Time { return time.Now().AddDate(-3, 0, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	err = db3.Update(func(tx *store.Tx) error {
		for _, d := range []string{"proved.com", "renewed.net", "xn--bcher-kva.com"} {
			if err := tx.Stop(d, "transferred away"); err != nil {
				return err
			}
		}
		return nil
	})
	db3.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _ = must("purge", "--before", "2025-02-01")
	if !strings.HasPrefix(out, "3 messages") {
		t.Errorf("purge: %s", out)
	}
	out, _ = must("verify")
	if !strings.Contains(out, "3 purged") {
		t.Errorf("verify after purge: %s", out)
	}
	out, _ = must("chain-head")
	if !strings.Contains(out, `"hash"`) {
		t.Errorf("chain-head: %s", out)
	}

	// Someone edits an audit record: verify says where and exits 1.
	db, err := bolt.Open(filepath.Join(dir, "errpd.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k, v := b.Cursor().First()
		// The last byte of the first record (its detail's text or its
		// state), changed as a forger with the file would.
		forged := bytes.Clone(v)
		forged[len(forged)-1] ^= 0x01
		return b.Put(k, forged)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = errpd(t, ctx, "verify", "--config", cfg)
	var r errRejected
	if !errors.As(err, &r) || exitCode(err) != 1 || !strings.Contains(err.Error(), "audit record 1") {
		t.Errorf("verify of an edited chain: %v", err)
	}
}
