package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// write lays out files (relative path -> text) under a new folder.
func write(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// files gives the three files of one kind with a marker in each.
func files(folder, kind, marker string) map[string]string {
	return map[string]string{
		folder + "/" + kind + ".subject": marker + " {{.DomainUnicode}}\n",
		folder + "/" + kind + ".txt":     marker + " {{.Domain}} {{.RenewalURL}}\n",
		folder + "/" + kind + ".html":    "<p>" + marker + " {{.DomainUnicode}}</p>\n",
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func sample(kind string) Data {
	mode, n, _ := strings.Cut(kind, "-")
	return Samples(mode, n)[1]
}

func TestBuiltinCoversEveryNotice(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range Kinds {
		r, err := s.Render("", "en", "en", sample(kind))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if r.Source != "builtin/en" {
			t.Errorf("%s: source %q", kind, r.Source)
		}
		// ERRP wants every notice to name the domain and its expiry, say
		// how to renew, link the fees and give a contact.
		d := sample(kind)
		for _, want := range []string{d.DomainUnicode, d.ExpiryDate, d.RenewalURL, d.FeesURL, d.Support} {
			if !strings.Contains(r.Text, want) {
				t.Errorf("%s: text lacks %q", kind, want)
			}
			if !strings.Contains(r.HTML, want) {
				t.Errorf("%s: HTML lacks %q", kind, want)
			}
		}
		if !strings.Contains(r.Subject, d.DomainUnicode) {
			t.Errorf("%s: subject %q lacks the domain", kind, r.Subject)
		}
	}
}

func TestFallback(t *testing.T) {
	dir := write(t, merge(
		files("acme/de", "expire-reminder1", "acme-de"),
		files("acme/fr", "expire-reminder1", "acme-fr"),
		files("default/nl", "expire-reminder1", "default-nl"),
		files("default/fr", "expire-reminder2", "default-fr"),
	))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		brand, lang, brandLang, kind, want string
	}{
		{"acme", "de", "fr", "expire-reminder1", "acme-de"},        // brand in the registrant's language
		{"acme", "DE", "fr", "expire-reminder1", "acme-de"},        // language codes are case-blind
		{"acme", "it", "fr", "expire-reminder1", "acme-fr"},        // brand in its default language
		{"acme", "nl", "it", "expire-reminder1", "default-nl"},     // default folder in the registrant's
		{"other", "it", "fr", "expire-reminder2", "default-fr"},    // default folder in the brand's
		{"acme", "it", "it", "expire-reminder1", "Expiry notice"},  // built-in
		{"", "de", "en", "expire-reminder1", "Ablaufhinweis"},      // no brand: default folder, then built-in German
		{"acme", "de", "fr", "expire-reminder3", "ist abgelaufen"}, // not overridden: built-in in the registrant's language
		{"acme", "it", "de", "expire-reminder3", "ist abgelaufen"}, // no Italian anywhere: the brand's language, built in
		{"default", "nl", "en", "expire-reminder1", "default-nl"},  // "default" names the default folder
		{"", "", "", "expire-suspension", "has been suspended"},    // no language at all: English
	}
	for _, tc := range tests {
		r, err := s.Render(tc.brand, tc.lang, tc.brandLang, sample(tc.kind))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(r.Subject, tc.want) && !strings.Contains(r.Subject, tc.want) {
			t.Errorf("%s/%s/%s %s: subject %q (from %s), want %q", tc.brand, tc.lang, tc.brandLang, tc.kind, r.Subject, r.Source, tc.want)
		}
	}
}

func TestLoadErrorsNameFileAndLine(t *testing.T) {
	ok := files("acme/de", "expire-reminder1", "x")
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"parse error", merge(ok, map[string]string{"acme/de/expire-reminder1.txt": "line one\nline two {{.Domain\n"}),
			[]string{"acme/de/expire-reminder1.txt:2"}},
		{"unknown variable", merge(ok, map[string]string{"acme/de/expire-reminder1.html": "<p>\n\n{{.Domian}}</p>"}),
			[]string{"acme/de/expire-reminder1.html:3", "Domian"}},
		{"line break in subject", merge(ok, map[string]string{"acme/de/expire-reminder1.subject": "Hello\nBcc: victim@example.com"}),
			[]string{"acme/de/expire-reminder1.subject", "CR or LF"}},
		{"incomplete", map[string]string{"acme/de/expire-reminder1.txt": "x"},
			[]string{"acme/de", "expire-reminder1.subject and expire-reminder1.html"}},
		{"misspelt file", merge(ok, map[string]string{"acme/de/expire-reminder01.txt": "x"}),
			[]string{"acme/de/expire-reminder01.txt", "unknown file"}},
		{"file at brand level", map[string]string{"acme/expire-reminder1.txt": "x"},
			[]string{"acme/expire-reminder1.txt", "not a language folder"}},
		{"missing function", merge(ok, map[string]string{"acme/de/expire-reminder1.txt": "{{upper .Domain}}"}),
			[]string{"acme/de/expire-reminder1.txt:1", "upper"}},
		{"method on missing key", merge(ok, map[string]string{"acme/de/expire-reminder1.txt": "ok\n{{.Expiry.Nope}}"}),
			[]string{"acme/de/expire-reminder1.txt:2", "Nope"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write(t, tc.files))
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestRenderRefuses(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	d := sample("expire-reminder1")
	d.Brand = "Evil\r\nBcc: victim@example.com"
	if _, err := s.Render("", "en", "en", d); err == nil || !strings.Contains(err.Error(), "CR or LF") {
		t.Errorf("brand with CRLF: %v", err)
	}
	d = sample("expire-reminder1")
	d.FeesURL = ""
	if _, err := s.Render("", "en", "en", d); err == nil || !strings.Contains(err.Error(), "FeesURL") {
		t.Errorf("no fees URL: %v", err)
	}
	d = sample("renew-reminder3")
	if _, err := s.Render("", "en", "en", d); err == nil || !strings.Contains(err.Error(), "renew-reminder3") {
		t.Errorf("unknown notice: %v", err)
	}
}

// An HTML template escapes what it quotes: a registrant's name cannot
// inject markup into the notice.
func TestHTMLEscapes(t *testing.T) {
	s, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	d := sample("expire-reminder2")
	d.RegistrantName = `<script>alert("x")</script>`
	r, err := s.Render("", "en", "en", d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, "<script>") || !strings.Contains(r.HTML, "&lt;script&gt;") {
		t.Errorf("HTML not escaped:\n%s", r.HTML)
	}
	if !strings.Contains(r.Text, "<script>") {
		t.Errorf("text body should quote the name as is:\n%s", r.Text)
	}
}
