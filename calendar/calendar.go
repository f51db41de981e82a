// Package calendar reads an expiry calendar in CSV form: one domain a row,
// checked field by field. A bad row is reported with its line number and
// reason and does not stop the rows after it.
//
// The calendar is read one line at a time, and each line is one row: a
// line is at most MaxLine bytes (a longer one is skipped, not held), and a
// quoted field must close on its own line, so that a stray quote costs one
// row instead of swallowing the rows after it. No field of a calendar may
// hold a line break anyway, as every field ends up in a notice's headers
// or one-line template variables.
package calendar

import (
	"bufio"
	"bytes"
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

	"github.com/errpd/errpd/internal/peertext"
	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Columns are the header names a calendar must have, in any order.
var Columns = []string{"domain", "expiry", "mode", "registrant_name", "registrant_email", "language", "order_id", "brand"}

// StatusColumn is the optional column saying what happened to a domain
// (see lifecycle.Status); without it every row is active.
const StatusColumn = "status"

// MaxLine is the longest line, in bytes without its line end, that a
// calendar may have. A row of the longest fields is a few KiB; a longer
// line is a broken file and is skipped rather than read into memory.
const MaxLine = 64 << 10

// Limits are the most characters a field may have: what the registry
// and mail standards allow (a domain name 253, an address 254 per RFC
// 5321's path), and what a notice and Ascio's order reference can carry.
var Limits = map[string]int{
	"domain":           253,
	"expiry":           35, // RFC 3339 with fractional seconds
	"mode":             16,
	"registrant_name":  200,
	"registrant_email": 254,
	"order_id":         64,
	"language":         35, // the longest BCP 47 tag in practical use
	"brand":            64,
}

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
	// Check, when set, is asked about each row that passed every field
	// check; an error rejects the row as a "notice" error. errpd import
	// test-renders the row's notices with it, so that a row that can
	// never be sent is refused now rather than failing at its send date.
	Check func(store.Domain) error

	file  string
	in    *bufio.Reader // the calendar, a line at a time
	line  int           // the number of the last line read
	one   *bufio.Reader // feeds a single line to encoding/csv
	src   bytes.Reader
	names []string       // the header, by field index
	col   map[string]int // and by name
	seen  *seen          // the domains listed so far, to catch one listed twice
}

// NewReader reads the header row and checks that every column is there.
// file names the input in errors.
func NewReader(r io.Reader, file string) (*Reader, error) {
	// Room for a line of MaxLine bytes and its CR LF; bufio returns
	// ErrBufferFull for anything longer, before it is held.
	cr := &Reader{file: file, in: bufio.NewReaderSize(r, MaxLine+2), seen: newSeen()}
	cr.one = bufio.NewReader(&cr.src)
	var head []string
	for head == nil {
		line, long, err := cr.readLine()
		if err != nil {
			return nil, headerError(file, cr.line, nil, err, nil)
		}
		if long > 0 {
			return nil, fmt.Errorf("%s:%d: the header line is %d bytes, more than %d", file, cr.line, long, MaxLine)
		}
		if head, err = cr.parse(line); err != nil {
			return nil, fmt.Errorf("%s:%d: header: %w", file, cr.line, err)
		}
	}
	cr.col = map[string]int{}
	for i, h := range head {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		cr.col[h] = i
		cr.names = append(cr.names, h)
	}
	var missing []string
	for _, name := range Columns {
		if _, ok := cr.col[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, headerError(file, cr.line, head, nil, missing)
	}
	return cr, nil
}

// readLine returns the next line without its line end. A line longer than
// MaxLine is read past, not kept: it comes back as its length in long.
func (r *Reader) readLine() (line []byte, long int64, err error) {
	line, err = r.in.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long = int64(len(line))
		for err == bufio.ErrBufferFull {
			line, err = r.in.ReadSlice('\n')
			long += int64(len(line))
		}
		// The length without the line end, as MaxLine counts.
		switch {
		case bytes.HasSuffix(line, []byte("\r\n")):
			long -= 2
		case bytes.HasSuffix(line, []byte("\n")):
			long--
		}
		line = nil
	}
	switch {
	case err == io.EOF && long == 0 && len(line) == 0:
		return nil, 0, io.EOF
	case err != nil && err != io.EOF:
		return nil, 0, err
	}
	r.line++
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if long == 0 && len(line) > MaxLine {
		long = int64(len(line))
	}
	return line, long, nil
}

// parse reads one line as one CSV record: nil for an empty line.
func (r *Reader) parse(line []byte) ([]string, error) {
	r.src.Reset(line)
	r.one.Reset(&r.src)
	c := csv.NewReader(r.one) // uses r.one as it is: no buffer a line
	c.FieldsPerRecord = -1    // a short row is reported as a row error, not a file error
	c.TrimLeadingSpace = true
	rec, err := c.Read()
	if err == io.EOF {
		return nil, nil
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if pe.Err == csv.ErrQuote {
			if at := unclosedQuote(line); at >= 0 {
				return nil, fmt.Errorf("the quote opened at column %d is not closed on this line (a field may not span lines; the lines after it are read as rows of their own)", at+1)
			}
		}
		return nil, fmt.Errorf("column %d: %w", pe.Column, pe.Err)
	}
	return rec, err
}

