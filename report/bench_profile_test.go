package report_test

import (
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/errpd/errpd/internal/benchtest"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/store"
)

// TestBenchReportMonth runs the month report of scripts/bench-report.sh
// (--from 2031-05-01 --to 2031-06-01, CSV) in process against
// $ERRPD_BENCH_DB, $ERRPD_BENCH_REPEAT times (default 1), and prints the
// rows and the CPU time a row: the run to take a CPU profile of
// (go test -cpuprofile) when working on the report's read path. Each run's
// wall time is printed too: the first with the store's map cold, the
// others warm.
func TestBenchReportMonth(t *testing.T) {
	db := benchtest.Store(t, store.Options{ReadOnly: true}, "a store scripts/bench-report.sh built")
	repeat := 1
	fmt.Sscan(os.Getenv("ERRPD_BENCH_REPEAT"), &repeat)
	f := report.Filter{From: time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)}
	before := benchtest.CPU()
	rows := 0
	for i := range repeat {
		start := time.Now()
		sum, err := report.Write(io.Discard, db, f, report.CSV, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		rows += sum.Due
		fmt.Printf("month report %d: %d rows in %s\n", i+1, sum.Due, time.Since(start).Round(time.Millisecond))
	}
	if rows == 0 {
		t.Fatal("the month has no rows")
	}
	cpu := benchtest.CPU() - before
	fmt.Printf("month report: %d rows, CPU %s, %.1f µs a row\n", rows, cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(rows))
}
