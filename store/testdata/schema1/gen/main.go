// Command gen writes the schema-1 fixture store and its dump with the store
// package of errpd at 2a23107 (schema 1, JSON values): every kind of record
// that code writes. It is kept here, under testdata, out of the build of
// today's module; README.md says how to run it from a worktree of that
// commit.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// t0 is the fixture's clock: every stamp in it is a fixed offset from it,
// so that a rerun writes the same records.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func main() {
	out := flag.String("db", "errpd.db", "store `FILE` to write (must not exist)")
	dump := flag.String("dump", "dump.jsonl", "dump `FILE` to write")
	flag.Parse()
	if err := write(*out); err != nil {
		log.Fatal(err)
	}
	if err := writeDump(*out, *dump); err != nil {
		log.Fatal(err)
	}
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func write(path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: remove it first", path)
	}
	clk := &clock{now: t0}
	db, err := store.Open(path, store.Options{Now: clk.Now})
	if err != nil {
		return err
	}
	if err := populate(db, clk); err != nil {
		db.Close()
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	// Three years on, the departed domain's failed notice loses its
	// message to retention (a purged bucket entry and its audit record).
	clk.now = t0.Add(3 * 365 * day)
	db, err = store.Open(path, store.Options{Now: clk.Now})
	if err != nil {
		return err
	}
	n, err := db.PurgeMessages(store.RetentionAt(clk.now, 365*day))
	if err != nil {
		db.Close()
		return err
	}
	if n != 1 {
		db.Close()
		return fmt.Errorf("purged %d messages, want 1", n)
	}
	return db.Close()
}

func opts() store.PlanOptions {
	return store.PlanOptions{
		Policy:       scheduler.DefaultPolicy(),
		InScope:      func(d string) bool { return !strings.HasSuffix(d, ".de") },
		RenewalCheck: 2 * day,
	}
}

func domain(name string, mode scheduler.Mode, expiry time.Time) store.Domain {
	return store.Domain{Name: name, Mode: mode, Expiry: expiry, OrderID: "ORD-" + strings.ToUpper(name[:3]),
		Registrant: store.Registrant{Name: "Reg " + name, Email: "owner@" + name, Language: "en"}}
}

// populate writes the records, advancing the clock between steps so that
// each stamp differs.
func populate(db *store.DB, clk *clock) error {
	up := func(fn func(*store.Tx) error) error {
		clk.now = clk.now.Add(time.Minute)
		return db.Update(fn)
	}
	soon := t0.Add(30 * day) // reminder1 inside its window, the rest planned
	imports := []store.Domain{
		domain("planned-renew.com", scheduler.ModeRenew, t0.Add(90*day)),
		domain("planned-expire.net", scheduler.ModeExpire, t0.Add(90*day)),
		domain("due.com", scheduler.ModeExpire, soon),
		domain("sending.com", scheduler.ModeRenew, soon),
		domain("indoubt.com", scheduler.ModeRenew, soon),
		domain("sent.com", scheduler.ModeRenew, soon),
		domain("uploading.com", scheduler.ModeRenew, soon),
		domain("proved.com", scheduler.ModeExpire, soon),
		domain("failed.com", scheduler.ModeRenew, soon),
		domain("missed.org", scheduler.ModeRenew, t0.Add(10*day)),
		domain("beispiel.de", scheduler.ModeRenew, soon),
		domain("bounced.com", scheduler.ModeRenew, soon),
		domain("closed.com", scheduler.ModeRenew, t0.Add(60*day)),
		domain("reopened.com", scheduler.ModeExpire, t0.Add(60*day)),
		domain("gone.com", scheduler.ModeRenew, soon),
		domain("xn--bcher-kva.com", scheduler.ModeExpire, t0.Add(120*day)),
	}
	imports[0].Brand, imports[1].Handle = "brand-b", "DOM-HANDLE-1"
	if err := up(func(tx *store.Tx) error {
		for _, d := range imports {
			if _, err := tx.Upsert(d, opts()); err != nil {
				return fmt.Errorf("%s: %w", d.Name, err)
			}
		}
		return tx.MarkMessage("ascio-msg-1001")
	}); err != nil {
		return err
	}
	steps := []func() error{
		func() error { return send(up, "sending.com", soon, scheduler.StateSending) },
		func() error { return send(up, "indoubt.com", soon, scheduler.StateInDoubt) },
		func() error { return send(up, "sent.com", soon, scheduler.StateSent) },
		func() error { return send(up, "uploading.com", soon, scheduler.StateUploading) },
		func() error { return send(up, "proved.com", soon, scheduler.StateProved) },
		func() error { return send(up, "failed.com", soon, scheduler.StateFailed) },
		func() error { return send(up, "bounced.com", soon, scheduler.StateSent) },
		func() error { return send(up, "gone.com", soon, scheduler.StateFailed) },
		func() error { return bounce(up, store.StepID("bounced.com", soon, scheduler.Reminder1)) },
		// A new expiry closes closed.com's cycle (its steps skipped) and
		// plans the next; reopened.com is deleted, then restored.
		func() error {
			return up(func(tx *store.Tx) error {
				d := domain("closed.com", scheduler.ModeRenew, t0.Add(425*day))
				o := opts()
				o.Reason = "renewed"
				_, err := tx.Upsert(d, o)
				return err
			})
		},
		func() error { return up(func(tx *store.Tx) error { return tx.Stop("reopened.com", "deleted") }) },
		func() error {
			return up(func(tx *store.Tx) error {
				o := opts()
				o.Revive = true
				_, err := tx.Upsert(domain("reopened.com", scheduler.ModeExpire, t0.Add(60*day)), o)
				if err != nil {
					return err
				}
				return tx.MarkMessage("ascio-msg-1002")
			})
		},
		func() error { return up(func(tx *store.Tx) error { return tx.Stop("gone.com", "transferred") }) },
		func() error { return coverage(up) },
		func() error { return renewal(up) },
	}
	for _, fn := range steps {
		if err := fn(); err != nil {
			return err
		}
	}
	return nil
}

