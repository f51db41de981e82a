// Package templates holds the text of errpd's notices: a built-in set
// embedded in the binary (English, German, French, Spanish, Danish) and the
// partner's overrides from a folder, per brand and language. Every template
// is parsed and test-rendered when the set is loaded, so a broken one stops
// errpd before it sends anything; Set.Lint then checks, on the parse tree,
// that each notice prints the facts ERRP requires (RequiredFacts).
//
// The override folder is laid out as DIR/BRAND/LANG/MODE-NOTICE.EXT, where
// BRAND is a brand's key in the configuration ("default" for domains with
// no brand), LANG a language code as the registrant snapshot carries it
// (e.g. "en", "de"), MODE "renew" or "expire", NOTICE "reminder1",
// "reminder2", "reminder3" or "suspension", and EXT "subject", "txt" or
// "html". See docs/templates.md.
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
)

//go:embed builtin
var builtin embed.FS

// DefaultBrand is the folder name of the overrides for domains without a
// brand; every brand falls back to it before the built-in set.
const DefaultBrand = "default"

// builtinLanguage is the language of the built-in set, the last resort.
const builtinLanguage = "en"

// Kinds are the notices a set has templates for, as MODE-NOTICE: the mails
// Ascio lists as required (renew notifications #1 and #2, expiry reminders
// #1 and #2, delete notification #3), plus the suspension notice at +8.
var Kinds = []string{
	"renew-reminder1", "renew-reminder2",
	"expire-reminder1", "expire-reminder2", "expire-reminder3", "expire-suspension",
}

// Data are the variables a template can use.
type Data struct {
	Domain         string    // A-label, e.g. xn--bcher-kva.example
	DomainUnicode  string    // U-label, for people, e.g. bücher.example
	Expiry         time.Time // the expiry instant, in Zone
	ExpiryDate     string    // Expiry written out with its zone, e.g. "2026-12-31 14:00 UTC"
	Zone           string    // the IANA zone dates are written in
	DaysLeft       int       // whole days until expiry; negative after it
	DaysExpired    int       // whole days since expiry; 0 before it
	RegistrantName string
	Brand          string // the brand's name as shown to registrants
	RenewalURL     string // where to renew or restore
	FeesURL        string // the published renewal, post-expiration renewal and restore fees
	Support        string // the support contact
	Mode           string // renew | expire
	Notice         string // reminder1 | reminder2 | reminder3 | suspension

	// The dates after expiry, written like ExpiryDate, from [policy].
	SuspensionDate string // DNS resolution is interrupted (the suspension, expiry + 8 days)
	RenewBy        string // the last moment the domain can be renewed (expiry + renewal_grace_days)
	RedemptionEnd  string // the end of the Redemption Grace Period (RenewBy + redemption_days)
}

// Kind is the notice's template name, MODE-NOTICE.
func (d Data) Kind() string { return d.Mode + "-" + d.Notice }

