package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestDamagedStoreIsRefusedByCommands: the commands that read the store,
// and serve, answer a damaged file with an error that names it and points
// to the copies of errpd backup; verify calls it BROKEN and exits 1. None
// crashes, and serve does not start afresh over an emptied file.
func TestDamagedStoreIsRefusedByCommands(t *testing.T) {
	cfg := testConfig(t)
	var cal strings.Builder
	cal.WriteString("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n")
	for i := range 300 {
		fmt.Fprintf(&cal, "d%04d.example.com,2099-12-31,renew,Ann,ann@example.org,en,,\n", i)
	}
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	if err := os.WriteFile(csv, []byte(cal.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := c.Store.Path
	healthy, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	// Every page that holds the step (the live one, and any stale copy
	// an earlier commit freed) is overwritten.
	randomPage := func(raw []byte) []byte {
		// The step's key followed by its value's first tag (its state):
		// found in the steps' leaf, not in an index's.
		expiry := time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC)
		needle := append(store.Key(store.StepID("d0150.example.com", expiry, scheduler.Reminder1)), 0x08)
		for off := bytes.Index(raw, needle); off >= 0; {
			at := off / page * page
			for i := range page {
				raw[at+i] = byte(i*7 + 13)
			}
			next := bytes.Index(raw[at+page:], needle)
			if next < 0 {
				break
			}
			off = at + page + next
		}
		return raw
	}
	for _, d := range []struct {
		name  string
		ruin  func([]byte) []byte
		opens bool // the meta pages hold: serve starts, the damage shows where the page is read
	}{
		{"empty", func([]byte) []byte { return nil }, false},
		{"truncated to three pages", func(raw []byte) []byte { return raw[:3*page] }, false},
		{"meta page 1 flipped", func(raw []byte) []byte { raw[page+40] ^= 0xff; return raw }, false},
		{"random page among the steps", randomPage, true},
	} {
		t.Run(d.name, func(t *testing.T) {
			if err := os.WriteFile(path, d.ruin(bytes.Clone(healthy)), 0o600); err != nil {
				t.Fatal(err)
			}
			cmds := [][]string{{"domains"}, {"steps"}, {"verify"}}
			if !d.opens {
				cmds = append(cmds, []string{"serve"}, []string{"import", csv})
			}
			for _, args := range cmds {
				_, _, err := errpd(t, context.Background(), append(args, "--config", cfg)...)
				if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "errpd backup") {
					t.Errorf("%s: %v, want an error naming %s and errpd backup", args[0], err, path)
				}
				want := 2
				if args[0] == "verify" {
					want = 1
					if err == nil || !strings.HasPrefix(err.Error(), "BROKEN: ") {
						t.Errorf("verify: %v, want BROKEN", err)
					}
				}
				if got := exitCode(err); got != want {
					t.Errorf("%s: exit %d, want %d", args[0], got, want)
				}
			}
			if fi, err := os.Stat(path); err != nil || (d.name == "empty" && fi.Size() != 0) {
				t.Errorf("the damaged file was replaced: %v", err)
			}
		})
	}
}
