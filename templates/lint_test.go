package templates

import (
	"slices"
	"strings"
	"testing"
)

// BuiltinLanguages are the languages errpd ships notices in.
var builtinLanguages = []string{"en", "de", "fr", "es", "da"}

// Every built-in language renders every notice, before and after expiry,
// with every fact its notice requires in the subject or body, in the text
// and in the HTML, and says its language.
func TestBuiltinLanguagesCarryEveryFact(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range builtinLanguages {
		for _, kind := range Kinds {
			mode, n, _ := strings.Cut(kind, "-")
			for _, d := range Samples(mode, n) {
				r, err := s.Render("", lang, "en", d)
				if err != nil {
					t.Fatalf("%s %s: %v", lang, kind, err)
				}
				if r.Source != "builtin/"+lang || r.Language != lang || r.Fallback != "" {
					t.Errorf("%s %s: source %q, language %q, fallback %q", lang, kind, r.Source, r.Language, r.Fallback)
				}
				for body, text := range map[string]string{"text": r.Text, "HTML": r.HTML} {
					if m := MissingFacts(d, r, text); len(m) > 0 {
						t.Errorf("%s %s %s (%s): lacks %v", lang, kind, body, d.Domain, m)
					}
				}
				if !strings.Contains(r.Subject, d.DomainUnicode) {
					t.Errorf("%s %s: subject %q lacks the domain", lang, kind, r.Subject)
				}
				if !strings.Contains(r.HTML, `<html lang="`+lang+`">`) {
					t.Errorf("%s %s: the HTML does not say its language", lang, kind)
				}
				if strings.Contains(r.Text, "{{") || strings.Contains(r.HTML, "{{") {
					t.Errorf("%s %s: an action left in the output", lang, kind)
				}
			}
		}
	}
	// The translations are translations: no two languages share a subject.
	d := sample("expire-reminder1")
	seen := map[string]string{}
	for _, lang := range builtinLanguages {
		r, _ := s.Render("", lang, "", d)
		if other, ok := seen[r.Subject]; ok {
			t.Errorf("%s and %s have the same subject %q", lang, other, r.Subject)
		}
		seen[r.Subject] = lang
	}
}

func TestBuiltinPassesLint(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Lint() {
		t.Error(p)
	}
}

// A registrant language without templates falls back to the brand's, and
// the rendering says so.
func TestLanguageFallbackIsReported(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ lang, brandLang, want, fallback string }{
		{"de", "en", "de", ""},
		{"DE", "en", "de", ""},
		{"it", "de", "de", "it"},
		{"de-CH", "en", "de", ""}, // a regional tag: its language, no fallback
		{"fr_CA", "de", "fr", ""},
		{"pt-BR", "de", "de", "pt-br"},
		{"it", "", "en", "it"},
		{"", "fr", "fr", ""}, // no language known: the brand's, no fallback
		{"", "", "en", ""},
	} {
		r, err := s.Render("", tc.lang, tc.brandLang, sample("expire-reminder2"))
		if err != nil {
			t.Fatal(err)
		}
		if r.Language != tc.want || r.Fallback != tc.fallback {
			t.Errorf("registrant %q, brand %q: language %q fallback %q, want %q and %q",
				tc.lang, tc.brandLang, r.Language, r.Fallback, tc.want, tc.fallback)
		}
	}
}

// full is a partner notice that uses every fact of its kind, in subject,
// text and HTML; tests break one file of it at a time.
func full(folder, kind string) map[string]string {
	var vars []string
	for _, f := range RequiredFacts(kind) {
		vars = append(vars, "{{."+f.Var+"}}")
	}
	all := strings.Join(vars, "\n")
	return map[string]string{
		folder + "/" + kind + ".subject": "Notice {{.DomainUnicode}}\n",
		folder + "/" + kind + ".txt":     all + "\n",
		folder + "/" + kind + ".html":    "<p>" + all + "</p>\n",
	}
}

