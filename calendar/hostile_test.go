package calendar_test

import (
	"errors"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/store"
)

// row is a good calendar row for domain with the given registrant name,
// e-mail and order id.
func row(domain, name, email, order string) string {
	return domain + ",2027-06-01,renew," + name + "," + email + ",en," + order + ",\n"
}

// Hostile rows (issue 11): each is rejected by line and field with what
// was wrong, and the good row after it still imports.
func TestHostileRowsAreRejectedByLine(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("é", n) } // two bytes, one character
	for _, tc := range []struct {
		name   string
		row    string // line 2
		field  string
		reason string // a part of it
	}{
		{"name of 201 characters", row("a.example", long(201), "a@mail.example", ""), "registrant_name", "is 201 characters, more than 200"},
		{"e-mail of 255 characters", row("a.example", "A", strings.Repeat("a", 242)+"@mail.example", ""), "registrant_email", "is 255 characters, more than 254"},
		{"order id of 65 characters", row("a.example", "A", "a@mail.example", strings.Repeat("9", 65)), "order_id", "is 65 characters, more than 64"},
		{"domain of 254 characters", row(strings.Repeat("a.", 125)+"abcd", "A", "a@mail.example", ""), "domain", "is 254 characters, more than 253"},
		{"NUL in a name", row("a.example", "A\x00na", "a@mail.example", ""), "registrant_name", "a NUL byte at character 2"},
		{"control character in an order id", row("a.example", "A", "a@mail.example", "X\x1b[2J"), "order_id", "control character U+001B at character 2"},
		{"tab in a name", row("a.example", "A\tna", "a@mail.example", ""), "registrant_name", "control character U+0009"},
		{"C1 control in a name", row("a.example", "A\u0085na", "a@mail.example", ""), "registrant_name", "control character U+0085"},
		{"invalid UTF-8 in a name", row("a.example", "J\xf6rg", "a@mail.example", ""), "registrant_name", "byte 0xF6 at character 2 is not UTF-8"},
		{"0xff in the brand", "a.example,2027-06-01,renew,A,a@mail.example,en,,\xff\n", "brand", "byte 0xFF at character 1 is not UTF-8"},
		{"line break in a quoted name", "a.example,2027-06-01,renew,\"A\r\nB\",a@mail.example,en,,\n", "row", "the quote opened at column 28 is not closed on this line"},
		{"unterminated quote", "a.example,2027-06-01,renew,\"Ana,a@mail.example,en,,\n", "row", "the quote opened at column 28 is not closed on this line"},
		{"line over the cap", "a.example,2027-06-01,renew," + strings.Repeat("x", calendar.MaxLine) + ",a@mail.example,en,,\r\n", "row", "the line is 65583 bytes, more than 65536; skipped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			in := header + tc.row + row("after.example", "Ana", "ana@mail.example", "")
			st, rejected := b.importString(t, "hostile.csv", in)
			if len(rejected) == 0 {
				t.Fatalf("nothing rejected; stored %v", slices.Sorted(maps.Keys(b.domains(t))))
			}
			e := rejected[0]
			if e.File != "hostile.csv" || e.Line != 2 || e.Field != tc.field || !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("rejected %s:%d: %s: %q; want hostile.csv:2: %s: …%s…", e.File, e.Line, e.Field, e.Reason, tc.field, tc.reason)
			}
			if len(e.Reason) > 300 {
				t.Errorf("the reason is %d bytes; it echoes the field", len(e.Reason))
			}
			if _, ok := b.domains(t)["after.example"]; !ok || st.Added != 1 {
				t.Errorf("the row after the hostile one: stats %+v, rejected %v", st, rejected)
			}
		})
	}
}

// Each field at its limit is accepted, counted in characters, not bytes.
func TestFieldsAtTheirLimitImport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	name := strings.Repeat("é", 200)
	email := strings.Repeat("a", 241) + "@mail.example"
	order := strings.Repeat("9", 64)
	domain := strings.Repeat("a.", 125) + "abc" // 253
	st, rejected := b.importString(t, "limits.csv", header+row(domain, name, email, order))
	if len(rejected) != 0 || st.Added != 1 {
		t.Fatalf("stats %+v, rejected %v", st, rejected)
	}
	d := b.domains(t)[domain]
	if d.Registrant.Name != name || d.Registrant.Email != email || d.OrderID != order {
		t.Errorf("stored %+v", d)
	}
}

