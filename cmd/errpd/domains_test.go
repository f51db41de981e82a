package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// writeCounter counts the writes that carry bytes: through the daemon, one
// per frame of the answer.
type writeCounter struct {
	bytes.Buffer
	writes int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.writes++
	}
	return w.Buffer.Write(p)
}

// importRenewals imports n renew-mode domains, in no order of name, into
// cfg's store and returns their names in order.
func importRenewals(t *testing.T, cfg string, n int) []string {
	t.Helper()
	var cal strings.Builder
	cal.WriteString("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n")
	var names []string
	for i := range n {
		name := fmt.Sprintf("d%05d.example.com", (i*7919)%n)
		names = append(names, name)
		fmt.Fprintf(&cal, "%s,2099-12-31,renew,Ann,ann@example.org,en,,\n", name)
	}
	slices.Sort(names)
	path := filepath.Join(t.TempDir(), "calendar.csv")
	if err := os.WriteFile(path, []byte(cal.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := errpd(t, context.Background(), "import", "--config", cfg, path); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestDomainsStreamInBlocks: `errpd domains --json` of more domains than
// one read transaction reads lists each once, in name order, and writes
// them in blocks, not a write (through the daemon: a frame) per domain;
// locally and through the daemon.
func TestDomainsStreamInBlocks(t *testing.T) {
	const n = 2500 // more than a chunk
	cfg := testConfig(t)
	want := importRenewals(t, cfg, n)
	list := func(t *testing.T) {
		var out writeCounter
		if err := run(context.Background(), []string{"domains", "--config", cfg, "--json"}, &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var r domainRow
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got = append(got, r.Domain)
		}
		if !slices.Equal(got, want) {
			t.Errorf("listed %d domains (first %q), want the %d imported, each once, in name order", len(got), got[:min(3, len(got))], n)
		}
		// About 200 KB of rows: a few blocks of 64 KiB.
		if out.writes > 10 {
			t.Errorf("%d writes for %d rows (%d bytes): the rows are not written in blocks", out.writes, n, out.Len())
		}
	}
	t.Run("local", list)
	serveInProcess(t, cfg)
	t.Run("daemon", list)
}

// TestDomainsNextSkipsFinalSteps: the next step shown is the first of the
// current cycle that is not final, also when earlier ones are (here
// reminder1, missed at import: its deadline had passed).
func TestDomainsNextSkipsFinalSteps(t *testing.T) {
	cfg := testConfig(t)
	expiry := time.Now().UTC().Add(20 * scheduler.Day).Truncate(time.Second)
	path := filepath.Join(t.TempDir(), "calendar.csv")
	cal := "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n" +
		"late.example.com," + expiry.Format(time.RFC3339) + ",renew,Ann,ann@example.org,en,,\n"
	if err := os.WriteFile(path, []byte(cal), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := errpd(t, context.Background(), "import", "--config", cfg, path); err != nil || !strings.Contains(out, "missed") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, _, err := errpd(t, context.Background(), "domains", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r domainRow
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	if want := expiry.Add(-7 * scheduler.Day).Format(time.RFC3339); r.Next != "reminder2" || r.NextAt != want || r.State != "planned" {
		t.Errorf("next %s at %s (%s), want reminder2 at %s (planned)", r.Next, r.NextAt, r.State, want)
	}
}

// TestStepsStreamInBlocks: `errpd steps` of more steps than one read
// transaction reads lists each once, in id order, in every format, and
// writes them in blocks, not a write (through the daemon: a frame) per
// step; locally and through the daemon. (Before: one read transaction for
// all the steps, and through the daemon a frame for each line.)
func TestStepsStreamInBlocks(t *testing.T) {
	const n = 1100 // renew: 2 steps each, more than a chunk
	cfg := testConfig(t)
	importRenewals(t, cfg, n)
	list := func(t *testing.T) {
		for _, format := range []string{"--json", "--csv", ""} {
			var out writeCounter
			args := []string{"steps", "--config", cfg}
			if format != "" {
				args = append(args, format)
			}
			if err := run(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if format != "--json" {
				lines = lines[1:] // the header
			}
			var got []string
			for _, line := range lines {
				got = append(got, strings.Fields(strings.ReplaceAll(line, ",", " "))[0])
				if format == "--json" {
					var s struct{ ID string }
					if err := json.Unmarshal([]byte(line), &s); err != nil {
						t.Fatalf("line %q: %v", line, err)
					}
					got[len(got)-1] = s.ID
				}
			}
			if len(slices.Compact(slices.Clone(got))) != 2*n || len(got) != 2*n || !slices.IsSorted(got) {
				t.Errorf("%q: listed %d steps (sorted: %v), want the %d planned, each once, in id order", format, len(got), slices.IsSorted(got), 2*n)
			}
			if max := out.Len()/(32<<10) + 2; out.writes > max {
				t.Errorf("%q: %d writes for %d steps (%d bytes): the rows are not written in blocks", format, out.writes, 2*n, out.Len())
			}
		}
	}
	t.Run("local", list)
	serveInProcess(t, cfg)
	t.Run("daemon", list)
}

// TestStepsInDoubtFromIndex: `errpd steps --state in_doubt` lists the steps
// in doubt from the store's index of steps caught mid-action, without
// reading the others: those of another domain are made unreadable, and
// the listing still succeeds. (Before: every step was read and filtered;
// among millions, the listing an operator runs in an incident took
// minutes, and here it fails on the unreadable step.)
func TestStepsInDoubtFromIndex(t *testing.T) {
	cfg := testConfig(t)
	names := importRenewals(t, cfg, 3)
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(c.Store.Path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var doubt string
	err = db.Update(func(tx *store.Tx) error {
		var steps []store.Step
		if err := tx.DomainSteps(names[0], func(s store.Step) error { steps = append(steps, s); return nil }); err != nil {
			return err
		}
		doubt = steps[0].ID
		for _, to := range []scheduler.State{scheduler.StateSending, scheduler.StateInDoubt} {
			if _, err := tx.Transition(doubt, []scheduler.State{steps[0].State, scheduler.StateSending}, to, "test", nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Bolt().Update(func(btx *bolt.Tx) error {
		return btx.Bucket([]byte("steps")).Put(store.Key(names[1]+"/20991231T000000Z/reminder1"), []byte{0xff, 0x00, 0xff})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := errpd(t, context.Background(), "steps", "--config", cfg, "--csv"); err == nil {
		t.Fatal("listing every step read the spoiled one without an error: the test proves nothing")
	}
	out, _, err := errpd(t, context.Background(), "steps", "--config", cfg, "--csv", "--state", "in_doubt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], doubt+",in_doubt,") {
		t.Errorf("steps --state in_doubt:\n%s\nwant the header and %s", out, doubt)
	}
}
