package store

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"
)

// BounceKind sorts a bounce: hard (a 5.x.x status: the address does not
// work), soft (4.x.x, or a bounce with no status: it may work later) or
// delayed (a DSN with Action: delayed, which only says the mail waits).
type BounceKind string

const (
	BounceHard    BounceKind = "hard"
	BounceSoft    BounceKind = "soft"
	BounceDelayed BounceKind = "delayed"
)

// Bounce is a bounce recorded on a sent step. It does not change the
// step's state: the notice was sent, and its proof stays uploaded (ERRP
// requires sending); the report shows that it bounced.
type Bounce struct {
	Kind       BounceKind `json:"kind"`
	Status     string     `json:"status,omitempty"`     // RFC 3463 enhanced status, e.g. 5.1.1
	Diagnostic string     `json:"diagnostic,omitempty"` // the remote MTA's text, capped
	At         time.Time  `json:"at"`
}

// ContactFlag marks a domain whose registrant e-mail hard-bounced: under
// the RAA's WHOIS accuracy rules, information that the contact may be
// wrong. It concerns the address that bounced (Email) and so holds only
// while the domain's registrant has that address.
type ContactFlag struct {
	Reason string    `json:"reason"`
	Email  string    `json:"email"`
	Step   string    `json:"step"`
	At     time.Time `json:"at"`
}

// ContactFailedReason is the flag's text.
const ContactFailedReason = "registrant e-mail failed: verify contact data"

// ContactFailed is the domain's flag while it still concerns the
// registrant's current address; nil otherwise.
func (d Domain) ContactFailed() *ContactFlag {
	if d.Flag == nil || !strings.EqualFold(d.Flag.Email, d.Registrant.Email) {
		return nil
	}
	return d.Flag
}

// bucketVERP maps a step's short id (ShortID) to its id, for the steps
// sent with an envelope sender: a bounce names the short id, as a whole
// step id does not fit in an address's local part.
var bucketVERP = []byte("verp")

var keyVERP = []byte("verp_key")

// ShortID is the step's fixed-size stand-in in a VERP address: 80 bits of
// SHA-256 of its id, unique among any number of steps errpd will hold.
func ShortID(stepID string) []byte {
	sum := sha256.Sum256([]byte("errpd-step\x00" + stepID))
	return sum[:10]
}

// indexVERP lets a bounce find a step by its short id once it has been
// sent with an envelope sender.
func (t *Tx) indexVERP(old, s *Step) error {
	if s.EnvelopeFrom == "" || (old != nil && old.EnvelopeFrom == s.EnvelopeFrom) {
		return nil
	}
	b := t.tx.Bucket(bucketVERP)
	if b == nil { // a store opened read-only before its first writable open
		return nil
	}
	return b.Put(ShortID(s.ID), idKey(s.ID))
}

// StepByShortID returns the sent step a short id stands for.
func (t *Tx) StepByShortID(short []byte) (Step, bool, error) {
	b := t.tx.Bucket(bucketVERP)
	if b == nil {
		return Step{}, false, nil
	}
	id := b.Get(short)
	if id == nil {
		return Step{}, false, nil
	}
	return t.Step(mustID(id))
}

// VERPKey is the key that signs the tokens of VERP envelope senders, made
// at first use in a writable transaction. It lives in the store, not the
// config: it must outlive every notice still out (restarts, config
// edits), and an operator has nothing to set up. In a read-only
// transaction before it exists, it returns nil.
func (t *Tx) VERPKey() ([]byte, error) {
	meta := t.tx.Bucket(bucketMeta)
	if k := meta.Get(keyVERP); k != nil {
		return append([]byte(nil), k...), nil
	}
	if !t.tx.Writable() {
		return nil, nil
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, meta.Put(keyVERP, k)
}

// RecordBounce records a bounce of a step and appends the audit record in
// the same transaction, the step's state unchanged. A delayed DSN leaves
// only the audit record. A hard bounce is kept over a soft one, and the
// first hard one over later ones; a hard bounce of the domain's current
// registrant address also flags the domain (ContactFlag).
func (t *Tx) RecordBounce(id string, b Bounce) (Step, error) {
	switch b.Kind {
	case BounceHard, BounceSoft, BounceDelayed:
	default:
		return Step{}, fmt.Errorf("step %s: bounce kind %q is not hard, soft or delayed", id, b.Kind)
	}
	b.At = b.At.UTC()
	s, ok, err := t.Step(id)
	if err != nil {
		return s, err
	}
	if !ok {
		return s, fmt.Errorf("step %s: no such step", id)
	}
	if b.Kind != BounceDelayed && (s.Bounce == nil || (s.Bounce.Kind != BounceHard && b.Kind == BounceHard) || b.Kind == s.Bounce.Kind && b.Kind == BounceSoft) {
		prev := s
		s.Bounce = &b
		if err := t.annotate(&prev, &s); err != nil {
			return s, err
		}
	}
	if b.Kind == BounceHard {
		if err := t.flagContact(s, b); err != nil {
			return s, err
		}
	}
	return s, t.appendAudit(Record{Step: s.ID, From: s.State, To: s.State, Detail: BounceDetail(b)})
}

func (t *Tx) flagContact(s Step, b Bounce) error {
	d, ok, err := t.Domain(s.Domain)
	if err != nil || !ok || !strings.EqualFold(d.Registrant.Email, s.Recipient) || d.ContactFailed() != nil {
		return err
	}
	d.Flag = &ContactFlag{Reason: ContactFailedReason, Email: s.Recipient, Step: s.ID, At: b.At}
	return t.putDomain(d)
}

// BounceDetail is the audit record's detail for a bounce.
func BounceDetail(b Bounce) string {
	d := "bounce: " + string(b.Kind)
	if b.Status != "" {
		d += " " + b.Status
	}
	if b.Diagnostic != "" {
		d += ": " + b.Diagnostic
	}
	return d
}
