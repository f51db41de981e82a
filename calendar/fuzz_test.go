package calendar_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
)

// addFiles adds the calendars under testdata as seeds, so that the
// fuzzer starts from real ones as well as from the corpus.
func addFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReader reads any bytes as a calendar. Properties: no panic; every
// error is a *RowError naming the file and a line, or ends the reading;
// an accepted row holds a domain that DomainName leaves as it is, a UTC
// expiry, a known mode, and fields that are valid UTF-8 without control
// characters (they end up in mail headers, logs and reports).
func FuzzReader(f *testing.F) {
	addFiles(f, "testdata/calendar.csv", "testdata/renewed.csv", "testdata/missing-columns.csv", "../testdata/example-calendar.golden.csv")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := calendar.NewReader(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("header error %q does not name the file", err)
			}
			return
		}
		seen := map[string]bool{}
		// Each call consumes at least one line, so a calendar of n bytes
		// has at most n+1 rows; more means the reader does not advance.
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatalf("more than %d rows out of %d bytes", i, len(data))
			}
			row, err := r.Next()
			if err == io.EOF {
				return
			}
			var re *calendar.RowError
			if errors.As(err, &re) {
				if re.File != "fuzz.csv" || re.Line < 1 || re.Field == "" || re.Reason == "" {
					t.Fatalf("row error %+v lacks file, line, field or reason", re)
				}
				continue
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "fuzz.csv") {
					t.Fatalf("error %q does not name the file", err)
				}
				return
			}
			checkRow(t, row)
			if seen[row.Domain.Name] {
				t.Fatalf("line %d: domain %s accepted twice", row.Line, row.Domain.Name)
			}
			seen[row.Domain.Name] = true
		}
	})
}

func checkRow(t *testing.T, row calendar.Row) {
	t.Helper()
	d := row.Domain
	if row.Line < 2 {
		t.Errorf("row on line %d, before the header ends", row.Line)
	}
	if again, err := calendar.DomainName(d.Name); err != nil || again != d.Name {
		t.Errorf("line %d: stored name %q is not a fixed point of DomainName: %q, %v", row.Line, d.Name, again, err)
	}
	if d.Expiry.IsZero() || d.Expiry.Location() != time.UTC {
		t.Errorf("line %d: expiry %v is zero or not UTC", row.Line, d.Expiry)
	}
	if d.Mode != scheduler.ModeRenew && d.Mode != scheduler.ModeExpire {
		t.Errorf("line %d: mode %q", row.Line, d.Mode)
	}
	for name, v := range map[string]string{
		"registrant_name": d.Registrant.Name, "registrant_email": d.Registrant.Email,
		"language": d.Registrant.Language, "order_id": d.OrderID, "brand": d.Brand,
	} {
		if !clean(v) {
			t.Errorf("line %d: %s %q is not valid UTF-8 free of control characters", row.Line, name, v)
		}
	}
}

func clean(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// FuzzDomainName: no panic; an accepted name is a fixed point (lower-case
// A-labels, at most 253 bytes, labels of letters, digits and inner
// hyphens), so that the same domain is always stored under one key.
func FuzzDomainName(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.Example.", "xn--bcher-kva.example", " a.b ", "a..b", "-a.b", "é", ".", "xn--.com", "ß.de", "a\u200db.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := calendar.DomainName(s)
		if err != nil {
			if got != "" {
				t.Fatalf("DomainName(%q) = %q with error %v", s, got, err)
			}
			return
		}
		again, err := calendar.DomainName(got)
		if err != nil || again != got {
			t.Fatalf("DomainName(%q) = %q, but DomainName(%q) = %q, %v", s, got, got, again, err)
		}
		if len(got) > 253 || got != strings.ToLower(got) || !strings.Contains(got, ".") {
			t.Fatalf("DomainName(%q) = %q: too long, not lower case or a single label", s, got)
		}
		for _, c := range []byte(got) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				t.Fatalf("DomainName(%q) = %q holds %q", s, got, c)
			}
		}
	})
}

// FuzzParseExpiry: no panic; an accepted expiry is UTC and written back
// as RFC 3339 it parses to the same instant (the stored form round-trips).
func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"2026-12-31", "2026-12-31T00:00:00Z", "2027-07-01T00:00:00+02:00", "2024-02-29", "2023-02-29",
		"2026-12-31T23:59:60Z", "0000-01-01", "9999-12-31T23:59:59.999999999-23:59", "2026-12-31 00:00:00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := calendar.ParseExpiry(s)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("ParseExpiry(%q) = %v with error %v", s, got, err)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseExpiry(%q) = %v, not UTC", s, got)
		}
		again, err := calendar.ParseExpiry(got.Format(time.RFC3339Nano))
		if err != nil || !again.Equal(got) {
			t.Fatalf("ParseExpiry(%q) = %v; written back it reads %v, %v", s, got, again, err)
		}
	})
}
