package report_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/store"
)

// TestWriteEqualsRows: a CSV or JSONL report, whose rows the workers that
// read them encode and count in batches, is byte for byte the report of
// Rows written one row at a time, and its summary the sum of every row's,
// however its period is cut into parts, passes and chunks.
func TestWriteEqualsRows(t *testing.T) {
	seeded := reporttest.Seed(t).DB
	all := report.Filter{From: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	stores := []struct {
		name    string
		db      *store.DB
		filters []report.Filter
	}{
		{"seeded", seeded, []report.Filter{all, {}, {TLD: "com"}, {To: generated()}}},
		{"periods", periodStore(t), []report.Filter{all, q2, {From: q2.To}, {From: q2.From, To: q2.To, TLD: "net"}, {Domains: []string{"a.com", "d05.net"}}}},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 3} {
		runtime.GOMAXPROCS(procs)
		for _, sizes := range [][2]int{{1, 1}, {2, 3}, {1000, 1000}} {
			restoreChunk, restoreCap := report.SetReadChunk(sizes[0]), report.SetPeriodCap(sizes[1])
			for _, s := range stores {
				for _, f := range s.filters {
					for _, format := range []report.Format{report.CSV, report.JSONL} {
						how := fmt.Sprintf("%s %s %+v, %d CPUs, %d a chunk, %d a pass", s.name, format, f, procs, sizes[0], sizes[1])
						wantBytes, wantSum := writtenByRow(t, s.db, f, format)
						var got bytes.Buffer
						sum, err := report.Write(&got, s.db, f, format, generated())
						if err != nil {
							t.Fatalf("%s: %v", how, err)
						}
						if diff := cmp.Diff(wantBytes, got.String()); diff != "" {
							t.Errorf("%s (-row by row +report):\n%s", how, diff)
						}
						if diff := cmp.Diff(wantSum, sum); diff != "" {
							t.Errorf("%s: summary (-row by row +report):\n%s", how, diff)
						}
					}
				}
			}
			restoreChunk()
			restoreCap()
		}
	}
	if sum, _ := report.Write(new(bytes.Buffer), seeded, report.Filter{To: generated()}, report.CSV, generated()); sum.Missed == 0 || sum.Proved == 0 || sum.Skipped == 0 {
		t.Fatalf("the seeded store's summary %+v lacks missed, proved or skipped notices: a poor test of the counts", sum)
	}
}

// writtenByRow is the report of f written from Rows one row at a time,
// with CSVWriter or a JSON encoder, and its summary.
func writtenByRow(t *testing.T, db *store.DB, f report.Filter, format report.Format) (string, report.Summary) {
	t.Helper()
	var out bytes.Buffer
	sum := report.NewSummary(f, generated())
	cw := report.NewCSVWriter(&out)
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if format == report.CSV {
		cw.Write(report.Header())
	}
	err := report.Rows(db, f, func(r report.Row) error {
		sum.Add(r)
		if format == report.CSV {
			return cw.Write(r.Record())
		}
		return enc.Encode(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	cw.Flush()
	if format == report.JSONL {
		enc.Encode(struct {
			Summary report.Summary `json:"summary"`
		}{sum})
	}
	return out.String(), sum
}
