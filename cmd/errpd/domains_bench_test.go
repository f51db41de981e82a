package main

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/errpd/errpd/internal/benchtest"
	"github.com/errpd/errpd/store"
)

// TestBenchDomains runs `errpd domains --json` in process against
// $ERRPD_BENCH_DB (a store scripts/bench-report.sh built), output
// discarded, and prints the CPU time a domain: the run to take a CPU
// profile of (go test -cpuprofile) when working on the listing.
func TestBenchDomains(t *testing.T) {
	db := benchtest.Store(t, store.Options{ReadOnly: true}, "a store scripts/bench-report.sh built")
	var out countingWriter
	a := &app{stdout: &out, stderr: io.Discard}
	before := benchtest.CPU()
	if err := a.listDomains(db, true, false); err != nil {
		t.Fatal(err)
	}
	cpu := benchtest.CPU() - before
	if out.lines == 0 {
		t.Fatal("no domains listed")
	}
	fmt.Printf("domains --json: %d lines, CPU %s, %.1f µs a domain\n", out.lines, cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(out.lines))
}

// countingWriter discards what it is given, counting the lines.
type countingWriter struct{ lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if b == '\n' {
			w.lines++
		}
	}
	return len(p), nil
}
