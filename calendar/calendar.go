// Package calendar reads an expiry calendar in CSV form: one domain a row,
// checked field by field. A bad row is reported with its line number and
// reason and does not stop the rows after it.
package calendar

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/language"

	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Columns are the header names a calendar must have, in any order.
var Columns = []string{"domain", "expiry", "mode", "registrant_name", "registrant_email", "language", "order_id", "brand"}

// StatusColumn is the optional column saying what happened to a domain
// (see lifecycle.Status); without it every row is active.
const StatusColumn = "status"

// RowError is one rejected row.
type RowError struct {
	File   string
	Line   int
	Field  string
	Reason string
}

func (e RowError) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Reason)
}

// Row is one good row, as the domain it describes.
type Row struct {
	Line   int
	Domain store.Domain
	Status lifecycle.Status
}

// Reader streams a calendar.
type Reader struct {
	// Brands, when not nil, are the configured brands: a row naming
	// another is rejected.
	Brands []string

	file string
	csv  *csv.Reader
	col  map[string]int
	ncol int            // fields in the header, and so in every row
	seen map[string]int // domain -> first line, to catch a domain listed twice
}

// NewReader reads the header row and checks that every column is there.
// file names the input in errors.
func NewReader(r io.Reader, file string) (*Reader, error) {
	c := csv.NewReader(r)
	c.FieldsPerRecord = -1 // a short row is reported as a row error, not a file error
	c.TrimLeadingSpace = true
	c.ReuseRecord = true
	head, err := c.Read()
	if err != nil {
		return nil, headerError(file, nil, err, nil)
	}
	col := map[string]int{}
	for i, h := range head {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	var missing []string
	for _, name := range Columns {
		if _, ok := col[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, headerError(file, head, nil, missing)
	}
	return &Reader{file: file, csv: c, col: col, ncol: len(head), seen: map[string]int{}}, nil
}

// Next returns the next good row, or a *RowError for a bad one (and the
// caller may go on), or io.EOF at the end.
func (r *Reader) Next() (Row, error) {
	rec, err := r.csv.Read()
	if err == io.EOF {
		return Row{}, io.EOF
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Row{}, &RowError{File: r.file, Line: pe.Line, Field: "row", Reason: pe.Err.Error()}
		}
		return Row{}, fmt.Errorf("%s: %w", r.file, err)
	}
	// Only now: after a parse error in a row's first field FieldPos panics.
	line, _ := r.csv.FieldPos(0)
	bad := func(field, format string, a ...any) (Row, error) {
		return Row{}, &RowError{File: r.file, Line: line, Field: field, Reason: fmt.Sprintf(format, a...)}
	}
	get := func(name string) string {
		i := r.col[name]
		if i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	if len(rec) != r.ncol {
		// Columns out of line (a missing field, an unquoted comma) would
		// put a value in the wrong field.
		return bad("row", "has %d fields, the header has %d", len(rec), r.ncol)
	}
	// Fields go into mail headers, logs and reports: bytes that are not
	// text, or line breaks inside quotes, are refused here, not there.
	for _, name := range Columns {
		if v := get(name); !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return bad(name, "%q holds invalid UTF-8 or a control character", v)
		}
	}
	name, err := DomainName(get("domain"))
	if err != nil {
		return bad("domain", "%v", err)
	}
	expiry, err := ParseExpiry(get("expiry"))
	if err != nil {
		return bad("expiry", "%v", err)
	}
	mode, err := scheduler.ParseMode(strings.ToLower(get("mode")))
	if err != nil {
		return bad("mode", "%v", err)
	}
	email := get("registrant_email")
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return bad("registrant_email", "%q is not an e-mail address", email)
	}
	lang := strings.ToLower(get("language"))
	if lang != "" {
		if _, err := language.Parse(lang); err != nil {
			return bad("language", "%q is not a BCP 47 language tag (e.g. en, de, pt-br)", lang)
		}
	}
	brand := get("brand")
	if brand != "" && r.Brands != nil && !slices.Contains(r.Brands, brand) {
		configured := strings.Join(r.Brands, ", ")
		if configured == "" {
			configured = "none"
		}
		return bad("brand", "%q is not a configured brand (configured: %s; empty means the [mail] sender)", brand, configured)
	}
	status := lifecycle.Active
	if _, ok := r.col[StatusColumn]; ok {
		if status, err = lifecycle.ParseStatus(get(StatusColumn)); err != nil {
			return bad(StatusColumn, "%v", err)
		}
	}
	if first, dup := r.seen[name]; dup {
		return bad("domain", "%s is already on line %d", name, first)
	}
	r.seen[name] = line
	return Row{Line: line, Status: status, Domain: store.Domain{
		Name:   name,
		Mode:   mode,
		Expiry: expiry,
		Registrant: store.Registrant{
			Name:     get("registrant_name"),
			Email:    email,
			Language: lang,
		},
		OrderID: get("order_id"),
		Brand:   brand,
	}}, nil
}

// DomainName checks a domain name and returns its lower-case A-label form,
// converting IDN U-labels.
func DomainName(s string) (string, error) {
	s = strings.TrimSuffix(strings.TrimSpace(s), ".")
	if s == "" {
		return "", errors.New("domain is empty")
	}
	if !utf8.ValidString(s) {
		// idna would encode the bytes as U+FFFD, a label it then refuses.
		return "", fmt.Errorf("%q is not valid UTF-8", s)
	}
	a, err := idna.Lookup.ToASCII(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid domain name: %v", s, err)
	}
	a = strings.ToLower(a)
	if !strings.Contains(a, ".") || len(a) > 253 {
		return "", fmt.Errorf("%q is not a registrable domain name", s)
	}
	for _, label := range strings.Split(a, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", fmt.Errorf("%q is not a valid domain name: bad label %q", s, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("%q is not a valid domain name: bad character %q", s, c)
			}
		}
	}
	return a, nil
}

// Expiries outside these years are refused: a plan's dates around them
// would leave the years 0 to 9999 that the store can record (encoding/json
// writes no others), and no registration runs so far.
const minExpiryYear, maxExpiryYear = 1970, 9000

// ParseExpiry reads an expiry as RFC 3339, or as a bare date meaning 00:00 UTC.
func ParseExpiry(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err == nil {
		t = t.UTC()
	} else if t, err = time.Parse(time.DateOnly, s); err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-12-31T00:00:00Z) nor a date (2026-12-31)", s)
	}
	if y := t.Year(); y < minExpiryYear || y > maxExpiryYear {
		return time.Time{}, fmt.Errorf("%q is not between the years %d and %d", s, minExpiryYear, maxExpiryYear)
	}
	return t, nil
}
