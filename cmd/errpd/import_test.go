package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
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
