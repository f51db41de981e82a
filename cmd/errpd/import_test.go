package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

// A row whose notice can never be built is rejected at import, naming the
// line, instead of failing at its send date: go-mail cannot write a name
// ending in a backslash into the To header (issue 11). Locally and
// through a running daemon, which streams the calendar in.
func TestImportRejectsRowsThatCannotRender(t *testing.T) {
	t.Run("local", func(t *testing.T) { testImportRejectsRowsThatCannotRender(t, false) })
	t.Run("daemon", func(t *testing.T) { testImportRejectsRowsThatCannotRender(t, true) })
}

func testImportRejectsRowsThatCannotRender(t *testing.T, daemon bool) {
	cfg := testConfig(t)
	if daemon {
		serveInProcess(t, cfg)
	}
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte(`domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand
good.example,2099-12-31,renew,Ann,ann@example.org,en,,
bad.example,2099-12-31,expire,Bo \,bo@example.org,de,,
after.example,2099-12-31,expire,Cy,cy@example.org,de,,
`), 0o600)
	out, stderr, err := errpd(t, context.Background(), "import", "--config", cfg, csv)
	if exitCode(err) != 1 || !strings.Contains(out, "3 rows read: 2 new domains, each with its notices planned, 1 row rejected") {
		t.Errorf("import: %q, %v (exit %d); want 2 added, 1 rejected, exit 1", out, err, exitCode(err))
	}
	want := `calendar.csv:3: notice: the expire-reminder1 notice cannot be rendered for brand "", language "de": registrant e-mail`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
}

// A row that repeats its stored domain is not test-rendered again; a row
// with a new fact, or of a domain not stored or stopped, is.
func TestImportRendersOnlyNewFacts(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d := store.Domain{Name: "a.example", Mode: scheduler.ModeExpire, Expiry: time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC),
		Registrant: store.Registrant{Name: "Ann", Email: "ann@example.org", Language: "en"}, Brand: "b"}
	stopped := d
	stopped.Name = "gone.example"
	err = db.Update(func(tx *store.Tx) error {
		for _, x := range []store.Domain{d, stopped} {
			if _, err := tx.Upsert(x, store.PlanOptions{Policy: scheduler.DefaultPolicy()}); err != nil {
				return err
			}
		}
		return tx.Stop(stopped.Name, "deleted")
	})
	if err != nil {
		t.Fatal(err)
	}
	var rendered []string
	check := unlessStored(db, func(d store.Domain) error { rendered = append(rendered, d.Name+" "+d.Registrant.Name); return nil })
	newName, newDomain := d, d
	newName.Registrant.Name = "Ann B"
	newDomain.Name = "new.example"
	for _, x := range []store.Domain{d, newName, newDomain, stopped} {
		if err := check(x); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a.example Ann B", "new.example Ann", "gone.example Ann"}
	if !slices.Equal(rendered, want) {
		t.Errorf("rendered %q, want %q", rendered, want)
	}
}

// renderCheckConfig is the default configuration with overrides of the
// English renew-reminder1 whose text body cuts the registrant's name at 6
// bytes: it renders for the load's samples and fails on a short name.
func renderCheckConfig(t *testing.T) config.Config {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tpl")
	en := filepath.Join(dir, templates.DefaultBrand, "en")
	if err := os.MkdirAll(en, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"renew-reminder1.subject": "Renew {{.DomainUnicode}} by {{.ExpiryDate}}",
		"renew-reminder1.txt":     "Dear {{slice .RegistrantName 0 6}}, renew {{.Domain}} at {{.RenewalURL}} ({{.FeesURL}}, {{.Support}}).\n",
		"renew-reminder1.html":    "<p>{{.DomainUnicode}} {{.Domain}} {{.ExpiryDate}} {{.RenewalURL}} {{.FeesURL}} {{.Support}}</p>\n",
	} {
		if err := os.WriteFile(filepath.Join(en, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := config.Default()
	c.Templates.Dir = dir
	c.Brands = map[string]config.Brand{"acme": {From: "ACME <hostmaster@acme.example>", Language: "de"}}
	return c
}

// renderCheckRows are n rows, every seventh one that can never be sent:
// by turns a name go-mail cannot put in a To header (issue 11), an
// address it refuses, and a name the English renew template fails on.
// want[i] says whether row i must be refused.
func renderCheckRows(n int) (rows []store.Domain, want []bool) {
	expiry := time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		d := store.Domain{
			Name: fmt.Sprintf("d%d.example", i), Expiry: expiry.Add(time.Duration(i) * time.Hour),
			Mode:       []scheduler.Mode{scheduler.ModeRenew, scheduler.ModeExpire}[i%2],
			Registrant: store.Registrant{Name: fmt.Sprintf("Registrant %d", i), Email: fmt.Sprintf("r%d@example.org", i), Language: []string{"en", "de", ""}[i%3]},
			Brand:      []string{"", "acme"}[i/2%2],
		}
		bad := i%7 == 6
		if bad {
			switch i / 7 % 3 {
			case 0:
				d.Registrant.Name = `Bobby Tables \`
			case 1:
				d.Registrant.Email = "not an address"
			case 2:
				// The English renew template, whatever the brand (acme
				// has no override of its own) and in any mode: renew.
				d.Registrant.Name, d.Registrant.Language, d.Mode = "Al", "en", scheduler.ModeRenew
			}
		}
		rows, want = append(rows, d), append(want, bad)
	}
	return rows, want
}

// A row is refused by its own values also after the first row of its
// brand, language and mode, when only its mode's first notice is checked.
func TestRenderCheckRefusesAfterTheFirstOfAKind(t *testing.T) {
	check, err := renderCheck(renderCheckConfig(t), nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	good := store.Domain{Name: "good.example", Mode: scheduler.ModeRenew, Expiry: time.Date(2099, 3, 1, 0, 0, 0, 0, time.UTC),
		Registrant: store.Registrant{Name: "Ann Example", Email: "ann@example.org", Language: "en"}}
	short, backslash, address := good, good, good
	short.Registrant.Name = "Al"
	backslash.Registrant.Name = `Bobby Tables \`
	address.Registrant.Email = "not an address"
	for _, x := range []struct {
		d    store.Domain
		want string
	}{
		{good, ""},
		{short, `the renew-reminder1 notice cannot be rendered for brand "", language "en": templates: `},
		{backslash, `the renew-reminder1 notice cannot be rendered for brand "", language "en": registrant e-mail`},
		{address, `the renew-reminder1 notice cannot be rendered for brand "", language "en": registrant e-mail "not an address"`},
		{good, ""},
	} {
		err := check(x.d)
		if x.want == "" && err != nil || x.want != "" && (err == nil || !strings.HasPrefix(err.Error(), x.want)) {
			t.Errorf("%s %q <%s>: %v, want %q", x.d.Name, x.d.Registrant.Name, x.d.Registrant.Email, err, x.want)
		}
	}
}

// import's workers may share one check: run under -race, goroutines
// checking the same rows at once must each get every row's own verdict.
func TestRenderCheckConcurrent(t *testing.T) {
	check, err := renderCheck(renderCheckConfig(t), nil, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	rows, want := renderCheckRows(700)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for j := range rows {
				i := (j*(2*g+1) + g*97) % len(rows) // each goroutine its own order
				if err := check(rows[i]); (err != nil) != want[i] {
					t.Errorf("goroutine %d, row %d (%s %q <%s>): %v, want refused %v",
						g, i, rows[i].Name, rows[i].Registrant.Name, rows[i].Registrant.Email, err, want[i])
				}
			}
		})
	}
	wg.Wait()
}
