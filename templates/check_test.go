package templates

import (
	"fmt"
	htmltemplate "html/template"
	"testing"
	texttemplate "text/template"
)

// total accepts only what cannot fail on any Data: a template that could
// fail on some row must be executed by Check.
func TestTotal(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"plain text", true},
		{"{{/* a comment */}}Dear {{.RegistrantName}}, {{.DaysLeft}} days", true},
		{"{{if eq .DaysLeft 1}}day{{else}}days{{end}}", true},
		{"{{if ne 1 .DaysExpired}}a{{else if lt .DaysLeft -3}}b{{end}}", true},
		{`{{if eq .Mode "renew"}}renews{{end}}`, true},
		{"{{if .DaysExpired}}expired{{end}}", true},
		{"{{.Expiry}}", false},      // a time.Time: printed by methods
		{"{{.Expiry.Year}}", false}, // a method
		{"{{.Kind}}", false},        // a method
		{"{{.Nope}}", false},        // Data has no such field: fails when reached
		{"{{if eq .DaysLeft 3}}{{.Nope}}{{end}}", false},
		{`{{if eq .DaysLeft "3"}}x{{end}}`, false}, // int against string: an error
		{"{{if eq .DaysLeft 1.0}}x{{end}}", false}, // int against float64: an error
		{"{{if eq .DaysLeft 0x1}}x{{end}}", false}, // not decimal: kept out
		{`{{if eq .Domain 1}}x{{end}}`, false},
		{"{{if and .DaysLeft .DaysExpired}}x{{end}}", false},
		{"{{slice .Domain 0 3}}", false},
		{`{{printf "%s" .Domain}}`, false},
		{"{{.Domain | html}}", false},
		{"{{$d := .Domain}}{{$d}}", false},
		{"{{with .Domain}}{{.}}{{end}}", false},
		{"{{range 3}}x{{end}}", false},
		{`{{define "x"}}{{.Nope}}{{end}}{{template "x" .}}`, false},
	} {
		tt, err := texttemplate.New("t").Parse(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := total(tt.Tree); got != tc.want {
			t.Errorf("text %s: total %v, want %v", tc.src, got, tc.want)
		}
		ht, err := htmltemplate.New("t").Parse(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := total(ht.Tree); got != tc.want {
			t.Errorf("html %s: total %v, want %v", tc.src, got, tc.want)
		}
	}
}

// A subject is fixed, and Check does not render it, only when it can
// neither fail, nor render empty, nor render a line break.
func TestFixedSubject(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
	}{
		{"Expiry notice: {{.DomainUnicode}} expires on {{.ExpiryDate}}", true},
		{"{{.Domain}}: expiry{{if eq .DaysLeft 1}} tomorrow{{end}}", true},
		{"{{.Domain}}", false},                                      // a variable may be white space
		{"  {{.Domain}}", false},                                    // white space is trimmed
		{"{{if .DaysLeft}}Expiry {{.Domain}}{{end}}", false},        // prints nothing when 0
		{"Expiry{{if eq .DaysLeft 7}}\n{{end}} {{.Domain}}", false}, // a line break when 7
		{"Expiry {{slice .Domain 0 3}}", false},                     // not total
	} {
		tt, err := texttemplate.New("t").Parse(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := fixedSubject(tt.Tree); got != tc.want {
			t.Errorf("%s: fixed %v, want %v", tc.src, got, tc.want)
		}
	}
}

// The built-in set is total with fixed subjects: an import checks its
// rows without executing a template (the cost issue 14 is about).
func TestBuiltinIsTotal(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range s.t {
		if !n.total || !n.fixedSubject {
			t.Errorf("%s/%s/%s: total %v, fixed subject %v", k.brand, k.lang, k.kind, n.total, n.fixedSubject)
		}
	}
}

// traps are a partner's templates of kind that fail on some rows only,
// which the samples Load renders with do not meet: in default/en, a
// subject that renders empty when DaysLeft is 4, a text body that reaches
// a field Data lacks when the name is "x", an HTML body that does when
// DaysLeft is 3; in default/de, a subject with a line break when DaysLeft
// is 7, a text body that slices a domain shorter than 40 bytes when
// DaysLeft is below -10.
func traps(kind string) map[string]string {
	return map[string]string{
		"default/en/" + kind + ".subject": "{{if eq .DaysLeft 4}} {{else}}Expiry: {{.DomainUnicode}}{{end}}\n",
		"default/en/" + kind + ".txt":     "{{if eq .RegistrantName \"x\"}}{{.Nope}}{{end}}{{.Domain}}\n",
		"default/en/" + kind + ".html":    "{{if eq .DaysLeft 3}}{{.Nope}}{{end}}<p>{{.Domain}}</p>\n",
		"default/de/" + kind + ".subject": "Ablauf{{if eq .DaysLeft 7}}\n{{end}}: {{.DomainUnicode}}\n",
		"default/de/" + kind + ".txt":     "{{if lt .DaysLeft -10}}{{slice .Domain 0 40}}{{end}}{{.Domain}}\n",
		"default/de/" + kind + ".html":    "<p>{{.Domain}}</p>\n",
	}
}

// Check refuses exactly what Render refuses, with the same error, also
// where a partner's template fails on some rows only (traps) and where a
// notice is total (acme/en, and the built-in set).
func TestCheckRefusesWhatRenderRefuses(t *testing.T) {
	kind := "expire-reminder1"
	dir := write(t, merge(files("acme/en", kind, "ACME"), traps(kind)))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.t[key{"acme", "en", kind}]; !n.total {
		t.Fatal("acme/en: not total; the test wants one that is")
	}
	refused := 0
	for _, brand := range []string{"", "acme"} {
		for _, lang := range []string{"en", "de", "fr"} {
			for _, days := range []int{-20, -5, 0, 3, 4, 7, 30} {
				for _, domain := range []string{"a.example", "", "x\ny.example"} {
					d := sample(kind)
					d.DaysLeft, d.Domain = days, domain
					_, renderErr := s.Render(brand, lang, "en", d)
					checkErr := s.Check(brand, lang, "en", d)
					what := fmt.Sprintf("brand %q, lang %s, DaysLeft %d, Domain %q", brand, lang, days, domain)
					if (renderErr == nil) != (checkErr == nil) {
						t.Errorf("%s: Render: %v; Check: %v", what, renderErr, checkErr)
					}
					if renderErr != nil && checkErr != nil && renderErr.Error() != checkErr.Error() {
						t.Errorf("%s: Render: %v; Check, another error: %v", what, renderErr, checkErr)
					}
					if checkErr != nil {
						refused++
					}
				}
			}
		}
	}
	// The empty and broken domains (2 of 3 domains, 2 brands, 3 languages,
	// 7 DaysLeft); with a good domain, DaysLeft 3 and 4 where default/en
	// is used (brand "" in en; in fr the built-in set has the notice), and
	// DaysLeft -20 and 7 where default/de is (both brands in de).
	if want := 84 + 2 + 2*2; refused != want {
		t.Errorf("%d refused, want %d", refused, want)
	}
}

// FuzzCheckAgreesWithRender holds Check to Render on any row values, with
// the built-in set and with the partner's templates that fail on some
// rows only (traps).
func FuzzCheckAgreesWithRender(f *testing.F) {
	kind := "expire-reminder1"
	dir := write(f, traps(kind))
	partner, err := Load(dir)
	if err != nil {
		f.Fatal(err)
	}
	builtin, err := Load("")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("a.example", "Ann", "en", 3)
	f.Add("a.example", "x", "de", 30)
	f.Add("b\r.example", "Bo", "fr", 4)
	f.Add("c.example", " ", "de", 7)
	f.Add("", "", "pt-BR", -5)
	f.Fuzz(func(t *testing.T, domain, name, lang string, days int) {
		d := sample(kind)
		d.Domain, d.RegistrantName, d.DaysLeft = domain, name, days
		for _, s := range []*Set{builtin, partner} {
			_, renderErr := s.Render("", lang, "en", d)
			checkErr := s.Check("", lang, "en", d)
			if (renderErr == nil) != (checkErr == nil) {
				t.Errorf("Render: %v; Check: %v", renderErr, checkErr)
			}
		}
	})
}
