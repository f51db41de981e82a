package main

import (
	"context"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestStepsAndDomainsCSV: --csv prints what the tables print, as CSV, and
// a cell that starts like a formula (a brand or order id from the
// calendar, a relay's reply) gets a leading single quote, as in the report.
func TestStepsAndDomainsCSV(t *testing.T) {
	cfg := testConfig(t)
	expiry := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	c, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := planOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	id := store.StepID("hostile.example.com", expiry, scheduler.Reminder1)
	db, err := store.Open(c.Store.Path, store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Stored directly: an import now rejects a brand that is not
	// configured, but a store written before that may hold one.
	if err := db.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(store.Domain{Name: "hostile.example.com", Mode: scheduler.ModeRenew, Expiry: expiry,
			Registrant: store.Registrant{Name: "Ann", Email: "ann@example.org", Language: "en"},
			OrderID:    "@SUM(1+1)", Brand: `=HYPERLINK("http://evil.example/","x")`}, opts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *store.Tx) error {
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateFailed, "test", func(s *store.Step) {
			s.Reason = "-1 550 =cmd|' /C calc'!A0"
		})
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		cmd    string
		header []string
		want   []string // cells of the first row; "*" for a send time (it depends on the clock's hour)
	}{
		{"domains", []string{"domain", "mode", "expiry", "brand", "order_id", "stopped", "next_notice", "next_send_at", "next_state", "flag"},
			[]string{"hostile.example.com", "renew", expiry.Format(time.RFC3339), `'=HYPERLINK("http://evil.example/","x")`, "'@SUM(1+1)", "",
				"reminder2", "*", "planned", ""}},
		{"steps", []string{"step", "state", "send_at", "deadline", "message_id", "bounce", "why"},
			[]string{id, "failed", "*", expiry.Add(-26 * 24 * time.Hour).Format(time.RFC3339), "", "", "'-1 550 =cmd|' /C calc'!A0"}},
	} {
		out, _, err := errpd(t, context.Background(), tc.cmd, "--config", cfg, "--csv")
		if err != nil {
			t.Fatalf("%s --csv: %v", tc.cmd, err)
		}
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(recs) < 2 {
			t.Fatalf("%s --csv: %v, %d records:\n%s", tc.cmd, err, len(recs), out)
		}
		if !slices.Equal(recs[0], tc.header) {
			t.Errorf("%s --csv header %q, want %q", tc.cmd, recs[0], tc.header)
		}
		for i, w := range tc.want {
			if w == "*" && i < len(recs[1]) && recs[1][i] != "" {
				recs[1][i] = "*"
			}
		}
		if !slices.Equal(recs[1], tc.want) {
			t.Errorf("%s --csv row\n%q, want\n%q", tc.cmd, recs[1], tc.want)
		}
	}
	if _, _, err := errpd(t, context.Background(), "steps", "--config", cfg, "--csv", "--json"); err == nil {
		t.Error("steps --csv --json: no error")
	}
}