func TestLintOnTheParseTree(t *testing.T) {
	const kind = "expire-reminder3"
	txt := "acme/de/" + kind + ".txt"
	without := func(v string) string {
		return strings.Replace(full("acme/de", kind)[txt], "{{."+v+"}}", "", 1)
	}
	tests := []struct {
		name    string
		txt     string
		missing []string // facts the lint names; none: passes
	}{
		{"all there", full("acme/de", kind)[txt], nil},
		{"no renew URL", without("RenewalURL"), []string{"RenewalURL"}},
		{"only in one branch", without("RenewalURL") + "{{if gt .DaysExpired 3}}{{.RenewalURL}}{{end}}", []string{"RenewalURL"}},
		{"in both branches", without("RenewalURL") + "{{if gt .DaysExpired 3}}{{.RenewalURL}}{{else}}at {{.RenewalURL}}{{end}}", nil},
		{"only in a comment", without("RenewalURL") + "{{/* {{.RenewalURL}} */}}", []string{"RenewalURL"}},
		{"only in a condition", without("RenewalURL") + "{{if .RenewalURL}}renew{{end}}", []string{"RenewalURL"}},
		{"only assigned", without("RenewalURL") + "{{$u := .RenewalURL}}", []string{"RenewalURL"}},
		{"inside with, by $", without("RenewalURL") + "{{with .Brand}}{{$.RenewalURL}}{{else}}{{.RenewalURL}}{{end}}", nil},
		{"inside range only", without("RenewBy") + "{{range $i := .DaysExpired}}{{$.RenewBy}}{{end}}", []string{"RenewBy"}},
		{"through a defined template", without("FeesURL") + `{{define "fees"}}Fees: {{.FeesURL}}{{end}}{{template "fees" .}}`, nil},
		{"defined but not called", without("FeesURL") + `{{define "fees"}}Fees: {{.FeesURL}}{{end}}`, []string{"FeesURL"}},
		{"as an argument", without("RedemptionEnd") + `{{printf "until %s" .RedemptionEnd}}`, nil},
		{"text that looks like it", without("RenewBy") + "RenewBy .RenewBy", []string{"RenewBy"}},
		{"two missing", strings.NewReplacer("{{.RenewBy}}", "", "{{.Support}}", "").Replace(full("acme/de", kind)[txt]), []string{"Support", "RenewBy"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := full("acme/de", kind)
			files[txt] = tc.txt
			s, err := Load(write(t, files))
			if err != nil {
				t.Fatal(err)
			}
			problems := s.Lint()
			if len(tc.missing) == 0 {
				if len(problems) > 0 {
					t.Errorf("lint: %v", problems)
				}
				return
			}
			if len(problems) != 1 {
				t.Fatalf("want one problem, got %v", problems)
			}
			p := problems[0]
			if !strings.HasSuffix(p.File, txt) || !strings.Contains(p.Error(), txt) {
				t.Errorf("problem names %q: %v", p.File, p)
			}
			var got []string
			for _, f := range p.Missing {
				got = append(got, f.Var)
			}
			if !slices.Equal(got, tc.missing) {
				t.Errorf("missing %v, want %v", got, tc.missing)
			}
		})
	}
}

// A fact in the subject counts for both bodies; the HTML is linted too.
func TestLintSubjectAndHTML(t *testing.T) {
	const kind = "renew-reminder1"
	files := full("default/en", kind)
	files["default/en/"+kind+".subject"] = "Notice {{.DomainUnicode}} ({{.Domain}})\n"
	files["default/en/"+kind+".txt"] = strings.Replace(files["default/en/"+kind+".txt"], "{{.Domain}}\n", "", 1)
	files["default/en/"+kind+".html"] = strings.Replace(files["default/en/"+kind+".html"], "{{.Support}}", "", 1)
	s, err := Load(write(t, files))
	if err != nil {
		t.Fatal(err)
	}
	problems := s.Lint()
	if len(problems) != 1 || !strings.HasSuffix(problems[0].File, kind+".html") || problems[0].Missing[0].Var != "Support" {
		t.Errorf("problems: %v", problems)
	}
}
