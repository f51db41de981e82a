package calendar_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/internal/benchtest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// BenchmarkImport1M imports and plans a generated calendar into a real
// bbolt file, as `errpd import` does, imports the same file again (every
// row unchanged, as in a partner's daily re-import), then times finding
// 1,000 due steps among the steps planned. ERRPD_BENCH_BATCH sets the rows
// of a write transaction. It has 1,000,000 rows unless ERRPD_BENCH_ROWS
// says otherwise; scripts/bench-import.sh runs it once and prints figures.
// Like every benchmark it runs only when asked for with -bench.
func BenchmarkImport1M(b *testing.B) {
	if testing.Short() {
		b.Skip("imports a million rows; not with -short")
	}
	rows := benchtest.Rows(b, 1_000_000)
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "calendar.csv")
	start := time.Now()
	if err := benchCalendar(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)).Write(csvPath, rows); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d rows in %s", rows, time.Since(start).Round(time.Millisecond))

	if s := os.Getenv("ERRPD_BENCH_BATCH"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("ERRPD_BENCH_BATCH=%q is not a positive number", s)
		}
		defer calendar.SetBatchSize(n)()
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts := store.PlanOptions{Policy: scheduler.DefaultPolicy()}

	for i := 0; b.Loop(); i++ {
		dbPath := filepath.Join(dir, fmt.Sprintf("errpd-%d.db", i))
		// The same options as `errpd import`: fsync on every commit.
		db, err := store.Open(dbPath, store.Options{Now: clock})
		if err != nil {
			b.Fatal(err)
		}
		st, importTime := benchImport(b, db, csvPath, opts)
		if st.Added != rows {
			b.Fatalf("added %d of %d rows: %+v", st.Added, rows, st)
		}
		// The same file again, as a partner re-importing its whole
		// calendar every day: nothing changed, so nothing is written.
		st, reimportTime := benchImport(b, db, csvPath, opts)
		if st.Unchanged != rows {
			b.Fatalf("re-import: %d of %d rows unchanged: %+v", st.Unchanged, rows, st)
		}

		var steps uint64
		if err := db.View(func(tx *store.Tx) error {
			for _, n := range tx.Counts() {
				steps += n
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		sizes, err := db.BucketSizes()
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		fi, err := os.Stat(dbPath)
		if err != nil {
			b.Fatal(err)
		}

		// Reopen, as the daemon would, and find 1,000 due steps at a time
		// when far more than 1,000 are due.
		db, err = store.Open(dbPath, store.Options{Now: clock})
		if err != nil {
			b.Fatal(err)
		}
		first, best := dueTimes(b, db, now.Add(60*scheduler.Day))
		db.Close()

		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		b.Logf("rows=%d steps=%d import=%s rows/s=%.0f reimport=%s file=%.1fMiB due1000: first=%s best-of-%d=%s maxrss=%.0fMiB",
			rows, steps, importTime.Round(time.Millisecond), float64(rows)/importTime.Seconds(), reimportTime.Round(time.Millisecond),
			float64(fi.Size())/(1<<20), first, dueTries, best, float64(ru.Maxrss)/1024)
		b.Logf("file: %.0f B a domain; per bucket:\n%s", float64(fi.Size())/float64(rows), store.FormatBucketSizes(sizes, rows))
		b.ReportMetric(importTime.Seconds(), "import-s")
		b.ReportMetric(float64(rows)/importTime.Seconds(), "rows/s")
		b.ReportMetric(reimportTime.Seconds(), "reimport-s")
		b.ReportMetric(float64(steps), "steps")
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MiB")
		b.ReportMetric(float64(first.Microseconds())/1000, "due1000-first-ms")
		b.ReportMetric(float64(best.Microseconds())/1000, "due1000-best-ms")
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB") // Linux reports KiB
		os.Remove(dbPath)
	}
}

// benchImport imports the calendar at path into db, as `errpd import`
// does, and returns what it did and how long it took. With
// ERRPD_BENCH_HEAP set, it writes a heap profile there as the import
// ends, while the reader and the store are still in use.
func benchImport(b *testing.B, db *store.DB, path string, opts store.PlanOptions) (calendar.Stats, time.Duration) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start, cpu0 := time.Now(), benchtest.CPU()
	r, err := calendar.NewReader(bufio.NewReaderSize(f, 1<<16), "calendar.csv")
	if err != nil {
		b.Fatal(err)
	}
	st, err := calendar.Import(r, db, opts, func(e *calendar.RowError) { b.Errorf("rejected: %v", e) })
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	// On a shared machine the wall time says as much about the others'
	// load as about the import; the CPU time it used says less.
	b.Logf("%d rows: %s, cpu %s, %s", st.Rows, took.Round(time.Millisecond), (benchtest.CPU() - cpu0).Round(time.Millisecond), loadavg())
	if heap := os.Getenv("ERRPD_BENCH_HEAP"); heap != "" {
		writeHeap(b, heap)
		runtime.KeepAlive(r)
	}
	return st, took
}

// loadavg is the machine's load, to read the timings by.
func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "load unknown"
	}
	return "load " + strings.Join(f[:3], " ")
}

