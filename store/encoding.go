package store

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/errpd/errpd/scheduler"
)

// Values are written in the protobuf wire format, one hand-written
// encoder and decoder per type below (docs/store_encoding.md says why and
// what it saves). What a value's key says (a step's id, cycle, domain,
// expiry and notice; a domain's name; a cycle's key, domain and expiry) is
// not repeated in it. A value that starts with '{' is JSON, as schema 1
// wrote every value: no wire-format value starts so, as field 15 is never
// written as a group.

// getJSON decodes the value at key into v, a *Domain, *Cycle, *Step,
// *Record or *Message (other types are JSON); it reports false if absent.
// Decoding copies, so nothing refers to bbolt's memory afterwards. The
// name is schema 1's, kept so that callers did not change.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, decodeValue(key, raw, v)
}

// putJSON encodes v (as getJSON reads it) and writes it at key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := encodeValue(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", mustID(key), err)
	}
	return b.Put(key, raw)
}

// ValueError is a stored value that does not decode: the bucket and the
// key name it.
type ValueError struct {
	Bucket string
	Key    string
	Err    error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("bucket %s, key %s: value does not decode: %v", e.Bucket, e.Key, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

func decodeValue(key, raw []byte, v any) error {
	var err error
	bucket := "?"
	switch p := v.(type) {
	case *Domain:
		bucket, err = "domains", decodeOr(raw, p, func() error { return p.unmarshal(key, raw) })
	case *Cycle:
		bucket, err = "cycles", decodeOr(raw, p, func() error { return p.unmarshal(key, raw) })
	case *Step:
		bucket, err = "steps", decodeOr(raw, p, func() error { return p.unmarshal(key, raw) })
	case *Message:
		bucket, err = "messages", decodeOr(raw, p, func() error { return p.unmarshal(raw) })
	default:
		err = json.Unmarshal(raw, v)
	}
	if err != nil {
		k := mustID(key)
		if bucket == "domains" {
			k = fmt.Sprintf("%q", key)
		}
		return &ValueError{Bucket: bucket, Key: k, Err: err}
	}
	return nil
}

// decodeOr decodes schema 1's JSON, or the wire format with wire.
func decodeOr[T any](raw []byte, v *T, wire func() error) error {
	if len(raw) > 0 && raw[0] == '{' {
		var zero T
		*v = zero // json.Unmarshal keeps what the JSON does not name; v may be reused
		return json.Unmarshal(raw, v)
	}
	return wire()
}

func encodeValue(v any) ([]byte, error) {
	switch p := v.(type) {
	case Domain:
		return p.marshal(), nil
	case *Domain:
		return p.marshal(), nil
	case Cycle:
		return p.marshal(), nil
	case *Cycle:
		return p.marshal(), nil
	case Step:
		return p.marshal()
	case *Step:
		return p.marshal()
	case Message:
		return p.marshal()
	case *Message:
		return p.marshal()
	}
	return json.Marshal(v)
}

// Enumerations are written as small numbers when known and as their text
// (the same field, as bytes) when not, so that no value is refused.
var (
	modeCodes     = []string{"", string(scheduler.ModeRenew), string(scheduler.ModeExpire)}
	stateCodes    = []string{"", "planned", "due", "sending", "sent", "uploading", "proved", "skipped", "missed", "failed", "in_doubt"}
	coverageCodes = []string{"", string(CoveredYes), string(CoveredNo), string(CoveredUnknown)}
	bounceCodes   = []string{"", string(BounceHard), string(BounceSoft), string(BounceDelayed)}
)

func (e *enc) enum(n protowire.Number, codes []string, s string) {
	if s == "" {
		return
	}
	for i, c := range codes {
		if c == s {
			e.uint(n, uint64(i))
			return
		}
	}
	e.str(n, s)
}

func (f field) enum(codes []string) (string, error) {
	if f.typ == protowire.BytesType {
		return string(f.v), nil
	}
	u, err := f.uint()
	if err != nil {
		return "", err
	}
	if u == 0 || u >= uint64(len(codes)) {
		return "", fmt.Errorf("field %d: unknown code %d", f.num, u)
	}
	return codes[u], nil
}

// Domain: the name is the key; the cycle only when it is not
// CycleKey(name, expiry).
const (
	dMode, dExpiry, dRegistrant, dBrand, dOrderID, dHandle, dCycle, dStopped, dLeft, dFlag, dUpdated = 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12
)

func (d *Domain) marshal() []byte {
	var e enc
	e.enum(dMode, modeCodes, string(d.Mode))
	e.time(dExpiry, d.Expiry)
	e.msg(dRegistrant, d.Registrant.marshal)
	e.str(dBrand, d.Brand)
	e.str(dOrderID, d.OrderID)
	e.str(dHandle, d.Handle)
	if d.Cycle != CycleKey(d.Name, d.Expiry) {
		e.strAlways(dCycle, d.Cycle)
	}
	e.str(dStopped, d.Stopped)
	if d.Left != nil {
		e.msg(dLeft, func(e *enc) { e.time(1, d.Left.At); e.str(3, d.Left.Reason); e.bool(4, true) })
	}
	if f := d.Flag; f != nil {
		e.msg(dFlag, func(e *enc) {
			e.str(1, f.Reason)
			e.str(2, f.Email)
			e.str(3, f.Step)
			e.time(4, f.At)
			e.bool(6, true)
		})
	}
	e.time(dUpdated, d.Updated)
	return e.b
}

func (d *Domain) unmarshal(key, raw []byte) error {
	*d = Domain{Name: string(key)}
	cycleSet := false
	err := walk(raw, func(f field) (err error) {
		switch f.num {
		case dMode:
			var s string
			s, err = f.enum(modeCodes)
			d.Mode = scheduler.Mode(s)
		case dExpiry:
			err = f.seconds(&d.Expiry)
		case dExpiry + 1:
			err = f.nanos(&d.Expiry)
		case dRegistrant:
			err = d.Registrant.unmarshal(f)
		case dBrand:
			d.Brand, err = f.str()
		case dOrderID:
			d.OrderID, err = f.str()
		case dHandle:
			d.Handle, err = f.str()
		case dCycle:
			d.Cycle, err = f.str()
			cycleSet = true
		case dStopped:
			d.Stopped, err = f.str()
		case dLeft:
			d.Left = &Departure{}
			err = sub(f, func(g field) (err error) {
				switch g.num {
				case 1:
					err = g.seconds(&d.Left.At)
				case 2:
					err = g.nanos(&d.Left.At)
				case 3:
					d.Left.Reason, err = g.str()
				}
				return err
			})
		case dFlag:
			d.Flag = &ContactFlag{}
			err = sub(f, func(g field) (err error) {
				switch g.num {
				case 1:
					d.Flag.Reason, err = g.str()
				case 2:
					d.Flag.Email, err = g.str()
				case 3:
					d.Flag.Step, err = g.str()
				case 4:
					err = g.seconds(&d.Flag.At)
				case 5:
					err = g.nanos(&d.Flag.At)
				}
				return err
			})
		case dUpdated:
			err = f.seconds(&d.Updated)
		case dUpdated + 1:
			err = f.nanos(&d.Updated)
		}
		return err
	})
	if !cycleSet {
		d.Cycle = CycleKey(d.Name, d.Expiry)
	}
	return err
}

// sub walks a nested value.
func sub(f field, fn func(field) error) error {
	b, err := f.msg()
	if err != nil {
		return err
	}
	return walk(b, fn)
}

func (r *Registrant) marshal(e *enc) {
	e.str(1, r.Name)
	e.str(2, r.Email)
	e.str(3, r.Language)
}

func (r *Registrant) unmarshal(f field) error {
	return sub(f, func(g field) (err error) {
		switch g.num {
		case 1:
			r.Name, err = g.str()
		case 2:
			r.Email, err = g.str()
		case 3:
			r.Language, err = g.str()
		}
		return err
	})
}

// Cycle: key, domain and expiry are the key.
const (
	cMode, cOrderID, cRegistrant, cBrand, cInScope, cPlanned, cClosed, cReason, cFrozen, cNotRenewed = 1, 2, 3, 4, 5, 6, 8, 10, 11, 13
)

func (c *Cycle) marshal() []byte {
	var e enc
	e.enum(cMode, modeCodes, string(c.Mode))
	e.str(cOrderID, c.OrderID)
	e.msg(cRegistrant, c.Registrant.marshal)
	e.str(cBrand, c.Brand)
	e.bool(cInScope, c.InScope)
	e.time(cPlanned, c.Planned)
	e.time(cClosed, c.Closed)
	e.str(cReason, c.Reason)
	e.time(cFrozen, c.Frozen)
	if ev := c.NotRenewed; ev != nil {
		e.msg(cNotRenewed, func(e *enc) { e.str(1, ev.Event); e.time(2, ev.At); e.bool(4, true) })
	}
	return e.b
}

func (c *Cycle) unmarshal(key, raw []byte) error {
	p, ok := splitKey(key)
	if !ok || p.notice != "" {
		return fmt.Errorf("key %x is not a cycle key", key)
	}
	*c = Cycle{Key: p.id, Domain: p.domain, Expiry: p.expiry}
	return walk(raw, func(f field) (err error) {
		switch f.num {
		case cMode:
			var s string
			s, err = f.enum(modeCodes)
			c.Mode = scheduler.Mode(s)
		case cOrderID:
			c.OrderID, err = f.str()
		case cRegistrant:
			err = c.Registrant.unmarshal(f)
		case cBrand:
			c.Brand, err = f.str()
		case cInScope:
			c.InScope, err = f.bool()
		case cPlanned:
			err = f.seconds(&c.Planned)
		case cPlanned + 1:
			err = f.nanos(&c.Planned)
		case cClosed:
			err = f.seconds(&c.Closed)
		case cClosed + 1:
			err = f.nanos(&c.Closed)
		case cReason:
			c.Reason, err = f.str()
		case cFrozen:
			err = f.seconds(&c.Frozen)
		case cFrozen + 1:
			err = f.nanos(&c.Frozen)
		case cNotRenewed:
			c.NotRenewed = &Evidence{}
			err = sub(f, func(g field) (err error) {
				switch g.num {
				case 1:
					c.NotRenewed.Event, err = g.str()
				case 2:
					err = g.seconds(&c.NotRenewed.At)
				case 3:
					err = g.nanos(&c.NotRenewed.At)
				}
				return err
			})
		}
		return err
	})
}

// parseCycleKey splits a cycle key into its domain and expiry.
func parseCycleKey(key string) (string, time.Time, error) {
	domain, stampText, ok := strings.Cut(key, "/")
	if !ok {
		return "", time.Time{}, fmt.Errorf("cycle key %q is not domain/expiry", key)
	}
	expiry, err := parseStamp(stampText)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("cycle key %q: expiry: %w", key, err)
	}
	return domain, expiry, nil
}

// Step: id, cycle, domain, expiry and notice are the key.
const (
	sState, sOpens, sDeadline, sSendAt, sReason, sUpdated = 1, 2, 4, 6, 8, 9
	sMessageID, sSHA256, sFrom, sRecipient, sEnvelopeFrom = 11, 12, 13, 14, 16
	sAttempts, sSentAt, sSMTPReply, sMayHaveGone          = 17, 18, 20, 21
	sPrepareFailures, sLanguage, sLanguageFallback        = 22, 23, 24
	sOrderID, sUploadAttempts, sNextUpload, sUploadedAt   = 25, 26, 27, 29
	sAscioResult, sCovered, sBounce                       = 31, 32, 33
)

func (s *Step) marshal() ([]byte, error) {
	var e enc
	// The key stands for these; only a step that disagrees with its own id
	// (none that errpd plans) writes them, so that nothing is lost.
	domain, expiry, notice, err := ParseStepID(s.ID)
	if err != nil {
		return nil, err
	}
	if s.Domain != domain {
		e.strAlways(sDomain, s.Domain)
	}
	if !s.Expiry.Equal(expiry) {
		e.bool(sExpiryZero, s.Expiry.IsZero())
		e.time(sExpiry, s.Expiry)
	}
	if s.Notice != notice {
		e.strAlways(sNotice, string(s.Notice))
	}
	if s.Cycle != CycleKey(domain, expiry) {
		e.strAlways(sCycle, s.Cycle)
	}
	e.enum(sState, stateCodes, string(s.State))
	e.time(sOpens, s.Opens)
	e.time(sDeadline, s.Deadline)
	e.time(sSendAt, s.SendAt)
	e.str(sReason, s.Reason)
	e.time(sUpdated, s.Updated)
	e.str(sMessageID, s.MessageID)
	e.str(sSHA256, s.SHA256)
	e.str(sFrom, s.From)
	e.str(sRecipient, s.Recipient)
	e.str(sEnvelopeFrom, s.EnvelopeFrom)
	e.int(sAttempts, s.Attempts)
	e.time(sSentAt, s.SentAt)
	e.str(sSMTPReply, s.SMTPReply)
	e.bool(sMayHaveGone, s.MayHaveGone)
	e.int(sPrepareFailures, s.PrepareFailures)
	e.str(sLanguage, s.Language)
	e.str(sLanguageFallback, s.LanguageFallback)
	e.str(sOrderID, s.OrderID)
	e.int(sUploadAttempts, s.UploadAttempts)
	e.time(sNextUpload, s.NextUpload)
	e.time(sUploadedAt, s.UploadedAt)
	e.str(sAscioResult, s.AscioResult)
	e.enum(sCovered, coverageCodes, string(s.CoveredByAscio))
	if b := s.Bounce; b != nil {
		e.msg(sBounce, func(e *enc) {
			e.enum(1, bounceCodes, string(b.Kind))
			e.str(2, b.Status)
			e.str(3, b.Diagnostic)
			e.time(4, b.At)
			e.bool(6, true)
		})
	}
	return e.b, nil
}

func (s *Step) unmarshal(key, raw []byte) error {
	p, ok := splitKey(key)
	if !ok || p.notice == "" {
		return fmt.Errorf("key %x is not a step key", key)
	}
	*s = Step{ID: p.id, Cycle: p.cycle, Domain: p.domain, Expiry: p.expiry, Notice: p.notice}
	return walk(raw, s.field)
}

func (s *Step) field(f field) (err error) {
	switch f.num {
	case sState:
		var v string
		v, err = f.enum(stateCodes)
		s.State = scheduler.State(v)
	case sOpens:
		err = f.seconds(&s.Opens)
	case sOpens + 1:
		err = f.nanos(&s.Opens)
	case sDeadline:
		err = f.seconds(&s.Deadline)
	case sDeadline + 1:
		err = f.nanos(&s.Deadline)
	case sSendAt:
		err = f.seconds(&s.SendAt)
	case sSendAt + 1:
		err = f.nanos(&s.SendAt)
	case sReason:
		s.Reason, err = f.str()
	case sUpdated:
		err = f.seconds(&s.Updated)
	case sUpdated + 1:
		err = f.nanos(&s.Updated)
	case sMessageID:
		s.MessageID, err = f.str()
	case sSHA256:
		s.SHA256, err = f.str()
	case sFrom:
		s.From, err = f.str()
	case sRecipient:
		s.Recipient, err = f.str()
	case sEnvelopeFrom:
		s.EnvelopeFrom, err = f.str()
	case sAttempts:
		s.Attempts, err = f.int()
	case sSentAt:
		err = f.seconds(&s.SentAt)
	case sSentAt + 1:
		err = f.nanos(&s.SentAt)
	case sSMTPReply:
		s.SMTPReply, err = f.str()
	case sMayHaveGone:
		s.MayHaveGone, err = f.bool()
	case sPrepareFailures:
		s.PrepareFailures, err = f.int()
	case sLanguage:
		s.Language, err = f.str()
	case sLanguageFallback:
		s.LanguageFallback, err = f.str()
	case sOrderID:
		s.OrderID, err = f.str()
	case sUploadAttempts:
		s.UploadAttempts, err = f.int()
	case sNextUpload:
		err = f.seconds(&s.NextUpload)
	case sNextUpload + 1:
		err = f.nanos(&s.NextUpload)
	case sUploadedAt:
		err = f.seconds(&s.UploadedAt)
	case sUploadedAt + 1:
		err = f.nanos(&s.UploadedAt)
	case sAscioResult:
		s.AscioResult, err = f.str()
	case sCovered:
		var v string
		v, err = f.enum(coverageCodes)
		s.CoveredByAscio = Coverage(v)
	case sDomain:
		s.Domain, err = f.str()
	case sExpiry:
		err = f.seconds(&s.Expiry)
	case sExpiry + 1:
		err = f.nanos(&s.Expiry)
	case sExpiryZero:
		s.Expiry = time.Time{}
	case sNotice:
		var v string
		v, err = f.str()
		s.Notice = scheduler.Notice(v)
	case sCycle:
		s.Cycle, err = f.str()
	case sBounce:
		b := &Bounce{}
		s.Bounce = b
		err = sub(f, func(g field) (err error) {
			switch g.num {
			case 1:
				var v string
				v, err = g.enum(bounceCodes)
				b.Kind = BounceKind(v)
			case 2:
				b.Status, err = g.str()
			case 3:
				b.Diagnostic, err = g.str()
			case 4:
				err = g.seconds(&b.At)
			case 5:
				err = g.nanos(&b.At)
			}
			return err
		})
	}
	return err
}

// Message: the SHA-256 as its 32 bytes, the gzip bytes as they are
// (JSON wrote them in base64, a third more).
func (m *Message) marshal() ([]byte, error) {
	sum, err := hex.DecodeString(m.SHA256)
	if err != nil || len(sum) != 32 || hex.EncodeToString(sum) != m.SHA256 {
		return nil, fmt.Errorf("message sha256 %q is not 64 lower-case hex digits", m.SHA256)
	}
	var e enc
	e.bytes(1, sum)
	e.int(2, m.Size)
	e.bytes(3, m.Gzip)
	return e.b, nil
}

func (m *Message) unmarshal(raw []byte) error {
	*m = Message{}
	return walk(raw, func(f field) (err error) {
		switch f.num {
		case 1:
			var b []byte
			if b, err = f.msg(); err == nil {
				m.SHA256 = hex.EncodeToString(b)
			}
		case 2:
			m.Size, err = f.int()
		case 3:
			var b []byte
			if b, err = f.msg(); err == nil {
				m.Gzip = append([]byte(nil), b...)
			}
		}
		return err
	})
}

// Fields of a step that disagrees with its own id (Step.marshal).
const sDomain, sExpiry, sExpiryZero, sNotice, sCycle = 40, 41, 43, 44, 45

// EncodeValue is the value Tx writes for a Domain, Cycle, Step or Message,
// for benchmarks that seed a file straight into its buckets (with Key);
// errpd itself goes through Tx.
func EncodeValue(v any) ([]byte, error) { return encodeValue(v) }
