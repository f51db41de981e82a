package calendar_test

import (
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

var now = time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)

type bundle struct {
	db   *store.DB
	opts store.PlanOptions
}

// setup opens a fresh store with a fixed clock.
func setup(t *testing.T) *bundle {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), store.Options{
		Now:     func() time.Time { return now },
		Timeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &bundle{db: db, opts: store.PlanOptions{Policy: scheduler.DefaultPolicy(), Reason: "renewed"}}
}

// importString imports a calendar given inline and returns the stats and
// the rejected rows.
func (b *bundle) importString(t *testing.T, name, text string) (calendar.Stats, []calendar.RowError) {
	t.Helper()
	return b.importReader(t, name, strings.NewReader(text))
}

func (b *bundle) importFile(t *testing.T, path string) (calendar.Stats, []calendar.RowError) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return b.importReader(t, filepath.Base(path), f)
}

func (b *bundle) importReader(t *testing.T, name string, in io.Reader) (calendar.Stats, []calendar.RowError) {
	t.Helper()
	r, err := calendar.NewReader(in, name)
	if err != nil {
		t.Fatal(err)
	}
	var rejected []calendar.RowError
	st, err := calendar.Import(r, b.db, b.opts, func(e *calendar.RowError) { rejected = append(rejected, *e) })
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return st, rejected
}