type updater func(func(*store.Tx) error) error

// send walks a domain's reminder1 from due to state along the edges the
// dispatcher and the uploader take, storing its message.
func send(up updater, name string, expiry time.Time, state scheduler.State) error {
	id := store.StepID(name, expiry, scheduler.Reminder1)
	move := func(from, to scheduler.State, detail string, change func(*store.Step)) error {
		return up(func(tx *store.Tx) error {
			_, err := tx.Transition(id, []scheduler.State{from}, to, detail, change)
			return err
		})
	}
	err := up(func(tx *store.Tx) error {
		raw := fmt.Sprintf("From: notices@registrar.example\r\nTo: owner@%s\r\nMessage-ID: <%s@errpd>\r\nSubject: %s expires\r\n\r\nYour domain %s expires soon.\r\n", name, id, name, name)
		m, err := tx.PutMessage(id, []byte(raw))
		if err != nil {
			return err
		}
		_, err = tx.Transition(id, []scheduler.State{scheduler.StateDue}, scheduler.StateSending, "", func(s *store.Step) {
			s.MessageID, s.SHA256, s.From, s.Recipient = "<"+id+"@errpd>", m.SHA256, "notices@registrar.example", "owner@"+name
			s.EnvelopeFrom = "bounce+" + strings.ReplaceAll(name, ".", "-") + "@registrar.example"
			s.Attempts, s.Language = 1, "en"
		})
		return err
	})
	if err != nil || state == scheduler.StateSending {
		return err
	}
	switch state {
	case scheduler.StateInDoubt:
		return move(scheduler.StateSending, scheduler.StateInDoubt, "", func(s *store.Step) {
			s.Reason, s.MayHaveGone = "reply to the final dot lost", true
		})
	case scheduler.StateFailed:
		return move(scheduler.StateSending, scheduler.StateFailed, "550 5.1.1 no such user", func(s *store.Step) {
			s.Reason, s.SMTPReply = "550 5.1.1 no such user", "550 5.1.1 no such user"
		})
	}
	if err := move(scheduler.StateSending, scheduler.StateSent, "250 ok", func(s *store.Step) {
		s.SentAt, s.SMTPReply, s.NextUpload = s.Updated, "250 2.0.0 queued as 4ABC", t0.Add(time.Hour)
		s.OrderID = "ORD-FROM-SEND"
	}); err != nil || state == scheduler.StateSent {
		return err
	}
	if err := move(scheduler.StateSent, scheduler.StateUploading, "", func(s *store.Step) { s.UploadAttempts = 1 }); err != nil || state == scheduler.StateUploading {
		return err
	}
	return move(scheduler.StateUploading, scheduler.StateProved, "200 OK", func(s *store.Step) {
		s.UploadedAt, s.AscioResult = t0.Add(2*time.Hour), "200 OK"
	})
}

// bounce records a hard bounce of the registrant's address: a Bounce on
// the step, a contact flag on the domain, an audit record.
func bounce(up updater, id string) error {
	return up(func(tx *store.Tx) error {
		if _, err := tx.VERPKey(); err != nil {
			return err
		}
		_, err := tx.RecordBounce(id, store.Bounce{Kind: store.BounceHard, Status: "5.1.1", Diagnostic: "550 5.1.1 mailbox unknown", At: t0.Add(3 * time.Hour)})
		return err
	})
}

