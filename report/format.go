package report

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

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
func (r *Row) record() []string { return r.appendRecord(nil) }

// appendRecord appends the row's CSV fields to b: a report reuses one
// slice for all its rows.
func (r *Row) appendRecord(b []string) []string {
	return append(b,
		r.Domain, r.DomainUnicode, r.TLD, r.Mode, stamp(r.Expiry), r.Notice, stamp(r.Opens),
		stamp(r.Deadline), r.ICANNWindow, r.State, stamp(r.SentAt), yesNo(r.InWindow),
		r.Recipient, r.From, r.EnvelopeFrom, r.Language, r.LanguageFallback, r.MessageID, r.SHA256, r.SMTPReply,
		strconv.Itoa(r.Attempts), r.OrderID, stamp(r.UploadedAt), r.AscioResult,
		yesNo(r.ProvedInTime), r.WhyNotSent, r.Step,
		r.CoveredByAscio, r.ClosedReason,
		r.Bounce, r.BounceStatus, stamp(r.BouncedAt), r.ContactFlag,
	)
}

func writeCSV(w io.Writer, db *store.DB, f Filter, sum Summary) (Summary, error) {
	cw := NewCSVWriter(w)
	if err := cw.Write(header); err != nil {
		return sum, err
	}
	var rec []string
	err := Rows(db, f, func(r Row) error {
		sum.Add(r)
		rec = r.appendRecord(rec[:0])
		return cw.Write(rec)
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	return sum, err
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
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	err := Rows(db, f, func(r Row) error {
		sum.Add(r)
		return enc.Encode(r)
	})
	if err != nil {
		return sum, err
	}
	return sum, enc.Encode(struct {
		Summary Summary `json:"summary"`
	}{sum})
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
