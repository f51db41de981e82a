// Package notice renders ERRP notices: the partner's templates (per brand
// and language, falling back to the embedded defaults) filled in for one
// step, and built once into the exact bytes of an RFC 5322 message with
// go-mail. Every template is parsed and test-rendered at start-up, so a
// broken one stops errpd before it sends anything.
package notice

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/mail"
	"os"
	"path"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"

	gomail "github.com/wneessen/go-mail"
	"golang.org/x/net/idna"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/dispatcher"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

//go:embed default
var embedded embed.FS

// Data are the variables a template can use.
type Data struct {
	Domain         string // A-label
	DomainUnicode  string // U-label, for people
	ExpiryDate     string // the expiry written in the brand's zone
	Expiry         time.Time
	DaysLeft       int // whole days until expiry; negative after it
	RegistrantName string
	Brand          string
	RenewalURL     string
	FeesURL        string
	Support        string
	Notice         scheduler.Notice
	Mode           scheduler.Mode
	Subject        string // for the HTML layout
	Text           string // the rendered text body, for the HTML layout
}

// kinds are the template names a set must have: the mails Ascio lists as
// required, plus the suspension notice.
var kinds = []string{
	"renew-reminder1", "renew-reminder2",
	"expire-reminder1", "expire-reminder2", "expire-reminder3", "expire-suspension",
}

// one notice's templates.
type tmpl struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Set is every template errpd may use, keyed by brand/language/kind; the
// brand "" and language "" hold the embedded defaults.
type Set struct {
	t map[string]tmpl
}

func key(brand, lang, kind string) string { return brand + "/" + lang + "/" + kind }

// Load parses the embedded defaults and, when dir is not empty, the
// partner's overrides laid out as DIR/BRAND/LANG/KIND.{subject,txt,html}
// (BRAND "default" for domains without a brand). Each is test-rendered; an
// error names the file and line.
func Load(dir string) (*Set, error) {
	s := &Set{t: map[string]tmpl{}}
	def, _ := fs.Sub(embedded, "default")
	for _, k := range kinds {
		t, err := parse(def, "default", k, true)
		if err != nil {
			return nil, err
		}
		s.t[key("", "", k)] = t
	}
	if dir == "" {
		return s, nil
	}
	brands, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for _, b := range brands {
		if !b.IsDir() {
			continue
		}
		langs, err := os.ReadDir(filepath.Join(dir, b.Name()))
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		for _, l := range langs {
			if !l.IsDir() {
				continue
			}
			base := filepath.Join(dir, b.Name(), l.Name())
			fsys := os.DirFS(base)
			for _, k := range kinds {
				t, err := parse(fsys, base, k, false)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, err
				}
				brand := b.Name()
				if brand == "default" {
					brand = ""
				}
				s.t[key(brand, strings.ToLower(l.Name()), k)] = t
			}
		}
	}
	return s, nil
}

var sample = Data{
	Domain: "xn--bcher-kva.example", DomainUnicode: "bücher.example", ExpiryDate: "31 December 2026",
	Expiry: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC), DaysLeft: 30, RegistrantName: "Sample Registrant",
	Brand: "Sample", RenewalURL: "https://example.net/renew", FeesURL: "https://example.net/fees",
	Support: "support@example.net", Notice: scheduler.Reminder1, Mode: scheduler.ModeRenew,
}

// parse reads KIND.subject and KIND.txt (required) and KIND.html (optional:
// else the layout wraps the text) and test-renders them.
func parse(fsys fs.FS, where, kind string, required bool) (tmpl, error) {
	var t tmpl
	read := func(name string) (string, error) {
		b, err := fs.ReadFile(fsys, name)
		return string(b), err
	}
	subj, err := read(kind + ".subject")
	if err != nil {
		return t, err
	}
	text, err := read(kind + ".txt")
	if err != nil {
		return t, fmt.Errorf("templates: %s: %w", path.Join(where, kind+".txt"), err)
	}
	html, err := read(kind + ".html")
	if errors.Is(err, fs.ErrNotExist) {
		layout, _ := fs.ReadFile(embedded, "default/layout.html")
		html, err = string(layout), nil
	}
	if err != nil {
		return t, err
	}
	name := func(ext string) string { return path.Join(where, kind+ext) }
	if t.subject, err = texttemplate.New(name(".subject")).Option("missingkey=error").Parse(strings.TrimSpace(subj)); err != nil {
		return t, fmt.Errorf("templates: %w", err)
	}
	if t.text, err = texttemplate.New(name(".txt")).Option("missingkey=error").Parse(text); err != nil {
		return t, fmt.Errorf("templates: %w", err)
	}
	if t.html, err = htmltemplate.New(name(".html")).Option("missingkey=error").Parse(html); err != nil {
		return t, fmt.Errorf("templates: %w", err)
	}
	if _, _, _, err := t.render(sample); err != nil {
		return t, err
	}
	return t, nil
}