// coverage answers one coverage check and puts off another.
func coverage(up updater) error {
	return up(func(tx *store.Tx) error {
		due, err := tx.CoverageDue(t0.Add(400*day), 1000)
		if err != nil {
			return err
		}
		var answered, postponed bool
		for _, c := range due {
			switch {
			case c.Step.Domain == "missed.org" && !answered:
				answered = true
				if _, err := tx.RecordCoverage(c, store.CoveredYes, "GetMessages: NotificationMessage on order"); err != nil {
					return err
				}
			case c.Step.Domain == "failed.com" && !postponed:
				postponed = true
				if err := tx.PostponeCoverage(c, t0.Add(50*day), true); err != nil {
					return err
				}
			}
		}
		if !answered || !postponed {
			return errors.New("coverage: the checks looked for are not there")
		}
		return nil
	})
}

// renewal puts off one renewal check.
func renewal(up updater) error {
	return up(func(tx *store.Tx) error {
		for _, c := range tx.RenewalChecksDue(t0.Add(400*day), 1000) {
			if strings.HasPrefix(c.Cycle, "planned-renew.com/") {
				return tx.PostponeRenewalCheck(c, t0.Add(95*day))
			}
		}
		return errors.New("renewal: no check for planned-renew.com")
	})
}

// Line is one line of the dump: a record as the store's API returns it.
type Line struct {
	Kind  string `json:"kind"`
	Key   string `json:"key,omitempty"`
	Value any    `json:"value"`
}

// MessageDump is a stored message as Tx.Message returns it.
type MessageDump struct {
	Raw  []byte        `json:"raw"`
	Meta store.Message `json:"meta"`
}

// CoverageDump is a coverage check without its step (dumped apart).
type CoverageDump struct {
	Step     string    `json:"step"`
	Due      time.Time `json:"due"`
	Attempts int       `json:"attempts"`
}

// far is after every time in the fixture: index reads up to it see all.
var far = t0.Add(100 * 365 * day)

func writeDump(path, out string) error {
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	var lines []Line
	err = db.View(func(tx *store.Tx) error {
		var ids, cycles []string
		seenCycle := map[string]bool{}
		if err := tx.Domains(func(d store.Domain) error {
			lines = append(lines, Line{"domain", d.Name, d})
			return nil
		}); err != nil {
			return err
		}
		if err := tx.AllSteps(func(s store.Step) error {
			lines = append(lines, Line{"step", s.ID, s})
			ids = append(ids, s.ID)
			if !seenCycle[s.Cycle] {
				seenCycle[s.Cycle] = true
				cycles = append(cycles, s.Cycle)
			}
			return nil
		}); err != nil {
			return err
		}
		sort.Strings(cycles)
		for _, k := range cycles {
			c, _, err := tx.Cycle(k)
			if err != nil {
				return err
			}
			lines = append(lines, Line{"cycle", k, c})
		}
		for _, id := range ids {
			raw, m, ok, err := tx.Message(id)
			if err != nil {
				return err
			}
			if ok {
				lines = append(lines, Line{"message", id, MessageDump{raw, m}})
			}
			if tx.Purged(id) {
				lines = append(lines, Line{"purged", id, true})
			}
			if s, ok, err := tx.StepByShortID(store.ShortID(id)); err != nil {
				return err
			} else if ok {
				lines = append(lines, Line{"verp", id, s.ID})
			}
		}
		if err := tx.Audit(0, func(r store.Record) error {
			lines = append(lines, Line{"audit", fmt.Sprint(r.Seq), r})
			return nil
		}); err != nil {
			return err
		}
		head, err := tx.ChainHead()
		if err != nil {
			return err
		}
		lines = append(lines, Line{"chain_head", "", head})
		for _, id := range []string{"ascio-msg-1001", "ascio-msg-1002", "ascio-msg-9999"} {
			lines = append(lines, Line{"inbox", id, tx.SeenMessage(id)})
		}
		lines = append(lines, Line{"due", "", tx.DueIDs(far, 1<<30)}, Line{"uploads", "", tx.UploadIDs(far, 1<<30)})
		active, err := tx.Active()
		if err != nil {
			return err
		}
		var activeIDs []string
		for _, s := range active {
			activeIDs = append(activeIDs, s.ID)
		}
		lines = append(lines, Line{"active", "", activeIDs}, Line{"counts", "", tx.Counts()})
		checks, err := tx.CoverageDue(far, 1<<30)
		if err != nil {
			return err
		}
		var cov []CoverageDump
		for _, c := range checks {
			cov = append(cov, CoverageDump{c.Step.ID, c.Due, c.Attempts})
		}
		lines = append(lines, Line{"coverage", "", cov}, Line{"renewal", "", tx.RenewalChecksDue(far, 1<<30)})
		key, err := tx.VERPKey()
		if err != nil {
			return err
		}
		lines = append(lines, Line{"verp_key", "", key})
		return nil
	})
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, l := range lines {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
