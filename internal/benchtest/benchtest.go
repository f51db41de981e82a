// Package benchtest holds what errpd's benchmark tests (TestBench*,
// Benchmark*, run by scripts/bench-*.sh) share: the row count and store
// the scripts name in the environment, the process's CPU time, and the
// generated calendar they import. Tests only; errpd itself never imports
// it.
package benchtest

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// Rows is $ERRPD_BENCH_ROWS; def when it is unset, or, with def 0, a
// failure: a figure a domain needs the real count.
func Rows(t testing.TB, def int) int {
	t.Helper()
	v := os.Getenv("ERRPD_BENCH_ROWS")
	if v == "" && def > 0 {
		return def
	}
	rows, err := strconv.Atoi(v)
	if err != nil || rows <= 0 {
		t.Fatalf("ERRPD_BENCH_ROWS=%q is not a positive number", v)
	}
	return rows
}

// Store opens the store at $ERRPD_BENCH_DB with o, closed when the test
// ends; without ERRPD_BENCH_DB the test is skipped, naming the script
// that sets it.
func Store(t testing.TB, o store.Options, script string) *store.DB {
	t.Helper()
	path := os.Getenv("ERRPD_BENCH_DB")
	if path == "" {
		t.Skipf("set ERRPD_BENCH_DB (%s)", script)
	}
	db, err := store.Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// CPU is the CPU time (user and system) the process used so far: on a
// shared machine the wall time says as much about the others' load.
func CPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Calendar is a generated calendar: n rows, domain i named
// d%08x.TLD(h) with h = i*2654435761 mod 2^32 (a bijection: the names are
// unique yet in no key order), expiring h%365 days and h%86400 seconds
// after Base (so in no order of time either), one in twenty in mode renew
// (2 steps), the rest expire (4 steps), as a registrar's export might be.
type Calendar struct {
	Base  time.Time
	TLD   func(h uint32) string
	Brand string
}

// Write writes n rows of the calendar to path.
func (c Calendar) Write(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	w := csv.NewWriter(bw)
	w.Write(calendar.Columns)
	for i := range n {
		h := uint32(i) * 2654435761
		mode := "expire"
		if i%20 == 0 {
			mode = "renew"
		}
		w.Write([]string{
			fmt.Sprintf("d%08x.%s", h, c.TLD(h)),
			c.Base.Add(time.Duration(h%365)*scheduler.Day + time.Duration(h%86400)*time.Second).Format(time.RFC3339),
			mode, "Registrant " + strconv.Itoa(i), fmt.Sprintf("owner%d@mail.example", i), "en", "", c.Brand,
		})
	}
	w.Flush()
	if err := cmp.Or(w.Error(), bw.Flush()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
