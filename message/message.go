// Package message builds a notice into the exact bytes of an RFC 5322
// message with go-mail, once. Those bytes are what errpd stores, sends and
// later uploads as proof, so nothing downstream may render the notice again.
package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/net/idna"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/templates"
)

// Registrant is who a notice goes to: the cycle's snapshot of the
// Registrant at Expiration.
type Registrant struct {
	Name     string
	Email    string
	Language string
}

// Input is one notice to build.
type Input struct {
	StepID     string // the step's key; the Message-ID derives from it
	Domain     string // A-label
	Expiry     time.Time
	Mode       string // renew | expire
	Notice     string // reminder1 | reminder2 | reminder3 | suspension
	Registrant Registrant
	Brand      string // the calendar's brand; "" for the [mail] sender
}

// Message is a built notice.
type Message struct {
	Raw          []byte // the exact bytes, CRLF line ends
	MessageID    string // with its angle brackets
	From         string // header From address
	To           string // the registrant's address
	EnvelopeFrom string // MAIL FROM
	Subject      string // as rendered, before RFC 2047 encoding
	Date         time.Time
	Source       string // which templates were used
	Language     string // the notice's language, as in its Content-Language header
	// LanguageFallback is the registrant's language when the notice could
	// not be written in it (no template) and went out in Language instead.
	LanguageFallback string
}

// Builder builds notices. It is read-only once made, so one Builder may
// serve any number of goroutines.
type Builder struct {
	set   *templates.Set
	cfg   config.Config
	zone  *time.Location
	now   func() time.Time
	life  config.Lifecycle // the policy's, read once: it loads its zone each time
	dkims map[string]*DKIM // by brand key ("" for [mail])
	// brands are the configured brands resolved, by key ("" for [mail]),
	// for Check.
	brands map[string]config.ResolvedBrand
}

// New makes a Builder for a configuration: it loads each brand's DKIM key
// and test-builds every notice for every brand, so that a brand without a
// renewal URL, or with a From that cannot be written as a header, stops
// errpd at start-up rather than at its first notice. now nil is time.Now.
func New(c config.Config, set *templates.Set, now func() time.Time) (*Builder, error) {
	if now == nil {
		now = time.Now
	}
	zone, err := time.LoadLocation(c.Mail.Zone)
	if err != nil {
		return nil, fmt.Errorf("mail.zone %q: %w", c.Mail.Zone, err)
	}
	b := &Builder{set: set, cfg: c, zone: zone, now: now, life: c.Policy.Lifecycle(), dkims: map[string]*DKIM{}, brands: map[string]config.ResolvedBrand{}}
	brands := []string{""}
	for name := range c.Brands {
		brands = append(brands, name)
	}
	slices.Sort(brands)
	var errs []error
	for _, name := range brands {
		r := c.ResolveBrand(name)
		b.brands[name] = r
		if r.DKIMKey == "" {
			continue
		}
		from, err := mail.ParseAddress(r.From)
		if err != nil {
			errs = append(errs, fmt.Errorf("brand %q: from %q: %w", name, r.From, err))
			continue
		}
		k, err := LoadDKIM(domainOf(from.Address), r.DKIMSelector, r.DKIMKey)
		if err != nil {
			errs = append(errs, fmt.Errorf("brand %q: %w", name, err))
			continue
		}
		b.dkims[name] = k
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, name := range brands {
		for _, kind := range templates.Kinds {
			mode, notice, _ := strings.Cut(kind, "-")
			in := Input{
				StepID: "check", Domain: "xn--bcher-kva.example", Expiry: now().Add(30 * 24 * time.Hour),
				Mode: mode, Notice: notice, Brand: name,
				Registrant: Registrant{Name: "Sample Registrant", Email: "registrant@example.com"},
			}
			if _, err := b.Build(in); err != nil {
				return nil, fmt.Errorf("brand %q, %s: %w", name, kind, err)
			}
		}
	}
	return b, nil
}

// MessageID derives a notice's Message-ID (without angle brackets) from
// its step id and the From domain: a resend of the same step carries the
// same id, so a duplicate is recognisable at the recipient and in proof.
func MessageID(stepID, fromDomain string) string {
	sum := sha256.Sum256([]byte(stepID))
	return hex.EncodeToString(sum[:])[:32] + "@" + fromDomain
}

// boundary derives the MIME boundary from the step id too, so that a
// notice's bytes depend only on its inputs and the clock (go-mail would
// pick a random one).
func boundary(stepID string) string {
	sum := sha256.Sum256([]byte("boundary\x00" + stepID))
	return "errpd-" + hex.EncodeToString(sum[:12])
}

// Build renders and builds one notice.
func (b *Builder) Build(in Input) (Message, error) {
	r := b.cfg.ResolveBrand(in.Brand)
	from, err := mail.ParseAddress(r.From)
	if err != nil {
		return Message{}, fmt.Errorf("from %q: %w", r.From, err)
	}
	fromDomain, err := idna.Lookup.ToASCII(domainOf(from.Address))
	if err != nil {
		return Message{}, fmt.Errorf("from %q: %w", r.From, err)
	}
	now := b.now()
	d, err := b.data(in, r, now)
	if err != nil {
		return Message{}, err
	}
	out, err := b.set.Render(r.Key, in.Registrant.Language, r.Language, d)
	if err != nil {
		return Message{}, err
	}

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent(), gomail.WithBoundary(boundary(in.StepID)))
	if err := m.FromFormat(from.Name, from.Address); err != nil {
		return Message{}, fmt.Errorf("from %q: %w", r.From, err)
	}
	if err := m.AddToFormat(in.Registrant.Name, in.Registrant.Email); err != nil {
		return Message{}, fmt.Errorf("registrant e-mail %q: %w", in.Registrant.Email, err)
	}
	if r.ReplyTo != "" {
		if err := m.ReplyTo(r.ReplyTo); err != nil {
			return Message{}, fmt.Errorf("reply-to %q: %w", r.ReplyTo, err)
		}
	}
	id := MessageID(in.StepID, fromDomain)
	m.SetMessageIDWithValue(id)
	date := now.In(b.zone).Truncate(time.Second)
	m.SetDateWithValue(date)
	m.Subject(out.Subject) // go-mail encodes non-ASCII per RFC 2047
	// RFC 3282: the language the notice is written in, which may differ
	// from the registrant's when no template exists in theirs.
	m.SetGenHeader(gomail.HeaderContentLang, out.Language)
	m.SetBodyString(gomail.TypeTextPlain, out.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, out.HTML)
	if k := b.dkims[r.Key]; k != nil {
		m.SetDKIM(k.signer(func() time.Time { return date }))
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return Message{}, fmt.Errorf("building the message: %w", err)
	}
	return Message{
		Raw: buf.Bytes(), MessageID: "<" + id + ">", From: from.Address, To: in.Registrant.Email,
		EnvelopeFrom: r.EnvelopeFrom, Subject: out.Subject, Date: date, Source: out.Source,
		Language: out.Language, LanguageFallback: out.Fallback,
	}, nil
}

