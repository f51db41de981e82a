package lifecycle_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/coverage"
	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestRenewalCheck, against the Ascio stand-in: two hours after a
// renew-mode expiry errpd asks GetDomain, or GetDomains by name for a
// domain known from the calendar alone (no handle). An unchanged expiry
// owes the post-expiry notices; a later one closes the cycle as renewed
// and plans the next; a temporary error is retried; a name Ascio does not
// hold is no evidence, and nothing post-expiry is planned for it.
func TestRenewalCheck(t *testing.T) {
	t.Parallel()
	srv, url := ascioteststand.Start(t)
	client := &ascio.Client{Endpoint: url, Account: "errpd-test", Password: "not-a-real-password", HTTP: &http.Client{Timeout: 10 * time.Second}}
	w := newWorld(t, expA.Add(-30*scheduler.Day))
	w.o.RenewalCheck = 2 * time.Hour
	for _, d := range []struct{ name, handle string }{{"lapsed.example", "H-LAPSED"}, {"renewed.example", "H-RENEWED"}, {"flaky.example", "H-FLAKY"},
		{"cal-lapsed.example", ""}, {"cal-renewed.example", ""}, {"cal-unknown.example", ""}} {
		w.apply(t, lifecycle.Event{Kind: lifecycle.Facts, Domain: store.Domain{Name: d.name, Mode: scheduler.ModeRenew, Expiry: expA,
			Registrant: ann, OrderID: "O-" + d.name, Handle: d.handle}, Reason: "AutoRenew order"})
	}
	srv.AddDomain(ascio.Domain{Name: "lapsed.example", Handle: "H-LAPSED", Status: "EXPIRED", Expires: expA, Owner: ascio.Contact{Email: "ann@example.org"}})
	srv.AddDomain(ascio.Domain{Name: "renewed.example", Handle: "H-RENEWED", Status: "ACTIVE", Expires: expB, Owner: ascio.Contact{Email: "ann@example.org"}})
	srv.AddDomain(ascio.Domain{Name: "flaky.example", Handle: "H-FLAKY", Status: "EXPIRED", Expires: expA, Owner: ascio.Contact{Email: "ann@example.org"}})
	// Ascio holds these under handles errpd never learnt; cal-unknown it
	// does not hold at all.
	srv.AddDomain(ascio.Domain{Name: "cal-lapsed.example", Handle: "H-CAL-LAPSED", Status: "EXPIRED", Expires: expA, Owner: ascio.Contact{Email: "ann@example.org"}})
	srv.AddDomain(ascio.Domain{Name: "cal-renewed.example", Handle: "H-CAL-RENEWED", Status: "ACTIVE", Expires: expB, Owner: ascio.Contact{Email: "ann@example.org"}})
	rc := &lifecycle.RenewalChecker{DB: w.db, Ascio: client, Plan: w.o, Now: func() time.Time { return w.now },
		Retry: coverage.Retry{Base: time.Minute, Max: time.Minute, Attempts: 3}}

	w.now = expA.Add(time.Hour) // not yet due
	next, err := rc.RunOnce(context.Background())
	if err != nil || !next.Equal(expA.Add(2*time.Hour)) {
		t.Fatalf("before it is due: next %v, %v; want %v", next, err, expA.Add(2*time.Hour))
	}
	if calls := srv.Calls(); len(calls) != 0 {
		t.Fatalf("asked Ascio before the check was due: %v", calls)
	}
	// Checks run in cycle key order: the cal-* domains by name (GetDomains),
	// then flaky (the first GetDomain), lapsed and renewed by handle.
	srv.Script(ascioteststand.OpGetDomain, ascioteststand.Fault)
	w.now = expA.Add(2 * time.Hour)
	if _, err := rc.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	steps := func(name string, exp time.Time) (store.Cycle, map[scheduler.Notice]store.Step) {
		var c store.Cycle
		out := map[scheduler.Notice]store.Step{}
		w.db.View(func(tx *store.Tx) error {
			c, _, _ = tx.Cycle(store.CycleKey(name, exp))
			ss, _ := tx.Steps(c.Key)
			for _, s := range ss {
				out[s.Notice] = s
			}
			return nil
		})
		return c, out
	}
	c, ss := steps("lapsed.example", expA)
	if c.NotRenewed == nil || !strings.Contains(c.NotRenewed.Event, "unchanged") || ss[scheduler.Reminder3].State != scheduler.StateDue {
		t.Errorf("lapsed: evidence %+v, reminder3 %s; want evidence and reminder3 due", c.NotRenewed, ss[scheduler.Reminder3].State)
	}
	c, ss = steps("renewed.example", expA)
	if c.Closed.IsZero() || !strings.Contains(c.Reason, "renewed (GetDomain at") || len(ss) != 2 {
		t.Errorf("renewed: closed %v (%q), %d steps; want closed as renewed with reminder1 and reminder2 only", c.Closed, c.Reason, len(ss))
	}
	if c, _ := steps("renewed.example", expB); c.Key == "" || !c.Closed.IsZero() {
		t.Errorf("renewed: next cycle %+v, want it planned", c)
	}
	c, ss = steps("cal-lapsed.example", expA)
	if c.NotRenewed == nil || !strings.Contains(c.NotRenewed.Event, "GetDomains at") || !strings.Contains(c.NotRenewed.Event, "unchanged") ||
		ss[scheduler.Reminder3].State != scheduler.StateDue {
		t.Errorf("calendar-only, lapsed: evidence %+v, reminder3 %s; want GetDomains' evidence and reminder3 due", c.NotRenewed, ss[scheduler.Reminder3].State)
	}
	c, ss = steps("cal-renewed.example", expA)
	if c.Closed.IsZero() || !strings.Contains(c.Reason, "renewed (GetDomains at") || c.NotRenewed != nil || len(ss) != 2 {
		t.Errorf("calendar-only, renewed: closed %v (%q), evidence %+v, %d steps; want closed as renewed with reminder1 and reminder2 only",
			c.Closed, c.Reason, c.NotRenewed, len(ss))
	}
	if c, _ := steps("cal-renewed.example", expB); c.Key == "" || !c.Closed.IsZero() {
		t.Errorf("calendar-only, renewed: next cycle %+v, want it planned", c)
	}
	if c, ss := steps("cal-unknown.example", expA); c.NotRenewed != nil || !c.Closed.IsZero() || len(ss) != 2 {
		t.Errorf("calendar-only, not at Ascio: evidence %+v, closed %v, %d steps; want no evidence, reminder1 and reminder2 only", c.NotRenewed, c.Closed, len(ss))
	}
	if got := strings.Join(srv.Calls(), " "); got != "GetDomains GetDomains GetDomains GetDomain GetDomain GetDomain" {
		t.Errorf("calls %s; want GetDomains for the three domains without a handle, then GetDomain for the three with one", got)
	}
	c, ss = steps("flaky.example", expA)
	if c.NotRenewed != nil || len(ss) != 2 {
		t.Errorf("flaky after a fault: evidence %+v, %d steps; want no decision yet", c.NotRenewed, len(ss))
	}
	var pending []store.RenewalCheck
	w.db.View(func(tx *store.Tx) error { pending = tx.RenewalChecksDue(expA.Add(scheduler.Day), 10); return nil })
	if len(pending) != 1 || pending[0].Cycle != store.CycleKey("flaky.example", expA) || pending[0].Attempts != 1 {
		t.Fatalf("pending checks %+v, want flaky's, with one failed attempt", pending)
	}
	w.now = pending[0].Due
	if _, err := rc.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, ss := steps("flaky.example", expA); c.NotRenewed == nil || ss[scheduler.Reminder3].State != scheduler.StateDue {
		t.Errorf("flaky after the retry: evidence %+v, reminder3 %s", c.NotRenewed, ss[scheduler.Reminder3].State)
	}
	w.db.View(func(tx *store.Tx) error { pending = tx.RenewalChecksDue(expB.Add(scheduler.Day), 10); return nil })
	if len(pending) != 2 || pending[0].Cycle != store.CycleKey("cal-renewed.example", expB) || pending[1].Cycle != store.CycleKey("renewed.example", expB) {
		t.Errorf("checks left %+v, want only the renewed domains' next cycles", pending)
	}
	if bad := srv.Invalid(); len(bad) > 0 {
		t.Errorf("requests or answers off Ascio's schema: %v", bad)
	}
}