// unclosedQuote is the index of the quote that opens a field and is not
// closed by the end of the line, or -1. It follows encoding/csv's rules:
// a field opens with a quote (after optional spaces), "" inside is a quote.
func unclosedQuote(line []byte) int {
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i < len(line) && line[i] == '"' {
			open := i
			for i++; ; i++ {
				j := bytes.IndexByte(line[i:], '"')
				if j < 0 {
					return open
				}
				i += j + 1
				if i >= len(line) || line[i] != '"' {
					break // closed
				}
			}
		}
		k := bytes.IndexByte(line[i:], ',')
		if k < 0 {
			return -1
		}
		i += k + 1
	}
	return -1
}

// Next returns the next good row, or a *RowError for a bad one (and the
// caller may go on), or io.EOF at the end.
func (r *Reader) Next() (Row, error) {
	for {
		line, long, err := r.readLine()
		if err == io.EOF {
			return Row{}, io.EOF
		}
		if err != nil {
			return Row{}, fmt.Errorf("%s:%d: %w", r.file, r.line+1, err)
		}
		if long > 0 {
			return r.reject("row", "the line is %d bytes, more than %d; skipped", long, MaxLine)
		}
		rec, err := r.parse(line)
		if err != nil {
			return r.reject("row", "%v", err)
		}
		if rec == nil {
			continue // an empty line
		}
		return r.row(rec)
	}
}

func (r *Reader) reject(field, format string, a ...any) (Row, error) {
	return Row{}, &RowError{File: r.file, Line: r.line, Field: field, Reason: fmt.Sprintf(format, a...)}
}

// name is a field's column name, for errors.
func (r *Reader) name(i int) string {
	if i < len(r.names) && r.names[i] != "" {
		return r.names[i]
	}
	return fmt.Sprintf("field %d", i+1)
}

// row checks a parsed line and makes it a domain.
func (r *Reader) row(rec []string) (Row, error) {
	// Every field, even one errpd does not read: bytes that are not text
	// are a broken export, and a replacement character would go out in
	// a notice to a registrant.
	for i, f := range rec {
		if reason := notText(f); reason != "" {
			return r.reject(r.name(i), "%s", reason)
		}
	}
	if len(rec) != len(r.names) {
		// Columns out of line (a missing field, an unquoted comma) would
		// put a value in the wrong field.
		return r.reject("row", "has %d fields, the header has %d", len(rec), len(r.names))
	}
	get := func(name string) string { return strings.TrimSpace(rec[r.col[name]]) }
	for _, name := range Columns {
		if max, n := Limits[name], utf8.RuneCountInString(get(name)); max > 0 && n > max {
			return r.reject(name, "is %d characters, more than %d", n, max)
		}
	}
	name, err := DomainName(get("domain"))
	if err != nil {
		return r.reject("domain", "%v", err)
	}
	expiry, err := ParseExpiry(get("expiry"))
	if err != nil {
		return r.reject("expiry", "%v", err)
	}
	mode, err := scheduler.ParseMode(strings.ToLower(get("mode")))
	if err != nil {
		return r.reject("mode", "%v", err)
	}
	email := get("registrant_email")
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return r.reject("registrant_email", "%q is not an e-mail address", email)
	}
	lang := strings.ToLower(get("language"))
	if lang != "" {
		if _, err := language.Parse(lang); err != nil {
			return r.reject("language", "%q is not a BCP 47 language tag (e.g. en, de, pt-br)", lang)
		}
	}
	brand := get("brand")
	if brand != "" && r.Brands != nil && !slices.Contains(r.Brands, brand) {
		configured := strings.Join(r.Brands, ", ")
		if configured == "" {
			configured = "none"
		}
		return r.reject("brand", "%q is not a configured brand (configured: %s; empty means the [mail] sender)", brand, configured)
	}
	status := lifecycle.Active
	if _, ok := r.col[StatusColumn]; ok {
		if status, err = lifecycle.ParseStatus(get(StatusColumn)); err != nil {
			return r.reject(StatusColumn, "%v", err)
		}
	}
	d := store.Domain{
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
	}
	if first := r.seen.line(name); first > 0 {
		return r.reject("domain", "%s is already on line %d", name, first)
	}
	if r.Check != nil {
		if err := r.Check(d); err != nil {
			return r.reject("notice", "%s", peertext.Cap(err.Error()))
		}
	}
	r.seen.add(name, r.line)
	return Row{Line: r.line, Status: status, Domain: d}, nil
}

// listed reports whether the calendar read so far listed the domain name
// (by its hash: a full sync's dropped domains are those not listed).
func (r *Reader) listed(name string) bool {
	return r.seen.line(name) > 0
}

// notText says what makes a field not text: invalid UTF-8, NUL or another
// control character (a tab too). "" when it is text.
func notText(s string) string {
	n := 0
	for i, c := range s {
		n++
		switch {
		case c == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			return fmt.Sprintf("byte 0x%02X at character %d is not UTF-8", s[i], n)
		case c == 0:
			return fmt.Sprintf("a NUL byte at character %d", n)
		case unicode.IsControl(c):
			return fmt.Sprintf("control character %U at character %d", c, n)
		}
	}
	return ""
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