// Check refuses what Build refuses for in, for a fraction of the cost: it
// runs the same checks on the input's values (data), renders the same
// templates with them (templates.Set.Check) and has go-mail take the
// To address as Build does, but builds no message. What it leaves out
// cannot fail on an input's values: the From and Reply-To are the
// brand's, which New built every notice with; writing a message go-mail
// has accepted into memory fails only on a broken writer or DKIM key.
// import uses it to refuse, at import, a row that could never be sent.
func (b *Builder) Check(in Input) error {
	r, ok := b.brands[in.Brand]
	if !ok {
		r = b.brands[""] // as config.ResolveBrand resolves an unknown brand
	}
	d, err := b.data(in, r, b.now())
	if err != nil {
		return err
	}
	if err := b.set.Check(r.Key, in.Registrant.Language, r.Language, d); err != nil {
		return err
	}
	if err := new(gomail.Msg).AddToFormat(in.Registrant.Name, in.Registrant.Email); err != nil {
		return fmt.Errorf("registrant e-mail %q: %w", in.Registrant.Email, err)
	}
	return nil
}

// data checks what a notice's headers take from its input and fills in
// the template variables. Build and Check share it, so that Check refuses
// exactly the inputs Build refuses.
func (b *Builder) data(in Input, r config.ResolvedBrand, now time.Time) (templates.Data, error) {
	if in.Registrant.Email == "" {
		return templates.Data{}, errors.New("the registrant has no e-mail address")
	}
	// go-mail checks addresses; names and the subject are checked here,
	// because a CR or LF in any of them would start a header of its own.
	for _, v := range [...]struct{ what, v string }{
		{"registrant name", in.Registrant.Name}, {"registrant e-mail", in.Registrant.Email},
		{"brand name", r.Name}, {"from", r.From}, {"reply-to", r.ReplyTo}, {"step id", in.StepID},
	} {
		if strings.ContainsAny(v.v, "\r\n") {
			return templates.Data{}, fmt.Errorf("%s %q contains CR or LF", v.what, v.v)
		}
	}
	uni, err := idna.Display.ToUnicode(in.Domain)
	if err != nil {
		uni = in.Domain
	}
	left := in.Expiry.Sub(now)
	life := b.life
	d := templates.Data{
		Domain: in.Domain, DomainUnicode: uni,
		Expiry:     in.Expiry.In(b.zone),
		ExpiryDate: b.date(in.Expiry),
		Zone:       b.zone.String(),
		// ERRP 2.2: when DNS stops and until when the domain stays
		// renewable; ERRP 3.1: the Redemption Grace Period runs from the
		// deletion, which follows the last day of renewal.
		SuspensionDate: b.date(in.Expiry.Add(time.Duration(life.SuspensionDays) * 24 * time.Hour)),
		RenewBy:        b.date(in.Expiry.Add(time.Duration(life.DeletionDays) * 24 * time.Hour)),
		RedemptionEnd:  b.date(in.Expiry.Add(time.Duration(life.DeletionDays+life.RedemptionDays) * 24 * time.Hour)),
		DaysLeft:       int(left / (24 * time.Hour)),
		// Greet by name when the snapshot has one; ERRP wants the notice
		// to reach the holder, not to depend on the name being known.
		RegistrantName: first(in.Registrant.Name, "domain holder"),
		Brand:          r.Name, RenewalURL: r.RenewalURL, FeesURL: r.FeesURL, Support: r.Support,
		Mode: in.Mode, Notice: in.Notice,
	}
	if left < 0 {
		d.DaysExpired = int(-left / (24 * time.Hour))
	}
	return d, nil
}

// date writes an instant as the notices do: in mail.zone, to the minute,
// with the zone named.
func (b *Builder) date(t time.Time) string {
	return t.In(b.zone).Format("2006-01-02 15:04") + " " + b.zone.String()
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
