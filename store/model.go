package store

import (
	"fmt"
	"strings"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// Registrant is the Registrant at Expiration as errpd knows them: the
// snapshot a cycle's notices are addressed to.
type Registrant struct {
	Name     string `json:"name"`
	Email    string `json:"email"`
	Language string `json:"language,omitempty"`
}

// Domain is one domain of the calendar, as last told by an import or Ascio.
type Domain struct {
	Name       string         `json:"name"` // lower-case A-label
	Mode       scheduler.Mode `json:"mode"`
	Expiry     time.Time      `json:"expiry"` // UTC, whole seconds
	Registrant Registrant     `json:"registrant"`
	Brand      string         `json:"brand,omitempty"`
	OrderID    string         `json:"order_id,omitempty"` // Ascio's Autorenew/Autodelete order
	Handle     string         `json:"handle,omitempty"`   // Ascio's domain handle, for GetDomain; from Ascio's messages
	Cycle      string         `json:"cycle,omitempty"`    // key of the current cycle
	Stopped    string         `json:"stopped,omitempty"`  // why no cycle runs (deleted, transferred away)
	Left       *Departure     `json:"left,omitempty"`     // when and why it left the calendar; nil while in it
	Flag       *ContactFlag   `json:"flag,omitempty"`     // a notice to the registrant hard-bounced
	Updated    time.Time      `json:"updated"`
}

// Departure is when and why a domain left the calendar: Ascio said it was
// deleted or transferred away (later also a calendar status or a full sync
// that no longer lists it). Retention keeps its messages for two years after.
type Departure struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Cycle is one expiry of one domain and the notices it owes.
type Cycle struct {
	Key        string         `json:"key"`
	Domain     string         `json:"domain"`
	Expiry     time.Time      `json:"expiry"`
	Mode       scheduler.Mode `json:"mode"`
	OrderID    string         `json:"order_id,omitempty"`
	Registrant Registrant     `json:"registrant"`
	Brand      string         `json:"brand,omitempty"`
	InScope    bool           `json:"in_scope"`
	Planned    time.Time      `json:"planned"`
	Closed     time.Time      `json:"closed,omitzero"`
	Reason     string         `json:"reason,omitempty"` // why it closed
	// Frozen is when the Registrant at Expiration was frozen: once the
	// expiry instant has passed, later facts update the domain (for the
	// next cycle), never this cycle's recipient.
	Frozen time.Time `json:"frozen,omitzero"`
	// NotRenewed is the evidence that a renew-mode domain did not renew;
	// with it the cycle owes the post-expiry notices (expire-mode windows).
	NotRenewed *Evidence `json:"not_renewed,omitempty"`
}

// Evidence is what told errpd that a domain did not renew, and when.
type Evidence struct {
	Event string    `json:"event"` // e.g. "AutoRenew order TEST1 Failed", "calendar status expired (cal.csv:4)"
	At    time.Time `json:"at"`
}

// Step is one notice of one cycle and everything that happened to it.
type Step struct {
	ID       string           `json:"id"`
	Cycle    string           `json:"cycle"`
	Domain   string           `json:"domain"`
	Expiry   time.Time        `json:"expiry"`
	Notice   scheduler.Notice `json:"notice"`
	Opens    time.Time        `json:"opens"`
	Deadline time.Time        `json:"deadline"`
	SendAt   time.Time        `json:"send_at,omitzero"`
	State    scheduler.State  `json:"state"`
	Reason   string           `json:"reason,omitempty"` // why skipped, missed, failed or in doubt
	Updated  time.Time        `json:"updated"`

	// Filled in as the step is sent: who it went to, as what, and how the
	// relay answered. Attempts counts SMTP transactions begun.
	MessageID    string    `json:"message_id,omitempty"`
	SHA256       string    `json:"sha256,omitempty"` // of the raw message
	From         string    `json:"from,omitempty"`
	Recipient    string    `json:"recipient,omitempty"`
	EnvelopeFrom string    `json:"envelope_from,omitempty"`
	Attempts     int       `json:"attempts,omitempty"`
	SentAt       time.Time `json:"sent_at,omitzero"`
	SMTPReply    string    `json:"smtp_reply,omitempty"`
	// MayHaveGone: a send of the stored message ended in doubt, so it may
	// have been delivered. A resend repeats it exactly (bytes, Message-ID,
	// envelope), and the in_doubt = "resend" policy resends it only once.
	MayHaveGone bool `json:"may_have_gone,omitempty"`
	// PrepareFailures counts attempts that failed before any SMTP
	// transaction (corrupt stored message, render or write error); the
	// dispatcher fails the step after dispatch.max_prepare_attempts.
	PrepareFailures int `json:"prepare_failures,omitempty"`

	// Language is the language the notice was written in; LanguageFallback
	// the registrant's, when no template existed in it (the brand's
	// default language, or English, was used instead).
	Language         string `json:"language,omitempty"`
	LanguageFallback string `json:"language_fallback,omitempty"`

	// Filled in as the proof is uploaded to Ascio.
	OrderID        string    `json:"order_id,omitempty"`
	UploadAttempts int       `json:"upload_attempts,omitempty"`
	NextUpload     time.Time `json:"next_upload,omitzero"` // when a sent step's upload is next tried
	UploadedAt     time.Time `json:"uploaded_at,omitzero"`
	AscioResult    string    `json:"ascio_result,omitempty"` // result code, message and errors

	// CoveredByAscio: did Ascio send its own copy of a notice whose
	// deadline passed without errpd's proof (asked once, a day after the
	// deadline; empty until then or when errpd's proof was in time).
	CoveredByAscio Coverage `json:"covered_by_ascio,omitempty"`

	// Bounce: the notice came back (a DSN or a bounce to its VERP envelope
	// sender); nil if it did not. The state is unchanged by it.
	Bounce *Bounce `json:"bounce,omitempty"`
}

// stamp is the fixed-width, sortable UTC form used inside keys
// (never RFC 3339 with fractions, which does not sort).
const stamp = "20060102T150405Z"

// CycleKey names a domain's cycle for one expiry.
func CycleKey(domain string, expiry time.Time) string {
	b := make([]byte, 0, len(domain)+1+len(stamp))
	b = append(append(b, domain...), '/')
	return string(appendStamp(b, expiry))
}

// StepID names a step: the same (domain, expiry, notice) always gives the
// same id, so planning a cycle twice finds the steps it made the first time,
// and a Message-ID derived from it makes a duplicate mail recognisable.
func StepID(domain string, expiry time.Time, n scheduler.Notice) string {
	return CycleKey(domain, expiry) + "/" + string(n)
}

// ParseStepID splits a step id into its parts.
func ParseStepID(id string) (domain string, expiry time.Time, n scheduler.Notice, err error) {
	domain, rest, ok1 := strings.Cut(id, "/")
	stampText, notice, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || strings.Contains(notice, "/") {
		return "", time.Time{}, "", fmt.Errorf("step id %q is not domain/expiry/notice", id)
	}
	expiry, err = parseStamp(stampText)
	if err != nil {
		return "", time.Time{}, "", fmt.Errorf("step id %q: expiry: %w", id, err)
	}
	n, err = scheduler.ParseNotice(notice)
	return domain, expiry, n, err
}
