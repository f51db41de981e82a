package message

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/templates"
)

// checkBuilder is a Builder whose [mail] sender's English renew notices
// are templates that fail on some rows' values only: reminder1's text
// body cuts the name at 6 bytes, its HTML body cuts it at 8 after expiry
// alone (a branch the load's samples reach with a long name), and
// reminder2's subject is the name alone, empty for a name of spaces.
func checkBuilder(t *testing.T, dir string) *Builder {
	t.Helper()
	files := map[string]string{
		"renew-reminder1.subject": "Renew {{.DomainUnicode}} by {{.ExpiryDate}}",
		"renew-reminder1.txt":     "Dear {{slice .RegistrantName 0 6}}, renew {{.Domain}} at {{.RenewalURL}} ({{.FeesURL}}, {{.Support}}).\n",
		"renew-reminder1.html":    "<p>{{if lt .DaysLeft 0}}{{slice .RegistrantName 0 8}}{{end}} {{.Domain}} {{.RenewalURL}} {{.FeesURL}} {{.Support}}</p>\n",
		"renew-reminder2.subject": "{{.RegistrantName}}",
		"renew-reminder2.txt":     "{{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.RenewalURL}} {{.FeesURL}} {{.Support}}\n",
		"renew-reminder2.html":    "<p>{{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.RenewalURL}} {{.FeesURL}} {{.Support}}</p>\n",
	}
	en := filepath.Join(dir, templates.DefaultBrand, "en")
	if err := os.MkdirAll(en, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(en, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return builderWith(t, dir)
}

// checkAgrees fails the test unless Check refuses in exactly when Build
// does, with the same error.
func checkAgrees(t *testing.T, b *Builder, in Input) error {
	t.Helper()
	_, built := b.Build(in)
	checked := b.Check(in)
	if (built == nil) != (checked == nil) || built != nil && built.Error() != checked.Error() {
		t.Errorf("%+v:\nBuild: %v\nCheck: %v", in, built, checked)
	}
	return checked
}

// Check is import's shortcut for Build: whatever Build refuses on a
// row's values (its name, address, domain, dates, language, brand), Check
// must refuse with the same error, also when only a template's body
// fails, which Check executes without keeping.
func TestCheckRefusesWhatBuildRefuses(t *testing.T) {
	b := checkBuilder(t, t.TempDir())
	base := Input{StepID: "import-check", Domain: "example.com", Expiry: expiry, Mode: "renew", Notice: "reminder1",
		Registrant: Registrant{Name: "Ann Example", Email: "ann@example.org", Language: "en"}}
	tests := []struct {
		name   string
		change func(*Input)
		refuse bool
	}{
		{"a good row", func(*Input) {}, false},
		{"a German row (built-in templates)", func(in *Input) { in.Registrant.Language = "de"; in.Mode = "expire" }, false},
		{"a brand with DKIM", func(in *Input) { in.Brand = "acme" }, false},
		{"an unknown brand (the [mail] sender)", func(in *Input) { in.Brand = "nope" }, false},
		{"a language without templates (falls back)", func(in *Input) { in.Registrant.Language = "pt-BR" }, false},
		{"an IDN", func(in *Input) { in.Domain = "xn--bcher-kva.example" }, false},
		{"a name ending in a backslash (issue 11)", func(in *Input) { in.Registrant.Name = `Bo \` }, true},
		{"a name with CRLF", func(in *Input) { in.Registrant.Name = "A\r\nBcc: victim@example.com" }, true},
		{"an address with LF", func(in *Input) { in.Registrant.Email = "a@example.org\nBcc: victim@example.com" }, true},
		{"no address", func(in *Input) { in.Registrant.Email = "" }, true},
		{"not an address", func(in *Input) { in.Registrant.Email = "not an address" }, true},
		{"two addresses", func(in *Input) { in.Registrant.Email = "a@example.org, b@example.org" }, true},
		{"an unknown notice", func(in *Input) { in.Notice = "reminder7" }, true},
		{"a name the text body cannot cut", func(in *Input) { in.Registrant.Name = "Al" }, true},
		{"a name the HTML body cuts only after expiry, before", func(in *Input) { in.Registrant.Name = "Ann Bee" }, false},
		{"a name the HTML body cuts only after expiry, after", func(in *Input) {
			in.Registrant.Name = "Ann Bee"
			in.Expiry = clock().Add(-48 * time.Hour)
		}, true},
		{"a name of spaces, in a subject of the name alone", func(in *Input) { in.Registrant.Name = "   "; in.Notice = "reminder2" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			tt.change(&in)
			if err := checkAgrees(t, b, in); (err != nil) != tt.refuse {
				t.Errorf("Check: %v, want refused %v", err, tt.refuse)
			}
		})
	}
}

// FuzzCheck holds Check to Build's verdict and error on any name,
// address, domain, language and expiry.
func FuzzCheck(f *testing.F) {
	f.Add("Ann Example", "ann@example.org", "example.com", "en", int64(30), uint8(0))
	f.Add(`Bo \`, "bo@example.org", "xn--bcher-kva.example", "de", int64(-3), uint8(1))
	f.Add("Ann Bee", "a@b", "example.com", "", int64(-2), uint8(2))
	f.Add("  ", "x@example.org", "example.com", "pt-BR", int64(3), uint8(3))
	f.Add("Zoë \"Z\" O'Brien", "zoë@exämple.org", "xn--", "da", int64(400), uint8(4))
	dir := f.TempDir()
	var b *Builder
	f.Fuzz(func(t *testing.T, name, email, domain, lang string, days int64, pick uint8) {
		if b == nil {
			b = checkBuilder(t, dir)
		}
		kinds := templates.Kinds
		mode, notice, _ := strings.Cut(kinds[int(pick)%len(kinds)], "-")
		in := Input{StepID: "import-check", Domain: domain, Expiry: clock().Add(time.Duration(days%4000) * 24 * time.Hour),
			Mode: mode, Notice: notice, Brand: []string{"", "acme"}[int(pick/8)%2],
			Registrant: Registrant{Name: name, Email: email, Language: lang}}
		checkAgrees(t, b, in)
	})
}
