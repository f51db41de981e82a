package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/errpd/errpd/store"
)

// Format is a report's file format.
type Format string

const (
	CSV   Format = "csv"
	JSONL Format = "jsonl" // one row per line, then {"summary": {...}}
	HTML  Format = "html"  // one self-contained printable page
)

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case CSV, JSONL, HTML:
		return f, nil
	}
	return "", fmt.Errorf("format %q is not csv, jsonl or html", s)
}

// Write writes the report of the notices f matches to w and returns its
// summary. generated is the time the report states it was made at. CSV and
// JSONL read the store once; HTML reads it twice (the summary and chart come
// before the table), holding only per-day counts in between.
func Write(w io.Writer, db *store.DB, f Filter, format Format, generated time.Time) (Summary, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var sum Summary
	var err error
	switch format {
	case CSV:
		sum, err = writeCSV(bw, db, f, NewSummary(f, generated))
	case JSONL:
		sum, err = writeJSONL(bw, db, f, NewSummary(f, generated))
	case HTML:
		sum, err = writeHTML(bw, db, f, generated)
	default:
		_, err = ParseFormat(string(format))
	}
	if err != nil {
		return sum, err
	}
	return sum, bw.Flush()
}

// header is the CSV header, in column order.
var header = []string{
	"domain", "domain_unicode", "tld", "mode", "expiry", "notice", "opens", "deadline",
	"icann_window", "state", "sent_at", "in_window", "recipient", "from", "envelope_from",
	"language", "language_fallback", "message_id", "sha256", "smtp_reply", "attempts", "order_id", "uploaded_at",
	"ascio_result", "proved_in_time", "why_not_sent", "step",
	"covered_by_ascio", "closed_reason",
	"bounce", "bounce_status", "bounced_at", "contact_flag",
}

// record is the row as CSV fields, in header's order.
func (r *Row) record() []string { return r.appendRecord(nil, new(stamper)) }

// appendRecord appends the row's CSV fields to b: a report reuses one
// slice for all its rows. The times are written into st, whose strings
// last until its next reset.
func (r *Row) appendRecord(b []string, st *stamper) []string {
	return append(b,
		r.Domain, r.DomainUnicode, r.TLD, r.Mode, st.stamp(r.Expiry), r.Notice, st.stamp(r.Opens),
		st.stamp(r.Deadline), r.ICANNWindow, r.State, st.stamp(r.SentAt), yesNo(r.InWindow),
		r.Recipient, r.From, r.EnvelopeFrom, r.Language, r.LanguageFallback, r.MessageID, r.SHA256, r.SMTPReply,
		strconv.Itoa(r.Attempts), r.OrderID, st.stamp(r.UploadedAt), r.AscioResult,
		yesNo(r.ProvedInTime), r.WhyNotSent, r.Step,
		r.CoveredByAscio, r.ClosedReason,
		r.Bounce, r.BounceStatus, st.stamp(r.BouncedAt), r.ContactFlag,
	)
}

// stamper writes a row's times (stamp) into one buffer it reuses, instead
// of a string allocated for each: six a row, the most a report allocated.
type stamper struct{ b []byte }

// stamp is stamp(t), valid until the next reset.
func (s *stamper) stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	start := len(s.b)
	s.b = t.UTC().AppendFormat(s.b, time.RFC3339)
	return view(s.b[start:])
}

// reset lets the next stamps reuse the buffer.
func (s *stamper) reset() { s.b = s.b[:0] }

func writeCSV(w io.Writer, db *store.DB, f Filter, sum Summary) (Summary, error) {
	if _, err := w.Write(appendCSV(nil, header)); err != nil {
		return sum, err
	}
	return writeEncoded(w, db, f, sum, func() rowEncoder {
		var rec []string
		var st stamper
		return func(dst []byte, r *Row) ([]byte, error) {
			st.reset()
			rec = r.appendRecord(rec[:0], &st)
			return appendCSV(dst, rec), nil
		}
	})
}

// rowEncoder appends a row in a report's format to dst.
type rowEncoder func(dst []byte, r *Row) ([]byte, error)

// encoded is a batch of rows as a report's bytes, and their counts.
type encoded struct {
	bytes *[]byte // put back into the batchBytes once written
	sum   Summary
}

// batchBytes recycles the bytes of the batches a report wrote: a month's
// report writes 80 MB, which were as many fresh pages of heap (a costly
// page fault each) when each batch had its own. About three batches a
// worker are in flight at a time (readIDs), so as many are kept; a
// sync.Pool would drop them after two collections.
type batchBytes chan *[]byte

func (f batchBytes) get() *[]byte {
	select {
	case b := <-f:
		*b = (*b)[:0]
		return b
	default:
		return new([]byte)
	}
}

func (f batchBytes) put(b *[]byte) {
	select {
	case f <- b:
	default:
	}
}