// writeHeap writes a heap profile of what is live now to path.
func writeHeap(b *testing.B, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// TestBenchWriteCalendar writes the generated calendar to
// $ERRPD_BENCH_CSV for scripts/bench-import.sh's daemon mode, with
// ERRPD_BENCH_ROWS rows expiring from 2031 on (so that no notice falls due
// while it is imported). Without ERRPD_BENCH_CSV it does nothing.
func TestBenchWriteCalendar(t *testing.T) {
	path := os.Getenv("ERRPD_BENCH_CSV")
	if path == "" {
		t.Skip("ERRPD_BENCH_CSV is not set")
	}
	if err := benchCalendar(time.Date(2031, 1, 2, 0, 0, 0, 0, time.UTC)).Write(path, benchtest.Rows(t, 0)); err != nil {
		t.Fatal(err)
	}
}

// benchCalendar is the generated calendar of these benchmarks: every
// domain under .example, of brand "brand", expiring over a year from base.
func benchCalendar(base time.Time) benchtest.Calendar {
	return benchtest.Calendar{Base: base, TLD: func(uint32) string { return "example" }, Brand: "brand"}
}

// dueTries is how many times dueTimes finds the due steps.
const dueTries = 20

// dueTimes times tx.Due(at, 1000) dueTries times, when far more than
// 1,000 steps are due: the first time (pages not yet read) and the best.
func dueTimes(tb testing.TB, db *store.DB, at time.Time) (first, best time.Duration) {
	tb.Helper()
	for try := range dueTries {
		t0 := time.Now()
		err := db.View(func(tx *store.Tx) error {
			due, err := tx.Due(at, 1000)
			if err == nil && len(due) != 1000 {
				err = fmt.Errorf("Due found %d steps, want 1000", len(due))
			}
			return err
		})
		d := time.Since(t0)
		if err != nil {
			tb.Fatal(err)
		}
		if try == 0 {
			first, best = d, d
		}
		best = min(best, d)
	}
	return first, best
}

// TestBenchStoreFigures prints, for the store at $ERRPD_BENCH_DB (opened
// read-only, as a second process may while `errpd serve` runs), its size
// a domain per bucket and the time of tx.Due(at, 1000) at
// $ERRPD_BENCH_DUE_AT (RFC 3339), first and best of 20: the figures
// scripts/bench-scale.sh gives after its last chunk. Without
// ERRPD_BENCH_DB it does nothing.
func TestBenchStoreFigures(t *testing.T) {
	db := benchtest.Store(t, store.Options{ReadOnly: true}, "scripts/bench-scale.sh")
	at, err := time.Parse(time.RFC3339, os.Getenv("ERRPD_BENCH_DUE_AT"))
	if err != nil {
		t.Fatalf("ERRPD_BENCH_DUE_AT: %v", err)
	}
	domains := benchtest.Rows(t, 0)
	first, best := dueTimes(t, db, at)
	sizes, err := db.BucketSizes()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(os.Getenv("ERRPD_BENCH_DB"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("store: %d domains, %.1f MiB, %.0f B a domain; due1000 first %s, best of 20 %s\n%s",
		domains, float64(fi.Size())/(1<<20), float64(fi.Size())/float64(domains), first, best,
		store.FormatBucketSizes(sizes, domains))
}

// BenchmarkBulk1M loads the generated calendar of BenchmarkImport1M into
// an empty store with Bulk (errpd import --bulk), fsync on every commit,
// then re-imports it with Import (every row unchanged) and times finding
// 1,000 due steps. ERRPD_BENCH_ROWS sets its rows (1,000,000);
// ERRPD_BENCH_CPUPROFILE writes a CPU profile of the load there.
func BenchmarkBulk1M(b *testing.B) {
	if testing.Short() {
		b.Skip("loads a million rows; not with -short")
	}
	rows := benchtest.Rows(b, 1_000_000)
	dir := b.TempDir()
	csvPath := filepath.Join(dir, "calendar.csv")
	if err := benchCalendar(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)).Write(csvPath, rows); err != nil {
		b.Fatal(err)
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	opts := store.PlanOptions{Policy: scheduler.DefaultPolicy()}
	for i := 0; b.Loop(); i++ {
		dbPath := filepath.Join(dir, fmt.Sprintf("errpd-%d.db", i))
		st, loadTime := benchBulk(b, dbPath, csvPath, opts, clock)
		if st.Added != rows {
			b.Fatalf("added %d of %d rows: %+v", st.Added, rows, st)
		}
		db, err := store.Open(dbPath, store.Options{Now: clock})
		if err != nil {
			b.Fatal(err)
		}
		st, reimportTime := benchImport(b, db, csvPath, opts)
		if st.Unchanged != rows {
			b.Fatalf("re-import: %d of %d rows unchanged: %+v", st.Unchanged, rows, st)
		}
		sizes, err := db.BucketSizes()
		if err != nil {
			b.Fatal(err)
		}
		first, best := dueTimes(b, db, now.Add(60*scheduler.Day))
		db.Close()
		fi, err := os.Stat(dbPath)
		if err != nil {
			b.Fatal(err)
		}
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		b.Logf("rows=%d load=%s rows/s=%.0f reimport=%s file=%.1fMiB due1000: first=%s best-of-%d=%s maxrss=%.0fMiB",
			rows, loadTime.Round(time.Millisecond), float64(rows)/loadTime.Seconds(), reimportTime.Round(time.Millisecond),
			float64(fi.Size())/(1<<20), first, dueTries, best, float64(ru.Maxrss)/1024)
		b.Logf("file: %.0f B a domain; per bucket:\n%s", float64(fi.Size())/float64(rows), store.FormatBucketSizes(sizes, rows))
		b.ReportMetric(loadTime.Seconds(), "load-s")
		b.ReportMetric(float64(fi.Size())/float64(rows), "B/domain")
		os.Remove(dbPath)
	}
}

// benchBulk loads the calendar at csvPath into a new store at dbPath.
func benchBulk(b *testing.B, dbPath, csvPath string, opts store.PlanOptions, clock func() time.Time) (calendar.Stats, time.Duration) {
	f, err := os.Open(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if prof := os.Getenv("ERRPD_BENCH_CPUPROFILE"); prof != "" {
		pf, err := os.Create(prof)
		if err != nil {
			b.Fatal(err)
		}
		defer pf.Close()
		pprof.StartCPUProfile(pf)
		defer pprof.StopCPUProfile()
	}
	start, cpu0 := time.Now(), benchtest.CPU()
	r, err := calendar.NewReader(bufio.NewReaderSize(f, 1<<16), "calendar.csv")
	if err != nil {
		b.Fatal(err)
	}
	st, loaded, err := calendar.Bulk(r, dbPath, calendar.BulkOptions{
		Options: calendar.Options{Plan: opts},
		Open:    store.Options{Now: clock},
		Load:    store.LoadOptions{Now: clock},
	}, func(e *calendar.RowError) { b.Errorf("rejected: %v", e) })
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(start)
	b.Logf("%d rows: %s (planned in %s, written in %s), cpu %s, %d records, %s", st.Rows, took.Round(time.Millisecond),
		loaded.Planning.Round(time.Millisecond), loaded.Writing.Round(time.Millisecond),
		(benchtest.CPU() - cpu0).Round(time.Millisecond), loaded.Total, loadavg())
	return st, took
}
