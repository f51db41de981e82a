// Package reporttest builds a small store whose notices went through every
// outcome an auditor asks about (proved, proved late, skipped by a renewal,
// out of scope, missed, failed, in doubt, still planned; Ascio's own copy
// sent, not sent, unknown), for the tests of
// report, evidence and the store's verification. Everything in it is
// deterministic, so that golden files hold.
package reporttest

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Start is the seeding clock's first reading.
func Start() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

// End is the seeding clock's last reading.
func End() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }

// Expiry is the expiry of every seeded domain's first cycle.
func Expiry() time.Time { return time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC) }

// Store is an open seeded store and the clock it runs on.
type Store struct {
	DB   *store.DB
	Path string
	now  time.Time
}

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now }

// Set moves the store's clock.
func (s *Store) Set(t time.Time) { s.now = t }

// Open creates an empty store in t's temporary folder, closed at the
// test's end.
func Open(t testing.TB, noSync bool) *Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "errpd.db"), noSync)
}

// OpenAt creates an empty store at path, closed at the test's end.
func OpenAt(t testing.TB, path string, noSync bool) *Store {
	t.Helper()
	s := &Store{Path: path, now: Start()}
	db, err := store.Open(s.Path, store.Options{Now: func() time.Time { return s.now }, NoSync: noSync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s.DB = db
	return s
}

// Raw is the message seeded for a step.
func Raw(id string) []byte {
	return fmt.Appendf(nil, "From: Example Domains <renewals@example.net>\r\nTo: holder@example.org\r\nSubject: %s\r\nMessage-ID: <%s@errpd.example.net>\r\n\r\nYour domain expires soon.\r\n", id, id)
}

// Seed builds the store of the package comment and returns it with its
// clock at End. The clock only moves forward, as the daemon's does.
func Seed(t testing.TB) *Store {
	t.Helper()
	return SeedAt(t, filepath.Join(t.TempDir(), "errpd.db"))
}

// SeedAt is Seed with the store at path.
func SeedAt(t testing.TB, path string) *Store {
	t.Helper()
	s := OpenAt(t, path, false)
	exp := Expiry()
	inScope := func(d string) bool { return filepath.Ext(d) != ".de" }
	opts := store.PlanOptions{Policy: scheduler.DefaultPolicy(), InScope: inScope}
	domains := []struct {
		name  string
		mode  scheduler.Mode
		order string
	}{
		{"proved.com", scheduler.ModeRenew, "ORD-1"},
		{"renewed.net", scheduler.ModeRenew, "ORD-2"},
		{"missed.org", scheduler.ModeExpire, "ORD-3"},
		{"failed.com", scheduler.ModeRenew, ""},
		{"xn--bcher-kva.com", scheduler.ModeExpire, "ORD-5"},
		{"doubt.info", scheduler.ModeRenew, "ORD-6"},
		{"beispiel.de", scheduler.ModeRenew, ""},
	}
	s.update(t, func(tx *store.Tx) error {
		for _, d := range domains {
			_, err := tx.Upsert(store.Domain{Name: d.name, Mode: d.mode, Expiry: exp, OrderID: d.order,
				Registrant: store.Registrant{Name: "Holder of " + d.name, Email: "holder@" + d.name}}, opts)
			if err != nil {
				return err
			}
		}
		return nil
	})
	r1 := func(d string) string { return store.StepID(d, exp, scheduler.Reminder1) }
	r2 := func(d string) string { return store.StepID(d, exp, scheduler.Reminder2) }

	// Reminder 1 of most domains goes out the day its window opens.
	at := exp.Add(-35*scheduler.Day + 9*time.Hour)
	for _, d := range []string{"proved.com", "renewed.net", "xn--bcher-kva.com", "doubt.info"} {
		s.Send(t, r1(d), at, "250 2.0.0 Ok: queued as 4Z1")
		at = at.Add(10 * time.Minute)
	}
	s.Prove(t, r1("proved.com"), exp.Add(-35*scheduler.Day+10*time.Hour), "200 Success")
	s.Prove(t, r1("renewed.net"), exp.Add(-35*scheduler.Day+10*time.Hour), "200 Success")
	s.Fail(t, r1("failed.com"), exp.Add(-34*scheduler.Day), "550 5.1.1 <holder@failed.com>: Recipient address rejected")
	// Ascio was down: this proof arrived after Ascio's own send.
	s.Prove(t, r1("xn--bcher-kva.com"), exp.Add(-25*scheduler.Day), "200 Success")

	// renewed.net renews before its second reminder.
	s.Set(exp.Add(-20 * scheduler.Day))
	s.update(t, func(tx *store.Tx) error {
		o := opts
		o.Reason = "renewed"
		_, err := tx.Upsert(store.Domain{Name: "renewed.net", Mode: scheduler.ModeRenew, Expiry: exp.AddDate(1, 0, 0), OrderID: "ORD-2",
			Registrant: store.Registrant{Name: "Holder of renewed.net", Email: "holder@renewed.net"}}, o)
		return err
	})
	s.InDoubt(t, r2("doubt.info"), exp.Add(-7*scheduler.Day+time.Hour))
	s.Send(t, r2("proved.com"), exp.Add(-7*scheduler.Day+9*time.Hour), "250 2.0.0 Ok: queued as 4Z2")
	s.Prove(t, r2("proved.com"), exp.Add(-7*scheduler.Day+10*time.Hour), "200 Success")

	// The daemon was down for the rest: everything else is swept at End.
	s.Set(End())
	s.update(t, func(tx *store.Tx) error { _, _, err := tx.Sweep(); return err })
	// A day after their deadlines errpd asked Ascio whether it sent its
	// own copies.
	s.Cover(t, r1("missed.org"), store.CoveredYes, "order ORD-3: Ascio's own ExpiryReminder1")
	s.Cover(t, r2("missed.org"), store.CoveredNo, "order ORD-3: no ExpiryReminder2")
	s.Cover(t, r1("failed.com"), store.CoveredUnknown, "no Ascio order id for this cycle")
	return s
}

// Cover records what Ascio's GetMessages said about a step's notice, as
// the coverage check does.
func (s *Store) Cover(t testing.TB, id string, v store.Coverage, why string) {
	t.Helper()
	s.update(t, func(tx *store.Tx) error {
		st, _, err := tx.Step(id)
		if err != nil {
			return err
		}
		_, err = tx.RecordCoverage(store.CoverageCheck{Step: st, Due: st.Deadline.Add(store.CoverageDelay)}, v, why)
		return err
	})
}

func (s *Store) update(t testing.TB, fn func(*store.Tx) error) {
	t.Helper()
	if err := s.DB.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// claim stores a step's message and records the intent to send it, as the
// dispatcher does.
func (s *Store) claim(tx *store.Tx, id string) error {
	m, err := tx.PutMessage(id, Raw(id))
	if err != nil {
		return err
	}
	st, _, err := tx.Step(id)
	if err != nil {
		return err
	}
	c, _, err := tx.Cycle(st.Cycle)
	if err != nil {
		return err
	}
	_, err = tx.Transition(id, []scheduler.State{scheduler.StatePlanned, scheduler.StateDue}, scheduler.StateSending, "sending", func(st *store.Step) {
		st.Attempts++
		st.MessageID, st.SHA256 = "<"+id+"@errpd.example.net>", m.SHA256
		st.From, st.Recipient = "Example Domains <renewals@example.net>", c.Registrant.Email
		st.EnvelopeFrom, st.OrderID = "bounces@errp.example.net", c.OrderID
		st.Language = "en"
	})
	return err
}

// Send records a step sent at at with the relay's reply.
func (s *Store) Send(t testing.TB, id string, at time.Time, reply string) {
	t.Helper()
	s.Set(at)
	s.update(t, func(tx *store.Tx) error {
		if err := s.claim(tx, id); err != nil {
			return err
		}
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateSending}, scheduler.StateSent, "sent", func(st *store.Step) {
			st.SentAt, st.SMTPReply, st.NextUpload = at, reply, at
		})
		return err
	})
}

// Prove records a sent step's proof accepted by Ascio at at.
func (s *Store) Prove(t testing.TB, id string, at time.Time, result string) {
	t.Helper()
	s.Set(at)
	s.update(t, func(tx *store.Tx) error {
		if _, err := tx.Transition(id, []scheduler.State{scheduler.StateSent}, scheduler.StateUploading, "uploading", func(st *store.Step) {
			st.UploadAttempts++
		}); err != nil {
			return err
		}
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateUploading}, scheduler.StateProved, "proved", func(st *store.Step) {
			st.UploadedAt, st.AscioResult = at, result
		})
		return err
	})
}

// Fail records a step the relay refused for good.
func (s *Store) Fail(t testing.TB, id string, at time.Time, reply string) {
	t.Helper()
	s.Set(at)
	s.update(t, func(tx *store.Tx) error {
		if err := s.claim(tx, id); err != nil {
			return err
		}
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateSending}, scheduler.StateFailed, "smtp: "+reply, func(st *store.Step) {
			st.SMTPReply, st.Reason = reply, "smtp: "+reply
		})
		return err
	})
}

// InDoubt records a step whose SMTP transaction a crash interrupted.
func (s *Store) InDoubt(t testing.TB, id string, at time.Time) {
	t.Helper()
	s.Set(at)
	s.update(t, func(tx *store.Tx) error {
		if err := s.claim(tx, id); err != nil {
			return err
		}
		_, err := tx.Transition(id, []scheduler.State{scheduler.StateSending}, scheduler.StateInDoubt, "found in sending at start-up", func(st *store.Step) {
			st.Reason = "found in sending at start-up: may or may not have been delivered"
		})
		return err
	})
}
