// Package report answers an auditor: one row per ERRP notice that was due
// in a period, sent or not, with everything that proves it (or says why
// not), and a summary. Rows are read from the store in chunks of short read
// transactions and written as they are read, so that a report of millions of
// notices runs in flat memory while the daemon goes on writing.
//
// A notice is due in the period [From, To) when its step's deadline (the
// end of its window, Ascio's own send) falls in it. A notice that was
// skipped, missed, failed or is still waiting gets its row all the same;
// one whose deadline is not yet past is listed as pending and not counted
// (Summary).
package report

import (
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Filter chooses the rows of a report. Zero times leave the period open at
// that end.
type Filter struct {
	From, To time.Time // deadline in [From, To)
	Domains  []string  // A-labels, lower case; empty for all
	TLD      string    // A-label without the dot; empty for all
}

// Match reports whether a step belongs to the report.
func (f Filter) Match(s store.Step) bool {
	if !f.From.IsZero() && s.Deadline.Before(f.From) {
		return false
	}
	if !f.To.IsZero() && !s.Deadline.Before(f.To) {
		return false
	}
	if f.TLD != "" && tld(s.Domain) != f.TLD {
		return false
	}
	return true
}

// Row is one notice as the report shows it.
type Row struct {
	Domain        string    `json:"domain"`         // A-label
	DomainUnicode string    `json:"domain_unicode"` // U-label form
	TLD           string    `json:"tld"`
	Mode          string    `json:"mode"`
	Expiry        time.Time `json:"expiry"`
	Notice        string    `json:"notice"`
	Opens         time.Time `json:"opens"`
	Deadline      time.Time `json:"deadline"`
	ICANNWindow   string    `json:"icann_window"`
	State         string    `json:"state"`
	SentAt        time.Time `json:"sent_at,omitzero"`
	InWindow      bool      `json:"in_window"`
	Recipient     string    `json:"recipient,omitempty"`
	From          string    `json:"from,omitempty"`
	EnvelopeFrom  string    `json:"envelope_from,omitempty"`
	MessageID     string    `json:"message_id,omitempty"`
	SHA256        string    `json:"sha256,omitempty"`
	SMTPReply     string    `json:"smtp_reply,omitempty"`
	Attempts      int       `json:"attempts"`
	OrderID       string    `json:"order_id,omitempty"`
	UploadedAt    time.Time `json:"uploaded_at,omitzero"`
	AscioResult   string    `json:"ascio_result,omitempty"`
	ProvedInTime  bool      `json:"proved_in_time"`
	WhyNotSent    string    `json:"why_not_sent,omitempty"`
	Step          string    `json:"step"`
	// CoveredByAscio: yes, no or unknown once errpd asked whether Ascio
	// sent its own copy (a day after a deadline passed without errpd's
	// proof); empty when there was nothing to ask or not yet.
	CoveredByAscio string `json:"covered_by_ascio,omitempty"`
	// ClosedReason is why the notice's cycle closed (renewed, deleted,
	// transferred away) or, when it was skipped, why.
	ClosedReason string `json:"closed_reason,omitempty"`
	// Bounce is hard, soft or empty: the notice came back (it stays sent
	// and proved: ERRP requires sending). BounceStatus is the DSN's status.
	Bounce       string    `json:"bounce,omitempty"`
	BounceStatus string    `json:"bounce_status,omitempty"`
	BouncedAt    time.Time `json:"bounced_at,omitzero"`
	// ContactFlag is set while the domain's registrant e-mail is one that
	// hard-bounced: "registrant e-mail failed: verify contact data".
	ContactFlag string `json:"contact_flag,omitempty"`
	// Pending: the deadline is not before the report's cutoff (Summary),
	// so the notice is listed and not counted.
	Pending bool `json:"-"`

	Language         string `json:"language,omitempty"`          // the notice's language (Content-Language)
	LanguageFallback string `json:"language_fallback,omitempty"` // the registrant's, when no template was in it
}

// NewRow builds a step's row; c is what it shows of the step's cycle.
func NewRow(s store.Step, c store.CycleFacts) Row {
	u, err := idna.ToUnicode(s.Domain)
	if err != nil {
		u = s.Domain
	}
	r := Row{
		Domain: s.Domain, DomainUnicode: u, TLD: tld(s.Domain), Mode: string(c.Mode),
		Expiry: s.Expiry, Notice: string(s.Notice), Opens: s.Opens, Deadline: s.Deadline,
		ICANNWindow: ICANNWindow(s.Notice), State: string(s.State), SentAt: s.SentAt,
		Recipient: s.Recipient, From: s.From, EnvelopeFrom: s.EnvelopeFrom,
		MessageID: s.MessageID, SHA256: s.SHA256, SMTPReply: s.SMTPReply, Attempts: s.Attempts,
		OrderID: s.OrderID, UploadedAt: s.UploadedAt, AscioResult: s.AscioResult, Step: s.ID,
		Language: s.Language, LanguageFallback: s.LanguageFallback,
	}
	r.InWindow = !s.SentAt.IsZero() && !s.SentAt.Before(s.Opens) && s.SentAt.Before(s.Deadline)
	r.ProvedInTime = s.State == scheduler.StateProved && !s.UploadedAt.IsZero() && s.UploadedAt.Before(s.Deadline)
	if s.SentAt.IsZero() {
		r.WhyNotSent = whyNotSent(s)
	}
	r.CoveredByAscio = string(s.CoveredByAscio)
	r.ClosedReason = c.Reason
	if b := s.Bounce; b != nil {
		r.Bounce, r.BounceStatus, r.BouncedAt = string(b.Kind), b.Status, b.At
	}
	if s.State == scheduler.StateSkipped && s.Reason != "" {
		r.ClosedReason = s.Reason
	}
	return r
}

// ICANNWindow names the ERRP requirement a notice answers, in ICANN's terms.
// errpd's default windows sit inside these.
func ICANNWindow(n scheduler.Notice) string {
	switch n {
	case scheduler.Reminder1:
		return "26-35 days before expiry"
	case scheduler.Reminder2:
		return "4-10 days before expiry"
	case scheduler.Reminder3:
		return "within 5 days after expiry"
	case scheduler.Suspension:
		return "suspension +8 (DNS interrupted, ERRP 2.2)"
	}
	return ""
}

func whyNotSent(s store.Step) string {
	switch s.State {
	case scheduler.StateSkipped:
		return s.Reason // renewed / expiry changed: new expiry X, deleted, transferred away, out of scope, mode switched
	case scheduler.StateMissed:
		return "missed: " + orElse(s.Reason, "the window closed before it was sent")
	case scheduler.StateFailed:
		return "failed: " + orElse(s.SMTPReply, s.Reason)
	case scheduler.StateInDoubt:
		return "in doubt: " + orElse(s.Reason, "a crash interrupted its SMTP transaction")
	case scheduler.StateSending:
		return "being sent"
	}
	return "not sent yet"
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func tld(domain string) string { return domain[strings.LastIndexByte(domain, '.')+1:] }

// chunk is how many steps one read transaction reads.
const chunk = 2000

// Rows calls fn with the row of every notice the filter matches, in step
// id order (domain, expiry, notice), reading each chunk of steps in its own
// read transaction. It reads only what the filter can match: the named
// domains' steps (a prefix scan each), the period's steps through the
// deadline index, or the TLD's domains through the TLD index; only a
// report without any of these, or a period that holds most of the store,
// reads every step.
func Rows(db *store.DB, f Filter, fn func(Row) error) error {
	return batches(db, f, func() batcher[[]Row] { return &rowBatch{} }, func(rows []Row) error {
		for i := range rows {
			if err := fn(rows[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// A batcher takes the rows of a chunk on the goroutine that read them and
// turns them into what a report's writer takes: the rows themselves
// (Rows), or their CSV or JSON lines and counts (Write). A period's chunks
// are read by several workers, each with its own batcher, so that the
// encoding of the rows is spread over them too and the writer only copies
// bytes out in order.
type batcher[T any] interface {
	add(r *Row) error
	batch() T // what was added since the last batch, which starts the next
}

// rowBatch is the batcher of Rows.
type rowBatch struct{ rows []Row }

func (b *rowBatch) add(r *Row) error { b.rows = append(b.rows, *r); return nil }

func (b *rowBatch) batch() []Row {
	rows := b.rows
	b.rows = nil
	return rows
}

// batches passes the batches of every row the filter matches to take, in
// step id order, as Rows passes rows.
func batches[T any](db *store.DB, f Filter, newBatcher func() batcher[T], take func(T) error) error {
	if len(f.Domains) > 0 {
		b := newBatcher()
		for _, d := range f.Domains {
			if err := scanPrefix(db, d+"/", f, b, take); err != nil {
				return err
			}
		}
		return nil
	}
	indexed := false
	db.View(func(tx *store.Tx) error { indexed = tx.ReadIndexes(); return nil })
	switch {
	case indexed && (!f.From.IsZero() || !f.To.IsZero()):
		return byDeadline(db, f, newBatcher, take)
	case indexed && f.TLD != "":
		return byTLD(db, f, newBatcher(), take)
	}
	return scanPrefix(db, "", f, newBatcher(), take)
}

// rowMaker builds the rows of the steps one read transaction reads,
// looking each cycle and domain up once (a cycle's steps are adjacent).
type rowMaker struct {
	tx *store.Lookups
	f  Filter
	fn func(*Row) error
	// cycle is the cycle of the last step, c what the row shows of it.
	cycle string
	c     store.CycleFacts
	// domain is the domain of the last step, flag its contact flag.
	domain string
	flag   *store.ContactFlag
	row    Row // built into: a Row of its own each step would escape to fn, an allocation
}

func (m *rowMaker) step(s store.Step) error {
	if !m.f.Match(s) {
		return nil
	}
	var err error
	if m.cycle != s.Cycle {
		if m.c, _, err = m.tx.CycleFacts(s.Cycle); err != nil {
			return err
		}
		m.cycle = s.Cycle
	}
	if m.domain != s.Domain {
		if m.flag, err = m.tx.ContactFailed(s.Domain); err != nil {
			return err
		}
		m.domain = s.Domain
	}
	m.row = NewRow(s, m.c)
	if m.flag != nil {
		m.row.ContactFlag = m.flag.Reason
	}
	return m.fn(&m.row)
}

// scanPrefix reads every step whose id starts with prefix ("" for all),
// passing each chunk's batch to take once its transaction is over.
func scanPrefix[T any](db *store.DB, prefix string, f Filter, b batcher[T], take func(T) error) error {
	after := ""
	for {
		n := 0
		err := db.View(func(tx *store.Tx) error {
			m := rowMaker{tx: tx.Lookups(), f: f, fn: b.add}
			var err error
			after, err = tx.StepsAfter(prefix, after, chunk, func(s store.Step) error {
				n++
				return m.step(s)
			})
			return err
		})
		if err == nil {
			err = take(b.batch())
		}
		if err != nil || n < chunk {
			return err
		}
	}
}

// byTLD reads the steps of the TLD's domains, found in the TLD index.
func byTLD[T any](db *store.DB, f Filter, b batcher[T], take func(T) error) error {
	after := ""
	for {
		var domains []string
		err := db.View(func(tx *store.Tx) error {
			var err error
			after, err = tx.TLDDomainsAfter(f.TLD, after, chunk, func(d string) error {
				domains = append(domains, d)
				return nil
			})
			return err
		})
		if err != nil {
			return err
		}
		for _, d := range domains {
			if err := scanPrefix(db, d+"/", f, b, take); err != nil {
				return err
			}
		}
		if len(domains) < chunk {
			return nil
		}
	}
}