// A quote that is never closed costs its own line only: before, it
// swallowed every row after it into one field and the error named the
// last line of the file.
func TestUnterminatedQuoteSwallowsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := header +
		row("a.example", "Ana", "a@mail.example", "") + // 2
		row("b.example", `"Bo`, "b@mail.example", "") + // 3: unterminated
		row("c.example", "Cy", "c@mail.example", "") + // 4
		row("d.example", "Di", "d@mail.example", "") // 5
	st, rejected := b.importString(t, "quote.csv", in)
	if len(rejected) != 1 || rejected[0].Line != 3 || !strings.Contains(rejected[0].Reason, "column 28 is not closed on this line") {
		t.Errorf("rejected %v, want line 3 alone, naming the quote's column", rejected)
	}
	got := slices.Sorted(maps.Keys(b.domains(t)))
	if want := []string{"a.example", "c.example", "d.example"}; !slices.Equal(got, want) || st.Rows != 4 {
		t.Errorf("stored %v, want %v; stats %+v", got, want, st)
	}
}

// A line far over the cap is read past, not into memory: before, the CSV
// reader held the whole line (a 2 GB line was OOM-killed at 17.9 GB).
func TestLongLineIsNotHeld(t *testing.T) {
	// Not parallel: it measures this goroutine's allocations.
	const size = 64 << 20
	in := io.MultiReader(
		strings.NewReader(header+"a.example,2027-06-01,renew,"),
		io.LimitReader(repeatReader('x'), size),
		strings.NewReader(",a@mail.example,en,,\n"+row("b.example", "Bo", "b@mail.example", "")),
	)
	r, err := calendar.NewReader(in, "long.csv")
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, err = r.Next()
	runtime.ReadMemStats(&ms)
	var re *calendar.RowError
	if !errors.As(err, &re) || re.Line != 2 || !strings.Contains(re.Reason, "more than 65536; skipped") {
		t.Errorf("Next: %v, want line 2 rejected as too long", err)
	}
	if alloc := ms.TotalAlloc - before; alloc > 1<<20 {
		t.Errorf("reading past a %d MiB line allocated %d bytes", size>>20, alloc)
	}
	row, err := r.Next()
	if err != nil || row.Line != 3 || row.Domain.Name != "b.example" {
		t.Errorf("after the long line: %+v, %v", row, err)
	}
}

type repeatReader byte

func (c repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// A row its Check refuses is rejected as a notice error and not taken as
// seen: the same domain, fixed on a later line, imports.
func TestCheckRejectsRow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	in := header +
		row("a.example", `Ana\`, "a@mail.example", "") + // 2: refused
		row("a.example", "Ana", "a@mail.example", "") // 3: fixed
	r, err := calendar.NewReader(strings.NewReader(in), "check.csv")
	if err != nil {
		t.Fatal(err)
	}
	r.Check = func(d store.Domain) error {
		if strings.HasSuffix(d.Registrant.Name, `\`) {
			return errors.New("registrant e-mail: unclosed quoted-string")
		}
		return nil
	}
	var rejected []calendar.RowError
	st, err := calendar.Import(r, b.db, b.opts, func(e *calendar.RowError) { rejected = append(rejected, *e) })
	if err != nil {
		t.Fatal(err)
	}
	want := []calendar.RowError{{File: "check.csv", Line: 2, Field: "notice", Reason: "registrant e-mail: unclosed quoted-string"}}
	if !slices.Equal(rejected, want) || st.Added != 1 {
		t.Errorf("rejected %v, stats %+v; want %v and one added", rejected, st, want)
	}
}

// The header is bounded too.
func TestLongHeader(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("x", calendar.MaxLine+1) + "\n" + header
	if _, err := calendar.NewReader(strings.NewReader(in), "h.csv"); err == nil || !strings.Contains(err.Error(), "h.csv:1: the header line is 65537 bytes") {
		t.Errorf("NewReader: %v", err)
	}
}