func (t tmpl) render(d Data) (subject, text, html string, err error) {
	var b bytes.Buffer
	if err = t.subject.Execute(&b, d); err != nil {
		return "", "", "", fmt.Errorf("templates: %w", err)
	}
	subject = b.String()
	if strings.ContainsAny(subject, "\r\n") {
		return "", "", "", fmt.Errorf("templates: %s: rendered subject contains CR or LF", t.subject.Name())
	}
	b.Reset()
	if err = t.text.Execute(&b, d); err != nil {
		return "", "", "", fmt.Errorf("templates: %w", err)
	}
	text = b.String()
	b.Reset()
	d.Subject, d.Text = subject, text
	if err = t.html.Execute(&b, d); err != nil {
		return "", "", "", fmt.Errorf("templates: %w", err)
	}
	return subject, text, b.String(), nil
}

// lookup finds the template for a brand and language, falling back to the
// brand's default language, then to the defaults.
func (s *Set) lookup(brand, lang, brandLang, kind string) tmpl {
	for _, k := range []string{
		key(brand, lang, kind), key(brand, brandLang, kind),
		key("", lang, kind), key("", brandLang, kind),
	} {
		if t, ok := s.t[k]; ok {
			return t
		}
	}
	return s.t[key("", "", kind)]
}

// Renderer renders steps into messages; it implements dispatcher.Renderer.
type Renderer struct {
	Set          *Set
	Mail         config.Mail
	Brands       map[string]config.Brand
	EnvelopeFrom string
	Now          func() time.Time
}

// MessageID derives a step's Message-ID from its id: a resend carries the
// same id, so a duplicate is recognisable.
func MessageID(stepID, domain string) string {
	sum := sha256.Sum256([]byte(stepID))
	return hex.EncodeToString(sum[:16]) + ".errpd@" + domain
}

// Render builds the step's message once.
func (r *Renderer) Render(s store.Step, c store.Cycle) (dispatcher.Message, error) {
	b := r.Brands[c.Brand]
	fromText := firstOf(b.From, r.Mail.From)
	from, err := mail.ParseAddress(fromText)
	if err != nil {
		return dispatcher.Message{}, fmt.Errorf("brand %q from %q: %w", c.Brand, fromText, err)
	}
	zone, err := time.LoadLocation(r.Mail.Zone)
	if err != nil {
		zone = time.UTC
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	uni, err := idna.Lookup.ToUnicode(s.Domain)
	if err != nil {
		uni = s.Domain
	}
	kind := string(c.Mode) + "-" + string(s.Notice)
	lang := strings.ToLower(c.Registrant.Language)
	brandLang := firstOf(b.Language, r.Mail.Language)
	d := Data{
		Domain: s.Domain, DomainUnicode: uni, Expiry: s.Expiry,
		ExpiryDate:     s.Expiry.In(zone).Format("2 January 2006 15:04 MST"),
		DaysLeft:       int(s.Expiry.Sub(now()).Hours() / 24),
		RegistrantName: firstOf(c.Registrant.Name, "domain holder"),
		Brand:          firstOf(b.Name, from.Name, "Your registrar"),
		RenewalURL:     firstOf(b.RenewalURL, "https://"+domainOf(from.Address)+"/renew"),
		FeesURL:        firstOf(b.FeesURL, "https://"+domainOf(from.Address)+"/fees"),
		Support:        firstOf(b.Support, from.Address),
		Notice:         s.Notice, Mode: c.Mode,
	}
	subject, text, html, err := r.Set.lookup(c.Brand, lang, brandLang, kind).render(d)
	if err != nil {
		return dispatcher.Message{}, err
	}
	m := gomail.NewMsg()
	if err := m.FromFormat(from.Name, from.Address); err != nil {
		return dispatcher.Message{}, err
	}
	if err := m.AddToFormat(c.Registrant.Name, c.Registrant.Email); err != nil {
		return dispatcher.Message{}, fmt.Errorf("registrant e-mail %q: %w", c.Registrant.Email, err)
	}
	if rt := firstOf(b.ReplyTo, r.Mail.ReplyTo); rt != "" {
		if err := m.ReplyTo(rt); err != nil {
			return dispatcher.Message{}, err
		}
	}
	id := MessageID(s.ID, domainOf(from.Address))
	m.SetMessageIDWithValue(id)
	m.SetDateWithValue(now())
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return dispatcher.Message{}, err
	}
	return dispatcher.Message{Raw: buf.Bytes(), MessageID: "<" + id + ">", From: from.Address,
		To: c.Registrant.Email, EnvelopeFrom: r.EnvelopeFrom}, nil
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }
