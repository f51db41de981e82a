package report_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/internal/benchtest"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// TestBenchSeed builds the benchmark's store at $ERRPD_BENCH_DB with
// $ERRPD_BENCH_ROWS report rows (default 1,000,000): renew-mode domains with
// both reminders sent and proved, written straight into the buckets in big
// transactions (console's TestBenchPages reads it too); then TestBenchExport,
// in a process of its own so that its peak memory is its own, exports it.
// scripts/bench-report.sh measures reports on an imported calendar instead
// (TestBenchReportCalendar).
func TestBenchSeed(t *testing.T) {
	db := benchtest.Store(t, store.Options{NoSync: true}, "scripts/bench-report.sh")
	rows := benchtest.Rows(t, 1_000_000)
	start := time.Now()
	expiry := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	const perTx = 50_000
	for done := 0; done < rows; {
		err := db.Bolt().Update(func(tx *bolt.Tx) error {
			steps, cycles := tx.Bucket([]byte("steps")), tx.Bucket([]byte("cycles"))
			steps.FillPercent, cycles.FillPercent = 1, 1
			for n := 0; n < perTx && done < rows; n += 2 {
				// Zero-padded names keep the keys in order: appends, not splits.
				name := fmt.Sprintf("d%08d.com", done/2)
				exp := expiry.Add(time.Duration(done/2%90) * scheduler.Day)
				c := store.Cycle{Key: store.CycleKey(name, exp), Domain: name, Expiry: exp, Mode: scheduler.ModeRenew, OrderID: "ORD", InScope: true}
				if err := put(cycles, c.Key, c); err != nil {
					return err
				}
				for _, p := range scheduler.Plan(exp, scheduler.ModeRenew, scheduler.DefaultPolicy(), exp.Add(-40*scheduler.Day)) {
					if done == rows {
						break
					}
					sent := p.Opens.Add(9 * time.Hour)
					s := store.Step{ID: store.StepID(name, exp, p.Notice), Cycle: c.Key, Domain: name, Expiry: exp, Notice: p.Notice,
						Opens: p.Opens, Deadline: p.Deadline, SendAt: p.SendAt, State: scheduler.StateProved,
						MessageID: "<" + name + "@errpd.example.net>", SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
						From: "Example Domains <renewals@example.net>", Recipient: "holder@" + name, EnvelopeFrom: "bounces@errp.example.net",
						Attempts: 1, SentAt: sent, SMTPReply: "250 2.0.0 Ok: queued as 4Z1", OrderID: "ORD", UploadAttempts: 1,
						UploadedAt: sent.Add(time.Hour), AscioResult: "200 Success"}
					if err := put(steps, s.ID, s); err != nil {
						return err
					}
					done++
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The steps went in around the store's read indexes: drop the
	// (empty) deadline index, so that the store reads as one written
	// before it, which a reader scans and the next writer indexes.
	if err := db.Bolt().Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("deadline")) }); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(os.Getenv("ERRPD_BENCH_DB"))
	fmt.Printf("seeded %d rows in %s; store %d MiB\n", rows, time.Since(start).Round(time.Millisecond), info.Size()>>20)
}

func put(b *bolt.Bucket, key string, v any) error {
	raw, err := store.EncodeValue(v)
	if err != nil {
		return err
	}
	return b.Put(store.Key(key), raw)
}

// TestBenchExport exports every row of $ERRPD_BENCH_DB as CSV to
// $ERRPD_BENCH_OUT (or discards it) and prints the time and the process's
// peak resident memory.
func TestBenchExport(t *testing.T) {
	db := benchtest.Store(t, store.Options{ReadOnly: true}, "scripts/bench-report.sh")
	var w io.Writer = io.Discard
	if out := os.Getenv("ERRPD_BENCH_OUT"); out != "" {
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		w = f
	}
	start := time.Now()
	sum, err := report.Write(w, db, report.Filter{}, report.CSV, start)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("exported %d rows as CSV in %s (%.0f rows/s); peak RSS %d MiB (Getrusage Maxrss), Go runtime Sys %d MiB\n",
		sum.Due, elapsed.Round(time.Millisecond), float64(sum.Due)/elapsed.Seconds(), ru.Maxrss>>10, ms.Sys>>20)
	// bbolt reads the file through mmap: the pages it touched count in the
	// RSS as file-backed memory, which the kernel reclaims at will; the
	// process's own (anonymous) memory is what stays flat.
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "RssAnon") || strings.HasPrefix(line, "RssFile") || strings.HasPrefix(line, "VmHWM") {
				fmt.Println(strings.Join(strings.Fields(line), " "))
			}
		}
	}
}

// TestBenchReportCalendar writes the calendar scripts/bench-report.sh and
// scripts/bench-domains.sh import: $ERRPD_BENCH_ROWS domains (default
// 1,000,000) at $ERRPD_BENCH_CSV, in the shape of the import benchmark's
// (one in twenty renew, the rest expire; expiries spread over 2031; names
// in no order) but under several TLDs, so that a report by TLD has one to
// find: com 60%, net 20%, org 10%, info 9%, xyz 1%. Domain number 12345
// is da12b4869.info, the one the by-domain report asks for. With
// $ERRPD_BENCH_DB set it then imports the calendar there, as errpd import
// does but without fsync (the reports are measured, not the import).
func TestBenchReportCalendar(t *testing.T) {
	path := os.Getenv("ERRPD_BENCH_CSV")
	if path == "" {
		t.Skip("set ERRPD_BENCH_CSV (scripts/bench-report.sh)")
	}
	rows := benchtest.Rows(t, 1_000_000)
	cal := benchtest.Calendar{Base: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), TLD: benchTLD}
	if err := cal.Write(path, rows); err != nil {
		t.Fatal(err)
	}
	if db := os.Getenv("ERRPD_BENCH_DB"); db != "" {
		importCalendar(t, path, db, rows)
	}
}

func importCalendar(t *testing.T, csvPath, dbPath string, rows int) {
	now := time.Date(2030, 11, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(dbPath, store.Options{Now: func() time.Time { return now }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	r, err := calendar.NewReader(bufio.NewReaderSize(f, 1<<16), filepath.Base(csvPath))
	if err != nil {
		t.Fatal(err)
	}
	st, err := calendar.Import(r, db, store.PlanOptions{Policy: scheduler.DefaultPolicy()}, func(e *calendar.RowError) { t.Errorf("rejected: %v", e) })
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != rows {
		t.Fatalf("added %d of %d rows", st.Added, rows)
	}
	fmt.Printf("imported %d domains in %s (no fsync)\n", rows, time.Since(start).Round(time.Millisecond))
}

func benchTLD(h uint32) string {
	switch p := h / 7 % 100; {
	case p < 60:
		return "com"
	case p < 80:
		return "net"
	case p < 90:
		return "org"
	case p < 99:
		return "info"
	}
	return "xyz"
}
