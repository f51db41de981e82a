package calendar_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/errpd/errpd/calendar"
)

const statusHeader = "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand,status\n"

func (b *bundle) importWith(t *testing.T, text string, brands []string, o calendar.Options) (calendar.Stats, []calendar.RowError, error) {
	t.Helper()
	r, err := calendar.NewReader(strings.NewReader(text), "cal.csv")
	if err != nil {
		t.Fatal(err)
	}
	r.Brands = brands
	o.Plan = b.opts
	var rejected []calendar.RowError
	st, err := calendar.ImportWith(r, b.db, o, func(e *calendar.RowError) { rejected = append(rejected, *e) })
	return st, rejected, err
}

// TestRowChecks: unknown status, unconfigured brand and a language that
// is not a BCP 47 tag are rejected by line, naming what is allowed.
func TestRowChecks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := statusHeader +
		"a.example,2027-06-01,renew,Ana,ana@mail.example,en,,,\n" + // 2: good, status empty
		"b.example,2027-06-01,renew,Ana,ana@mail.example,en,,,suspended\n" + // 3: unknown status
		"c.example,2027-06-01,renew,Ana,ana@mail.example,en,,acme,\n" + // 4: brand not configured
		"d.example,2027-06-01,renew,Ana,ana@mail.example,english!,,,\n" + // 5: not BCP 47
		"e.example,2027-06-01,renew,Ana,ana@mail.example,pt-BR,,shop,EXPIRED\n" // 6: good
	st, rejected, err := b.importWith(t, in, []string{"shop", "web"}, calendar.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		line         int
		field, parts string
	}{
		{3, "status", `status "suspended" is not one of active, expired, renewed, transferred, deleted, restored`},
		{4, "brand", `"acme" is not a configured brand (configured: shop, web`},
		{5, "language", `"english!" is not a BCP 47 language tag`},
	}
	if len(rejected) != len(want) {
		t.Fatalf("rejected %v, want %d rows", rejected, len(want))
	}
	for i, w := range want {
		if r := rejected[i]; r.Line != w.line || r.Field != w.field || !strings.Contains(r.Reason, w.parts) {
			t.Errorf("rejection %d: %v, want line %d field %s with %q", i, r, w.line, w.field, w.parts)
		}
	}
	if st.Added != 2 {
		t.Errorf("added %d, want 2", st.Added)
	}
}

// TestDryRunWritesNothing: the counts of a real import, and no change.
func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := statusHeader +
		"a.example,2027-06-01,renew,Ana,ana@mail.example,en,,,\n" +
		"b.example,2027-06-01,renew,Ana,ana@mail.example,en,,,\n"
	if _, _, err := b.importWith(t, in, nil, calendar.Options{}); err != nil {
		t.Fatal(err)
	}
	before := b.state(t)
	next := statusHeader +
		"a.example,2027-06-01,renew,Ana,ana@mail.example,en,,,transferred\n" +
		"b.example,2027-06-01,renew,Bea,bea@mail.example,en,,,\n" +
		"c.example,2027-06-01,renew,Cy,cy@mail.example,en,,,\n" +
		"d.example,2027-06-01,renew,Cy,cy@mail.example,xx-!,,,\n"
	st, rejected, err := b.importWith(t, next, nil, calendar.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 1 || st.Updated != 1 || st.Closed != 1 || len(rejected) != 1 {
		t.Errorf("dry run: %+v, %d rejected; want 1 added, 1 updated, 1 closed, 1 rejected", st, len(rejected))
	}
	if after := b.state(t); len(after.Steps) != len(before.Steps) || after.Audit != before.Audit {
		t.Errorf("dry run wrote: %d steps, %d audit records; before %d, %d", len(after.Steps), after.Audit, len(before.Steps), before.Audit)
	}
	if _, ok := b.domains(t)["c.example"]; ok {
		t.Error("dry run stored c.example")
	}
}

// TestFullSync closes the domains a full sync does not list, and refuses
// before writing anything when more than MaxDrop would close.
func TestFullSync(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var all strings.Builder
	all.WriteString(statusHeader)
	for _, n := range "abcdefghij" {
		all.WriteString(string(n) + ".example,2027-06-01,expire,Ana,ana@mail.example,en,,,\n")
	}
	if _, _, err := b.importWith(t, all.String(), nil, calendar.Options{}); err != nil {
		t.Fatal(err)
	}
	before := b.state(t)
	// Two of ten missing: 20% > 10%.
	short := strings.Replace(strings.Replace(all.String(), "a.example,", "new.example,", 1), "b.example,2027-06-01,expire,Ana,ana@mail.example,en,,,\n", "", 1)
	_, _, err := b.importWith(t, short, nil, calendar.Options{FullSync: true, MaxDrop: 0.10})
	if !errors.Is(err, calendar.ErrTooManyDrops) || !strings.Contains(err.Error(), "would close 2 of 10 active domains (20.0%), more than --max-drop 10.0%") {
		t.Errorf("full sync dropping 2 of 10: %v, want a refusal naming the counts", err)
	}
	if after := b.state(t); after.Audit != before.Audit {
		t.Errorf("a refused full sync wrote %d audit records", after.Audit-before.Audit)
	}
	st, _, err := b.importWith(t, short, nil, calendar.Options{FullSync: true, MaxDrop: 0.20})
	if err != nil {
		t.Fatal(err)
	}
	if st.Closed != 2 || st.Added != 1 || st.Active != 10 {
		t.Errorf("full sync: %+v, want 2 closed, 1 added of 10 active", st)
	}
	ds := b.domains(t)
	for _, n := range []string{"a.example", "b.example"} {
		if d := ds[n]; d.Left == nil || d.Left.Reason != "not in calendar, full sync of cal.csv" {
			t.Errorf("%s left %+v, want the full sync's reason", n, d.Left)
		}
	}
	if d := ds["c.example"]; d.Left != nil {
		t.Errorf("c.example left: %+v", d.Left)
	}
	// The domains that left count no more: the same sync again closes nothing.
	st, _, err = b.importWith(t, short, nil, calendar.Options{FullSync: true, MaxDrop: 0})
	if err != nil || st.Closed != 0 || st.Active != 9 {
		t.Errorf("the same full sync again: %+v, %v; want nothing closed of 9 active", st, err)
	}
}
