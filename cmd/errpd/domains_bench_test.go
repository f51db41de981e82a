package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/errpd/errpd/store"
)

// TestBenchDomains runs `errpd domains --json` in process against
// $ERRPD_BENCH_DB (a store scripts/bench-report.sh built), output
// discarded, and prints the CPU time a domain: the run to take a CPU
// profile of (go test -cpuprofile) when working on the listing.
func TestBenchDomains(t *testing.T) {
	path := os.Getenv("ERRPD_BENCH_DB")
	if path == "" {
		t.Skip("set ERRPD_BENCH_DB (a store scripts/bench-report.sh built)")
	}
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var out countingWriter
	a := &app{stdout: &out, stderr: io.Discard}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	if err := a.listDomains(db, true, false); err != nil {
		t.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if out.lines == 0 {
		t.Fatal("no domains listed")
	}
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
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