func (b *bundle) domains(t *testing.T) map[string]store.Domain {
	t.Helper()
	out := map[string]store.Domain{}
	if err := b.db.View(func(tx *store.Tx) error {
		return tx.Domains(func(d store.Domain) error { out[d.Name] = d; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

type state struct {
	Steps []store.Step
	Audit int
}

func (b *bundle) state(t *testing.T) state {
	t.Helper()
	var s state
	if err := b.db.View(func(tx *store.Tx) error {
		if err := tx.AllSteps(func(st store.Step) error { s.Steps = append(s.Steps, st); return nil }); err != nil {
			return err
		}
		return tx.Audit(0, func(store.Record) error { s.Audit++; return nil })
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

const header = "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"

func TestBadRowsAreReportedAndTheRestImports(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := header + // line 1
		"alpha.example,2027-06-01T12:00:00Z,renew,Ana,ana@mail.example,en,,brand\n" + // 2: good
		",2027-06-01,renew,Ana,ana@mail.example,en,,\n" + // 3: empty domain
		"bad_name!.example,2027-06-01,renew,Ana,ana@mail.example,en,,\n" + // 4: invalid domain
		"localhost,2027-06-01,renew,Ana,ana@mail.example,en,,\n" + // 5: not registrable
		"beta.example,31/12/2027,renew,Ana,ana@mail.example,en,,\n" + // 6: expiry
		"gamma.example,2027-06-01,delete,Ana,ana@mail.example,en,,\n" + // 7: mode
		"delta.example,2027-06-01,expire,Ana,not-an-address,en,,\n" + // 8: e-mail
		"delta.example,2027-06-01,expire,Ana,Ana <ana@mail.example>,en,,\n" + // 9: e-mail with a name
		"epsilon.example,2027-06-01,renew\n" + // 10: short row
		"zeta.example,2027-06-01,renew,Ana,ana@mail.example,en,,brand,extra\n" + // 11: long row
		"eta\"x.example,2027-06-01,renew,Ana,ana@mail.example,en,,\n" + // 12: bare quote in the first field
		// 13-14: a quoted field over two lines; no field may hold a line
		// break (it could never go into a notice), and each line is a row.
		"theta.example,2027-06-01,expire,\"Theta\nSecond Line\",theta@mail.example,en,,\n" +
		"ALPHA.Example.,2027-06-01,renew,Ana,ana@mail.example,en,,\n" + // 15: alpha again
		"iota.example,2027-06-01,RENEW,,,en,,\n" + // 16: empty e-mail
		"Kappa.Example,2027-06-01,Expire,Kim,kim@mail.example,EN,ORDER-9,\n" // 17: good
	st, rejected := b.importString(t, "cal.csv", in)

	type rej struct {
		Line   int
		Field  string
		Reason string // a part of it
	}
	want := []rej{
		{3, "domain", "domain is empty"},
		{4, "domain", `"bad_name!.example" is not a valid domain name`},
		{5, "domain", `"localhost" is not a registrable domain name`},
		{6, "expiry", `"31/12/2027" is neither RFC 3339`},
		{7, "mode", `mode "delete" is neither "renew" nor "expire"`},
		{8, "registrant_email", `"not-an-address" is not an e-mail address`},
		{9, "registrant_email", `"Ana <ana@mail.example>" is not an e-mail address`},
		{10, "row", "has 3 fields, the header has 8"},
		{11, "row", "has 9 fields, the header has 8"},
		{12, "row", `bare " in non-quoted-field`},
		{13, "row", "the quote opened at column 33 is not closed on this line"},
		{14, "row", `column 12: bare " in non-quoted-field`},
		{15, "domain", "alpha.example is already on line 2"},
		{16, "registrant_email", `"" is not an e-mail address`},
	}
	var got []rej
	for i, e := range rejected {
		if e.File != "cal.csv" {
			t.Errorf("rejected row %d names file %q", i, e.File)
		}
		r := rej{e.Line, e.Field, e.Reason}
		if i < len(want) && strings.Contains(e.Reason, want[i].Reason) {
			r.Reason = want[i].Reason
		}
		got = append(got, r)
		if msg := e.Error(); !strings.HasPrefix(msg, "cal.csv:") || !strings.Contains(msg, e.Field) {
			t.Errorf("RowError.Error() = %q, want file:line: field: reason", msg)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rejected rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(calendar.Stats{Rows: 16, Rejected: 14, Added: 2}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	ds := b.domains(t)
	names := slices.Sorted(maps.Keys(ds))
	if diff := cmp.Diff([]string{"alpha.example", "kappa.example"}, names); diff != "" {
		t.Errorf("stored domains (-want +got):\n%s", diff)
	}
	k := ds["kappa.example"]
	if k.Mode != scheduler.ModeExpire || k.Registrant.Language != "en" || k.OrderID != "ORDER-9" {
		t.Errorf("kappa.example: mode %s, language %q, order %q; want expire, en, ORDER-9", k.Mode, k.Registrant.Language, k.OrderID)
	}
}

func TestImportFixture(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, rejected := b.importFile(t, "testdata/calendar.csv")
	if len(rejected) != 0 {
		t.Fatalf("rejected: %v", rejected)
	}
	if diff := cmp.Diff(calendar.Stats{Rows: 4, Added: 4}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	reg := func(name, email, lang string) store.Registrant {
		return store.Registrant{Name: name, Email: email, Language: lang}
	}
	want := map[string]store.Domain{
		"alpha.example": {Name: "alpha.example", Mode: scheduler.ModeRenew, Expiry: time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC),
			Registrant: reg("Ana Alpha", "ana@mail.example", "en"), Brand: "example", OrderID: "TEST-1"},
		// A bare date is 00:00 UTC; the language is stored lower-case.
		"beta.example": {Name: "beta.example", Mode: scheduler.ModeExpire, Expiry: time.Date(2027, 6, 15, 0, 0, 0, 0, time.UTC),
			Registrant: reg("Bo Beta", "bo@mail.example", "de")},
		// An offset is converted to UTC.
		"gamma.example": {Name: "gamma.example", Mode: scheduler.ModeExpire, Expiry: time.Date(2027, 6, 30, 22, 0, 0, 0, time.UTC),
			Registrant: reg("Gamma, Inc.", "admin@gamma.example", ""), Brand: "other"},
		// An IDN U-label is stored as its A-label.
		"xn--bcher-kva.example": {Name: "xn--bcher-kva.example", Mode: scheduler.ModeExpire, Expiry: time.Date(2027, 8, 1, 0, 0, 0, 0, time.UTC),
			Registrant: reg("Jörg Bücher", "joerg@mail.example", "de")},
	}
	got := b.domains(t)
	for name, d := range got {
		if d.Cycle != store.CycleKey(name, d.Expiry) || !d.Updated.Equal(now) || d.Expiry.Location() != time.UTC {
			t.Errorf("%s: cycle %q, updated %s, expiry zone %s", name, d.Cycle, d.Updated, d.Expiry.Location())
		}
		d.Cycle, d.Updated = "", time.Time{}
		got[name] = d
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored domains (-want +got):\n%s", diff)
	}
	// 2 steps for renew, 4 for each of the three expire domains.
	if n := len(b.state(t).Steps); n != 14 {
		t.Errorf("%d steps planned, want 14", n)
	}
}

func TestImportTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importFile(t, "testdata/calendar.csv")
	before := b.state(t)
	st, rejected := b.importFile(t, "testdata/calendar.csv")
	if len(rejected) != 0 {
		t.Fatalf("rejected: %v", rejected)
	}
	if diff := cmp.Diff(calendar.Stats{Rows: 4, Unchanged: 4}, st); diff != "" {
		t.Errorf("second import's stats (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, b.state(t)); diff != "" {
		t.Errorf("second import changed the store (-before +after):\n%s", diff)
	}
}

func TestImportChangedExpiryStartsNewCycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.importFile(t, "testdata/calendar.csv")
	st, rejected := b.importFile(t, "testdata/renewed.csv") // beta.example renewed for a year
	if len(rejected) != 0 {
		t.Fatalf("rejected: %v", rejected)
	}
	if diff := cmp.Diff(calendar.Stats{Rows: 4, NewCycles: 1, Unchanged: 3}, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	oldExpiry, newExpiry := time.Date(2027, 6, 15, 0, 0, 0, 0, time.UTC), time.Date(2028, 6, 15, 0, 0, 0, 0, time.UTC)
	if d := b.domains(t)["beta.example"]; !d.Expiry.Equal(newExpiry) || d.Cycle != store.CycleKey("beta.example", newExpiry) {
		t.Errorf("beta.example: expiry %s, cycle %s", d.Expiry, d.Cycle)
	}
	err := b.db.View(func(tx *store.Tx) error {
		c, ok, err := tx.Cycle(store.CycleKey("beta.example", oldExpiry))
		if err != nil || !ok {
			t.Fatalf("old cycle: %v %v", ok, err)
		}
		if c.Closed.IsZero() || !strings.Contains(c.Reason, "2028-06-15T00:00:00Z") {
			t.Errorf("old cycle: closed %s, reason %q", c.Closed, c.Reason)
		}
		old, err := tx.Steps(c.Key)
		if err != nil {
			return err
		}
		for _, s := range old {
			if s.State != scheduler.StateSkipped {
				t.Errorf("old %s: %s, want skipped", s.Notice, s.State)
			}
		}
		steps, err := tx.Steps(store.CycleKey("beta.example", newExpiry))
		if len(steps) != 4 {
			t.Errorf("new cycle has %d steps, want 4", len(steps))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHeader(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/missing-columns.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = calendar.NewReader(f, "missing-columns.csv")
	want := "missing-columns.csv:1: header lacks column registrant_name, registrant_email, language, order_id, brand"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("NewReader: %v, want %q", err, want)
	}

	if _, err := calendar.NewReader(strings.NewReader(""), "empty.csv"); err == nil || !strings.Contains(err.Error(), "empty.csv is empty: a calendar starts with the header line") {
		t.Errorf("NewReader of an empty file: %v", err)
	}

	// Columns in another order, in upper case, after a byte-order mark;
	// CRLF line ends.
	in := "\ufeffBRAND,Order_ID,language,registrant_email,registrant_name,mode,expiry,domain\r\n" +
		"b,O-1,fr,x@mail.example,X,renew,2027-06-01,x.example\r\n"
	r, err := calendar.NewReader(strings.NewReader(in), "reordered.csv")
	if err != nil {
		t.Fatal(err)
	}
	row, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	want2 := calendar.Row{Line: 2, Status: lifecycle.Active, Domain: store.Domain{Name: "x.example", Mode: scheduler.ModeRenew,
		Expiry:     time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC),
		Registrant: store.Registrant{Name: "X", Email: "x@mail.example", Language: "fr"}, OrderID: "O-1", Brand: "b"}}
	if diff := cmp.Diff(want2, row); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last row: %v, want io.EOF", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("again after the last row: %v, want io.EOF", err)
	}
}

func TestHeaderOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	st, rejected := b.importString(t, "head.csv", header)
	if st != (calendar.Stats{}) || len(rejected) != 0 {
		t.Errorf("header-only import: %+v, %v", st, rejected)
	}
}

func TestDomainName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "example.com", want: "example.com"},
		{in: "EXAMPLE.Com", want: "example.com"},
		{in: " example.com. ", want: "example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "a-b.c-d.example", want: "a-b.c-d.example"},
		{in: "", err: "domain is empty"},
		{in: ".", err: "domain is empty"},
		{in: "example", err: "not a registrable domain name"},
		{in: "-a.example", err: "not a valid domain name"},
		{in: "a..example", err: "not a valid domain name"},
		{in: "a b.example", err: "not a valid domain name"},
		{in: "under_score.example", err: "not a valid domain name"},
		{in: strings.Repeat("a", 64) + ".example", err: "not a valid domain name"},
	} {
		got, err := calendar.DomainName(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("DomainName(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("DomainName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2027-12-31", time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)},
		{"2028-02-29", time.Date(2028, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"2027-12-31T23:59:59Z", time.Date(2027, 12, 31, 23, 59, 59, 0, time.UTC)},
		{"2027-12-31T23:59:59-05:00", time.Date(2028, 1, 1, 4, 59, 59, 0, time.UTC)},
	} {
		got, err := calendar.ParseExpiry(tc.in)
		if err != nil || !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("ParseExpiry(%q) = %v (%s), %v; want %v UTC", tc.in, got, got.Location(), err, tc.want)
		}
	}
	for _, in := range []string{"", "2027-02-29", "31/12/2027", "2027-12-31 10:00", "tomorrow"} {
		if got, err := calendar.ParseExpiry(in); err == nil {
			t.Errorf("ParseExpiry(%q) = %v, want an error", in, got)
		}
	}
}

func TestImportStopsAtReadError(t *testing.T) {
	t.Parallel()
	b := setup(t)
	boom := errors.New("disk on fire")
	in := io.MultiReader(strings.NewReader(header+"a.example,2027-06-01,renew,A,a@mail.example,,,\n"), errReader{boom})
	r, err := calendar.NewReader(in, "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	_, err = calendar.Import(r, b.db, b.opts, func(e *calendar.RowError) { t.Errorf("rejected %v", e) })
	if !errors.Is(err, boom) {
		t.Errorf("Import: %v, want the read error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
