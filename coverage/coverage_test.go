package coverage_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/coverage"
	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/uploader"
)

func client(url string) *ascio.Client {
	return &ascio.Client{Endpoint: url, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

func covered(t *testing.T, db *store.DB, id string) store.Coverage {
	t.Helper()
	var s store.Step
	if err := db.View(func(tx *store.Tx) (err error) { s, _, err = tx.Step(id); return err }); err != nil {
		t.Fatal(err)
	}
	return s.CoveredByAscio
}

// auditDetails returns the audit records' details for one step.
func auditDetails(t *testing.T, db *store.DB, id string) []string {
	t.Helper()
	var out []string
	db.View(func(tx *store.Tx) error {
		return tx.Audit(1, func(r store.Record) error {
			if r.Step == id && strings.HasPrefix(r.Detail, "covered_by_ascio") {
				out = append(out, r.Detail)
			}
			return nil
		})
	})
	return out
}

// TestSeededAgainstStandIn runs the checks on the seeded store (every
// outcome an auditor asks about) against the stand-in, where Ascio sent
// its own reminders 2 and 3 for missed.org and reminder 2 for doubt.info.
// The seed recorded answers for missed.org's reminders 1 (yes) and 2 (no)
// and failed.com's reminder 1 (unknown): asked once, they stay.
func TestSeededAgainstStandIn(t *testing.T) {
	s := reporttest.Seed(t) // clock at End, months after every deadline
	sv, url := ascioteststand.Start(t)
	exp := reporttest.Expiry()
	sv.SendOwnCopy("ORD-3", ascio.ExpiryReminder2, "holder@missed.org", exp.Add(-4*scheduler.Day))
	sv.SendOwnCopy("ORD-3", ascio.ExpiryReminder3, "holder@missed.org", exp.Add(5*scheduler.Day))
	sv.SendOwnCopy("ORD-6", ascio.ExpiryReminder2, "holder@doubt.info", exp.Add(-4*scheduler.Day))
	c := &coverage.Checker{DB: s.DB, Ascio: client(url), Now: s.Now}
	next, err := c.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := func(d string, n scheduler.Notice) string { return store.StepID(d, exp, n) }
	want := map[string]store.Coverage{
		id("proved.com", scheduler.Reminder1):                                  "", // proved in time: nothing to ask
		id("proved.com", scheduler.Reminder2):                                  "",
		id("renewed.net", scheduler.Reminder2):                                 "", // skipped: not owed
		id("beispiel.de", scheduler.Reminder1):                                 "",
		id("missed.org", scheduler.Reminder1):                                  store.CoveredYes, // the seed's
		id("missed.org", scheduler.Reminder2):                                  store.CoveredNo,  // the seed's, not asked again
		id("missed.org", scheduler.Reminder3):                                  store.CoveredYes,
		id("missed.org", scheduler.Suspension):                                 "",              // Ascio has no type for it
		id("xn--bcher-kva.com", scheduler.Reminder1):                           store.CoveredNo, // proved late, Ascio sent nothing
		id("doubt.info", scheduler.Reminder1):                                  store.CoveredNo, // sent, never proved
		id("doubt.info", scheduler.Reminder2):                                  store.CoveredYes,
		id("failed.com", scheduler.Reminder1):                                  store.CoveredUnknown, // the seed's
		id("failed.com", scheduler.Reminder2):                                  store.CoveredUnknown,
		id("xn--bcher-kva.com", scheduler.Suspension):                          "",
		id("xn--bcher-kva.com", scheduler.Reminder3):                           store.CoveredNo,
		store.StepID("renewed.net", exp.AddDate(1, 0, 0), scheduler.Reminder1): "", // not due yet
	}
	for step, w := range want {
		if got := covered(t, s.DB, step); got != w {
			t.Errorf("%s: covered_by_ascio %q, want %q", step, got, w)
		}
		details := auditDetails(t, s.DB, step)
		if (w == "") != (len(details) == 0) || len(details) > 1 {
			t.Errorf("%s: audit records %q; want one when recorded, none otherwise", step, details)
		}
	}
	if d := auditDetails(t, s.DB, id("missed.org", scheduler.Reminder3)); len(d) == 1 &&
		d[0] != "covered_by_ascio: yes: order ORD-3: Ascio's own ExpiryReminder3, created 2025-03-06T00:00:00Z, to holder@missed.org" {
		t.Errorf("audit detail %q", d[0])
	}
	if d := auditDetails(t, s.DB, id("failed.com", scheduler.Reminder2)); len(d) != 1 || d[0] != "covered_by_ascio: unknown: no Ascio order id for this cycle" {
		t.Errorf("audit detail %q", d)
	}
	// The renewed cycle's checks are what is left, at its first deadline + 24h.
	if w := exp.AddDate(1, 0, 0).Add(-26*scheduler.Day + store.CoverageDelay); !next.Equal(w) {
		t.Errorf("next check at %s, want %s", next, w)
	}
	// Asked once: a second run asks Ascio nothing.
	calls := len(sv.Calls())
	if _, err := c.RunOnce(context.Background()); err != nil || len(sv.Calls()) != calls {
		t.Errorf("second run: %v, %d calls more", err, len(sv.Calls())-calls)
	}
	if _, err := s.DB.Verify(); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// seedOne stores one renew domain with order ORD-9 and returns the store
// with its clock just after reminder 1's window opened.
func seedOne(t *testing.T) (*reporttest.Store, string) {
	t.Helper()
	s := reporttest.Open(t, false)
	exp := reporttest.Expiry()
	err := s.DB.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(store.Domain{Name: "late.com", Mode: scheduler.ModeRenew, Expiry: exp, OrderID: "ORD-9",
			Registrant: store.Registrant{Name: "Holder", Email: "holder@late.com"}}, store.PlanOptions{Policy: scheduler.DefaultPolicy()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, store.StepID("late.com", exp, scheduler.Reminder1)
}

// sendLate records reminder 1 as sent in its window with a real message,
// and its proof accepted only after the deadline, through the uploader and
// the stand-in, as the dispatcher would.
func sendLate(t *testing.T, s *reporttest.Store, id, url string) {
	t.Helper()
	exp := reporttest.Expiry()
	sent := exp.Add(-30 * scheduler.Day)
	raw := []byte("From: Example <renewals@example.net>\r\nTo: holder@late.com\r\nSubject: late.com expires soon\r\n" +
		"Date: " + sent.Format(time.RFC1123Z) + "\r\nMessage-ID: <x@example.net>\r\nContent-Type: text/plain\r\n\r\nRenew it.\r\n")
	s.Set(sent)
	step := func(from, to scheduler.State, change func(*store.Step)) {
		t.Helper()
		err := s.DB.Update(func(tx *store.Tx) error {
			if from == scheduler.StateDue {
				if _, err := tx.PutMessage(id, raw); err != nil {
					return err
				}
			}
			_, err := tx.Transition(id, []scheduler.State{from}, to, string(to), change)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	s.DB.Update(func(tx *store.Tx) error { _, _, err := tx.Sweep(); return err })
	step(scheduler.StateDue, scheduler.StateSending, func(st *store.Step) { st.OrderID = "ORD-9" })
	step(scheduler.StateSending, scheduler.StateSent, func(st *store.Step) { st.SentAt = sent })
	s.Set(exp.Add(-20 * scheduler.Day)) // after reminder 1's deadline
	up := &uploader.Client{Ascio: client(url)}
	if _, err := up.Upload(context.Background(), "ORD-9", scheduler.Reminder1, raw, false); err != nil {
		t.Fatal(err)
	}
	step(scheduler.StateSent, scheduler.StateUploading, nil)
	step(scheduler.StateUploading, scheduler.StateProved, func(st *store.Step) { st.UploadedAt = s.Now() })
}

// errpd's own late upload is not Ascio's copy; Ascio's copy beside it is.
func TestOwnUploadIsNotCoverage(t *testing.T) {
	for _, ascioSent := range []bool{false, true} {
		s, id := seedOne(t)
		sv, url := ascioteststand.Start(t)
		if ascioSent {
			// At the deadline, before errpd's late proof arrived.
			sv.SendOwnCopy("ORD-9", ascio.ExpiryReminder1, "holder@late.com", reporttest.Expiry().Add(-26*scheduler.Day))
		}
		sendLate(t, s, id, url)
		s.Set(reporttest.Expiry().Add(-25*scheduler.Day + time.Minute)) // deadline + 24h
		c := &coverage.Checker{DB: s.DB, Ascio: client(url), Now: s.Now}
		if _, err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := store.CoveredNo
		if ascioSent {
			want = store.CoveredYes
		}
		if got := covered(t, s.DB, id); got != want {
			t.Errorf("Ascio sent its own copy: %v; covered_by_ascio %q, want %q (audit %q)", ascioSent, got, want, auditDetails(t, s.DB, id))
		}
	}
}

// A check is not asked before deadline + 24h.
func TestNotBeforeADay(t *testing.T) {
	s, id := seedOne(t)
	_, url := ascioteststand.Start(t)
	deadline := reporttest.Expiry().Add(-26 * scheduler.Day)
	s.Set(deadline)
	s.DB.Update(func(tx *store.Tx) error { _, _, err := tx.Sweep(); return err }) // missed
	c := &coverage.Checker{DB: s.DB, Ascio: client(url), Now: s.Now}
	s.Set(deadline.Add(store.CoverageDelay - time.Second))
	next, err := c.RunOnce(context.Background())
	if err != nil || covered(t, s.DB, id) != "" || !next.Equal(deadline.Add(store.CoverageDelay)) {
		t.Fatalf("a second before: %v, covered %q, next %s", err, covered(t, s.DB, id), next)
	}
	s.Set(deadline.Add(store.CoverageDelay))
	if _, err := c.RunOnce(context.Background()); err != nil || covered(t, s.DB, id) != store.CoveredNo {
		t.Fatalf("at deadline + 24h: %v, covered %q; want no", err, covered(t, s.DB, id))
	}
}

// Temporary errors are retried on the retry's schedule; after the last
// attempt the answer is unknown. One success in between answers.
func TestTemporaryErrors(t *testing.T) {
	r := coverage.Retry{Base: time.Minute, Max: time.Hour, Attempts: 3}
	for _, c := range []struct {
		name    string
		answers []ascioteststand.Answer
		want    store.Coverage
		calls   int
	}{
		{"unknown after the last attempt", []ascioteststand.Answer{ascioteststand.TryLater, ascioteststand.Fault, ascioteststand.TryLater}, store.CoveredUnknown, 3},
		{"retried until answered", []ascioteststand.Answer{ascioteststand.TryLater, ascioteststand.TryLater}, store.CoveredYes, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, id := seedOne(t)
			sv, url := ascioteststand.Start(t)
			deadline := reporttest.Expiry().Add(-26 * scheduler.Day)
			s.Set(deadline)
			s.DB.Update(func(tx *store.Tx) error { _, _, err := tx.Sweep(); return err })
			sv.SendOwnCopy("ORD-9", ascio.ExpiryReminder1, "holder@late.com", deadline)
			sv.Script(ascioteststand.OpGetMessages, c.answers...)
			s.Set(deadline.Add(store.CoverageDelay))
			ch := &coverage.Checker{DB: s.DB, Ascio: client(url), Now: s.Now, Retry: r, Jitter: func() float64 { return 0 }}
			for i := 0; i < 10; i++ {
				next, err := ch.RunOnce(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if covered(t, s.DB, id) != "" {
					break
				}
				// Waiting until the next attempt; never asked earlier.
				if !next.After(s.Now()) {
					t.Fatalf("after a failure the next attempt is at %s, not after now %s", next, s.Now())
				}
				s.Set(next)
			}
			if got := covered(t, s.DB, id); got != c.want {
				t.Errorf("covered_by_ascio %q, want %q (audit %q)", got, c.want, auditDetails(t, s.DB, id))
			}
			n := 0
			for _, op := range sv.Calls() {
				if op == ascioteststand.OpGetMessages {
					n++
				}
			}
			if n != c.calls {
				t.Errorf("GetMessages asked %d times, want %d", n, c.calls)
			}
			if d := auditDetails(t, s.DB, id); c.want == store.CoveredUnknown && (len(d) != 1 || !strings.Contains(d[0], "GetMessages failed 3 times")) {
				t.Errorf("audit %q", d)
			}
		})
	}
}

type refusing struct{ calls int }

func (r *refusing) GetMessages(context.Context, string) ([]ascio.Message, error) {
	r.calls++
	return nil, failure.AsPermanent(errors.New("ascio GetMessages: 405 Access denied"))
}

// A permanent error is not retried: unknown at once, with the reason.
func TestPermanentError(t *testing.T) {
	s, id := seedOne(t)
	deadline := reporttest.Expiry().Add(-26 * scheduler.Day)
	s.Set(deadline)
	s.DB.Update(func(tx *store.Tx) error { _, _, err := tx.Sweep(); return err })
	s.Set(deadline.Add(store.CoverageDelay))
	a := &refusing{}
	c := &coverage.Checker{DB: s.DB, Ascio: a, Now: s.Now}
	if _, err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := auditDetails(t, s.DB, id)
	if covered(t, s.DB, id) != store.CoveredUnknown || a.calls != 1 || len(d) != 1 || !strings.Contains(d[0], "405 Access denied") {
		t.Errorf("covered %q after %d calls, audit %q; want unknown after one, with Ascio's answer", covered(t, s.DB, id), a.calls, d)
	}
}

func TestRetryNext(t *testing.T) {
	r := coverage.Retry{Base: time.Minute, Max: 10 * time.Minute, Attempts: 6}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		attempt int
		jitter  float64
		want    time.Duration
		ok      bool
	}{
		{1, 0, 30 * time.Second, true},
		{1, 0.999999, 60 * time.Second, true},
		{2, 0, time.Minute, true},
		{4, 0, 4 * time.Minute, true},
		{5, 0, 5 * time.Minute, true}, // capped at Max: 10 minutes, halved
		{6, 0, 0, false},
	}
	for _, c := range cases {
		next, ok := r.Next(c.attempt, now, c.jitter)
		if ok != c.ok || (ok && next.Sub(now).Round(time.Second) != c.want) {
			t.Errorf("Next(%d, %v) = %s, %v; want +%s, %v", c.attempt, c.jitter, next.Sub(now), ok, c.want, c.ok)
		}
	}
}