// encodedBatch is the batcher of a report written as CSV or JSONL: each
// worker encodes and counts its own rows.
type encodedBatch struct {
	free batchBytes
	out  *[]byte // the batch's bytes so far
	enc  rowEncoder
	sum  Summary // counts since the last batch, with the report's cutoff
}

func (b *encodedBatch) add(r *Row) (err error) {
	b.sum.Add(*r)
	*b.out, err = b.enc(*b.out, r)
	return err
}

func (b *encodedBatch) batch() encoded {
	out := encoded{bytes: b.out, sum: b.sum}
	b.out = b.free.get()
	b.sum = b.sum.empty()
	return out
}

// writeEncoded writes the rows f matches to w with the encoders newEncoder
// makes (one a worker), and adds their counts to sum.
func writeEncoded(w io.Writer, db *store.DB, f Filter, sum Summary, newEncoder func() rowEncoder) (Summary, error) {
	free := make(batchBytes, 3*runtime.GOMAXPROCS(0)+2)
	base := sum.empty() // made here: the workers must not read sum, which take adds to
	newBatcher := func() batcher[encoded] {
		return &encodedBatch{free: free, out: free.get(), enc: newEncoder(), sum: base}
	}
	err := batches(db, f, newBatcher, func(e encoded) error {
		sum.merge(e.sum)
		_, err := w.Write(*e.bytes)
		free.put(e.bytes)
		return err
	})
	return sum, err
}

// appendCSV appends record as one CSV line, each cell made safe (CSVCell),
// exactly as CSVWriter writes it (FuzzAppendCSV holds it to that): a
// report's rows are encoded by the workers that read them, into bytes of
// their own, and encoding/csv's writer took a sixth of a report's time.
func appendCSV(dst []byte, record []string) []byte {
	for n, field := range record {
		if n > 0 {
			dst = append(dst, ',')
		}
		if field != "" && strings.IndexByte(formulaStarts, field[0]) >= 0 {
			field = "'" + field
		}
		if !needsQuotes(field) {
			dst = append(dst, field...)
			continue
		}
		dst = append(dst, '"')
		for {
			i := strings.IndexByte(field, '"')
			if i < 0 {
				break
			}
			dst = append(dst, field[:i+1]...)
			dst = append(dst, '"')
			field = field[i+1:]
		}
		dst = append(dst, field...)
		dst = append(dst, '"')
	}
	return append(dst, '\n')
}

// needsQuotes is encoding/csv's rule for a comma and no CRLF: a field with
// a comma, a quote or a line break, a field that starts with a space, and
// \. are quoted.
func needsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` {
		return true
	}
	for i := 0; i < len(field); i++ {
		switch field[i] {
		case ',', '"', '\r', '\n':
			return true
		}
	}
	r1, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r1)
}

// formulaStarts are the first characters that make a spreadsheet read a
// cell as a formula (OWASP, CSV injection): =, +, -, @, tab, CR.
const formulaStarts = "=+-@\t\r"

// CSVCell is s made safe for a spreadsheet: a cell that starts like a
// formula gets a leading single quote, so that it shows as the text it is.
// Replies from relays and Ascio, reasons and addresses come from peers and
// registrants; an auditor opens the report in a spreadsheet.
func CSVCell(s string) string {
	if s != "" && strings.IndexByte(formulaStarts, s[0]) >= 0 {
		return "'" + s
	}
	return s
}

// CSVWriter is encoding/csv's writer with every cell passed through
// CSVCell: the one way errpd writes CSV (the report, errpd steps --csv,
// errpd domains --csv).
type CSVWriter struct {
	*csv.Writer
	cells []string
}

// NewCSVWriter writes CSV to w.
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{Writer: csv.NewWriter(w)} }

// Write writes one record, each cell made safe.
func (w *CSVWriter) Write(record []string) error {
	w.cells = w.cells[:0]
	for _, c := range record {
		w.cells = append(w.cells, CSVCell(c))
	}
	return w.Writer.Write(w.cells)
}

// WriteAll writes records, each cell made safe, and flushes.
func (w *CSVWriter) WriteAll(records [][]string) error {
	for _, r := range records {
		if err := w.Write(r); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

func writeJSONL(w io.Writer, db *store.DB, f Filter, sum Summary) (Summary, error) {
	sum, err := writeEncoded(w, db, f, sum, func() rowEncoder {
		var aw appendWriter
		enc := json.NewEncoder(&aw)
		enc.SetEscapeHTML(false)
		return func(dst []byte, r *Row) ([]byte, error) {
			aw = dst
			err := enc.Encode(r)
			return aw, err
		}
	})
	if err != nil {
		return sum, err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return sum, enc.Encode(struct {
		Summary Summary `json:"summary"`
	}{sum})
}

// appendWriter appends what is written to it.
type appendWriter []byte

func (w *appendWriter) Write(p []byte) (int, error) {
	*w = append(*w, p...)
	return len(p), nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