// check refuses data a notice cannot do without: ERRP wants the domain, its
// expiry, how to renew, the fees and a contact in every notice, and a
// template that prints an empty value would hide the omission.
func (d Data) check() error {
	var missing, broken []string
	// A slice, not a map: this runs for every row an import checks.
	for _, v := range [...]struct{ name, v string }{
		{"Domain", d.Domain}, {"DomainUnicode", d.DomainUnicode}, {"ExpiryDate", d.ExpiryDate},
		{"Brand", d.Brand}, {"RenewalURL", d.RenewalURL}, {"FeesURL", d.FeesURL}, {"Support", d.Support},
		{"RegistrantName", d.RegistrantName},
		{"SuspensionDate", d.SuspensionDate}, {"RenewBy", d.RenewBy}, {"RedemptionEnd", d.RedemptionEnd},
	} {
		if v.v == "" {
			missing = append(missing, v.name)
		}
		// Every variable is one line; one with a line break could end up
		// in a header (a subject) and start a header of its own.
		if strings.ContainsAny(v.v, "\r\n") {
			broken = append(broken, v.name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("templates: variables without a value: %s", strings.Join(missing, ", "))
	}
	if len(broken) > 0 {
		slices.Sort(broken)
		return fmt.Errorf("templates: variables containing CR or LF: %s", strings.Join(broken, ", "))
	}
	if !slices.Contains(Kinds, d.Kind()) {
		return fmt.Errorf("templates: no notice %q (mode %q, notice %q)", d.Kind(), d.Mode, d.Notice)
	}
	return nil
}

// Rendered is one notice filled in.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
	Source  string // where the templates came from, e.g. "builtin/en" or "DIR/acme/de"
	// Language is the language of the templates used (lower case); the
	// message says it in its Content-Language header.
	Language string
	// Fallback is the registrant's language when no template was found in
	// it and Language is another; empty when the notice is in the
	// registrant's language (or the registrant has none).
	Fallback string
}

// notice is one notice's three templates.
type notice struct {
	source  string
	lang    string
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
	// total: the text and HTML templates cannot fail on any Data (see
	// total), so Check need not execute them; fixedSubject: nor the
	// subject (see fixedSubject).
	total, fixedSubject bool
}

// Set is every template errpd may use. It is read-only once loaded, so one
// Set may serve any number of goroutines.
type Set struct {
	// by brand ("" for the built-in set), language and kind
	t map[key]*notice
}

type key struct{ brand, lang, kind string }

// Load parses the built-in set and, when dir is not empty, the partner's
// overrides in dir. Every template is test-rendered with sample data; an
// error names the file and line. Unknown files in a language folder are
// errors too, so that a misspelt override is not silently ignored.
func Load(dir string) (*Set, error) {
	s := &Set{t: map[key]*notice{}}
	sub, err := fs.Sub(builtin, "builtin")
	if err != nil {
		return nil, err
	}
	if err := s.loadTree(sub, "builtin", true); err != nil {
		return nil, err
	}
	if _, ok := s.t[key{"", builtinLanguage, Kinds[0]}]; !ok {
		return nil, errors.New("templates: the built-in set has no " + builtinLanguage)
	}
	if dir == "" {
		return s, nil
	}
	if err := s.loadTree(os.DirFS(dir), dir, false); err != nil {
		return nil, err
	}
	return s, nil
}

// loadTree reads BRAND/LANG/KIND.EXT below root (LANG/KIND.EXT for the
// built-in set, which has no brand level).
func (s *Set) loadTree(root fs.FS, where string, isBuiltin bool) error {
	top, err := fs.ReadDir(root, ".")
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	for _, b := range top {
		if !b.IsDir() {
			if isHidden(b.Name()) {
				continue
			}
			return fmt.Errorf("templates: %s: not a brand folder", path.Join(where, b.Name()))
		}
		if isBuiltin {
			if err := s.loadLang(root, where, "", b.Name()); err != nil {
				return err
			}
			continue
		}
		langs, err := fs.ReadDir(root, b.Name())
		if err != nil {
			return fmt.Errorf("templates: %w", err)
		}
		for _, l := range langs {
			if !l.IsDir() {
				if isHidden(l.Name()) {
					continue
				}
				return fmt.Errorf("templates: %s: not a language folder", path.Join(where, b.Name(), l.Name()))
			}
			if err := s.loadLang(root, where, b.Name(), path.Join(b.Name(), l.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func isHidden(name string) bool { return strings.HasPrefix(name, ".") }

// loadLang reads one language folder: for each kind, KIND.subject and
// KIND.txt together, and KIND.html with them.
func (s *Set) loadLang(root fs.FS, where, brand, dir string) error {
	entries, err := fs.ReadDir(root, dir)
	if err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		if isHidden(e.Name()) {
			continue
		}
		kind, ext, _ := strings.Cut(e.Name(), ".")
		if e.IsDir() || !slices.Contains(Kinds, kind) || !slices.Contains([]string{"subject", "txt", "html"}, ext) {
			return fmt.Errorf("templates: %s: unknown file; expected MODE-NOTICE.{subject,txt,html} with MODE-NOTICE one of %s",
				path.Join(where, dir, e.Name()), strings.Join(Kinds, ", "))
		}
		present[e.Name()] = true
	}
	lang := strings.ToLower(path.Base(dir))
	for _, kind := range Kinds {
		var missing []string
		for _, ext := range []string{"subject", "txt", "html"} {
			if !present[kind+"."+ext] {
				missing = append(missing, kind+"."+ext)
			}
		}
		if len(missing) == 3 {
			continue // not overridden here
		}
		if len(missing) > 0 {
			return fmt.Errorf("templates: %s: %s overridden without %s (a notice needs all three)",
				path.Join(where, dir), kind, strings.Join(missing, " and "))
		}
		n, err := parseNotice(root, where, dir, kind)
		if err != nil {
			return err
		}
		s.t[key{brand, lang, kind}] = n
	}
	return nil
}

func parseNotice(root fs.FS, where, dir, kind string) (*notice, error) {
	n := &notice{source: path.Join(where, dir), lang: strings.ToLower(path.Base(dir))}
	read := func(ext string) (name, text string, err error) {
		b, err := fs.ReadFile(root, path.Join(dir, kind+"."+ext))
		return path.Join(where, dir, kind+"."+ext), string(b), err
	}
	name, text, err := read("subject")
	if err == nil {
		n.subject, err = texttemplate.New(name).Option("missingkey=error").Parse(strings.TrimRight(text, "\r\n"))
	}
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if name, text, err = read("txt"); err == nil {
		n.text, err = texttemplate.New(name).Option("missingkey=error").Parse(text)
	}
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if name, text, err = read("html"); err == nil {
		n.html, err = htmltemplate.New(name).Option("missingkey=error").Parse(text)
	}
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	// Before the first execution, which adds html/template's escapers.
	n.total = total(n.text.Tree) && total(n.html.Tree)
	n.fixedSubject = fixedSubject(n.subject.Tree)
	mode, notice, _ := strings.Cut(kind, "-")
	for _, d := range Samples(mode, notice) {
		if _, err := n.render(d); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Samples are the data every template is test-rendered with at load: an
// ASCII and an internationalised domain, before and after expiry.
func Samples(mode, notice string) []Data {
	expiry := time.Date(2026, 12, 31, 14, 0, 0, 0, time.UTC)
	base := Data{
		Domain: "example.com", DomainUnicode: "example.com", Expiry: expiry,
		ExpiryDate: "2026-12-31 14:00 UTC", Zone: "UTC", DaysLeft: 30,
		RegistrantName: "Sample Registrant", Brand: "Sample Registrar",
		RenewalURL: "https://registrar.example/renew", FeesURL: "https://registrar.example/fees",
		Support: "support@registrar.example", Mode: mode, Notice: notice,
		SuspensionDate: "2027-01-08 14:00 UTC", RenewBy: "2027-01-30 14:00 UTC", RedemptionEnd: "2027-03-01 14:00 UTC",
	}
	idn := base
	idn.Domain, idn.DomainUnicode = "xn--bcher-kva.example", "bücher.example"
	idn.DaysLeft, idn.DaysExpired = -5, 5
	idn.RegistrantName = "Jürgen Müller"
	return []Data{base, idn}
}

func (n *notice) render(d Data) (Rendered, error) {
	r := Rendered{Source: n.source, Language: n.lang}
	var b bytes.Buffer
	subject, err := n.renderSubject(&b, d)
	if err != nil {
		return r, err
	}
	r.Subject = subject
	b.Reset()
	if err := n.text.Execute(&b, d); err != nil {
		return r, fmt.Errorf("templates: %w", err)
	}
	r.Text = b.String()
	b.Reset()
	if err := n.html.Execute(&b, d); err != nil {
		return r, fmt.Errorf("templates: %w", err)
	}
	r.HTML = b.String()
	return r, nil
}

// renderSubject renders the subject into b and checks it.
func (n *notice) renderSubject(b *bytes.Buffer, d Data) (string, error) {
	if err := n.subject.Execute(b, d); err != nil {
		return "", fmt.Errorf("templates: %w", err)
	}
	subject := strings.TrimSpace(b.String())
	// A header with a line break could smuggle in headers of its own.
	if strings.ContainsAny(subject, "\r\n") {
		return "", fmt.Errorf("templates: %s: the rendered subject contains CR or LF", n.subject.Name())
	}
	if subject == "" {
		return "", fmt.Errorf("templates: %s: the rendered subject is empty", n.subject.Name())
	}
	return subject, nil
}

// check fails where render would, keeping nothing: the subject is
// rendered and checked unless it is fixed, the bodies are executed into
// io.Discard unless they are total.
func (n *notice) check(d Data) error {
	if !n.fixedSubject {
		var b bytes.Buffer
		if _, err := n.renderSubject(&b, d); err != nil {
			return err
		}
	}
	if n.total {
		return nil
	}
	if err := n.text.Execute(io.Discard, d); err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	if err := n.html.Execute(io.Discard, d); err != nil {
		return fmt.Errorf("templates: %w", err)
	}
	return nil
}

// primary is a language tag's language, "de" for "de-CH" or "de_ch".
func primary(tag string) string {
	l, _, _ := strings.Cut(strings.ReplaceAll(tag, "_", "-"), "-")
	return l
}

// Render fills in the notice d names (d.Mode, d.Notice) for a brand and
// the registrant's language. ERRP wants the notice in the registrant's
// language, so each language is tried in every source before the next:
// lang, then brandLang (the brand's default language), then English; and
// in each, the brand's folder, the "default" folder, the built-in set.
func (s *Set) Render(brand, lang, brandLang string, d Data) (Rendered, error) {
	if err := d.check(); err != nil {
		return Rendered{}, err
	}
	n, fallback, err := s.pick(brand, lang, brandLang, d.Kind())
	if err != nil {
		return Rendered{}, err
	}
	r, err := n.render(d)
	r.Fallback = fallback
	return r, err
}

// Check fails exactly where Render would, for less: it keeps no text, and
// skips executing the templates of a notice that cannot fail on any Data
// (total bodies, a fixed subject), as the built-in set's cannot.
// `errpd import` checks every new row with it.
func (s *Set) Check(brand, lang, brandLang string, d Data) error {
	if err := d.check(); err != nil {
		return err
	}
	n, _, err := s.pick(brand, lang, brandLang, d.Kind())
	if err != nil {
		return err
	}
	return n.check(d)
}

// pick finds the notice Render uses, and the registrant's language when
// it is not the notice's (Rendered.Fallback).
func (s *Set) pick(brand, lang, brandLang, kind string) (*notice, string, error) {
	lang, brandLang = strings.ToLower(lang), strings.ToLower(brandLang)
	// An array, not a slice: an import picks a notice for every row.
	var brands [3]string
	nb := 0
	if brand != "" && brand != DefaultBrand {
		brands[nb] = brand
		nb++
	}
	brands[nb], brands[nb+1] = DefaultBrand, ""
	nb += 2
	// A regional tag ("de-CH", "pt_BR") falls back to its language ("de")
	// before any other language does.
	for _, l := range [...]string{lang, primary(lang), brandLang, primary(brandLang), builtinLanguage} {
		if l == "" {
			continue
		}
		for _, b := range brands[:nb] {
			n, ok := s.t[key{b, l, kind}]
			if !ok {
				continue
			}
			fallback := ""
			if lang != "" && l != lang && l != primary(lang) {
				fallback = lang
			}
			return n, fallback, nil
		}
	}
	return nil, "", fmt.Errorf("templates: no template for %s", kind) // the built-in set has them all
}
