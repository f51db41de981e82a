package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCatchUpRate is the throughput benchmark of issue 5: errpd catching up
// on 20,000 due notices through smtp-sink with the Ascio stand-in, next to
// Postfix's smtp-source sending as many messages of the same size to the
// same smtp-sink at the same concurrency, in the same run. It prints figures
// and runs only with ERRPD_BENCH=1 (scripts/bench-dispatch.sh).
//
// ERRPD_BENCH_RELAY=host:port puts another relay in smtp-sink's place, for
// both senders: scripts/bench-relay.sh gives it a Postfix that queues each
// message on disk before it answers, as a real relay does.
func TestCatchUpRate(t *testing.T) {
	if os.Getenv("ERRPD_BENCH") == "" {
		t.Skip("benchmark: run scripts/bench-dispatch.sh")
	}
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("ERRPD_BENCH_NOTICES")); err == nil {
		n = v
	}
	conc := 4
	if v, err := strconv.Atoi(os.Getenv("ERRPD_BENCH_CONNECTIONS")); err == nil {
		conc = v
	}
	bin := errpdBinary(t)
	relay := os.Getenv("ERRPD_BENCH_RELAY")
	if relay == "" {
		relay = startSink(t).addr // the same relay, dumping each message, for both senders
	}
	asc := startAscio(t)
	asc.srv.LowPriority() // Ascio's CPU is not errpd's: it gets only what errpd leaves
	dir := t.TempDir()
	cfg := writeConfig(t, dir, relay, asc.endpoint, conc)
	var rows []string
	for i := range n {
		rows = append(rows, fmt.Sprintf("b%06d.example.com,%s,renew,R%d,r%d@example.org,en,ORD-%d,", i, day(30), i, i, i))
	}
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, calendarCSV(t, dir, rows)); err != nil {
		t.Fatal(err)
	}
	listen := httpListen(t, cfg)
	start := time.Now()
	d := startErrpd(t, bin, cfg)
	// The rate measured is sending's. Uploads go on beside it; the
	// stand-in checks each one with xmllint (at low priority), so their
	// rate here is the stand-in's, and is printed for information only.
	var sentAt time.Duration
	var proofs, commits, writes float64
	for end := time.Now().Add(10 * time.Minute); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if metric(t, listen, `errpd_sends_total{result="ok"}`) >= float64(n) {
			sentAt = time.Since(start)
			proofs = metric(t, listen, `errpd_uploads_total{result="ok"}`)
			commits = metric(t, listen, "errpd_store_commits_total")
			writes = metric(t, listen, "errpd_store_writes_total")
			break
		}
	}
	d.stop(t)
	if sentAt == 0 {
		t.Fatal("not all sent in 10 minutes")
	}
	ups := asc.uploads(t)
	if len(ups) == 0 {
		t.Fatal("no upload recorded")
	}
	size := len(ups[0].raw)

	// smtp-source: same count, size, concurrency, relay.
	src := exec.Command("/usr/sbin/smtp-source", "-s", strconv.Itoa(conc), "-m", strconv.Itoa(n), "-l", strconv.Itoa(size),
		"-f", "bounces@errp.example.net", "-t", "r@example.org", relay)
	t0 := time.Now()
	if out, err := src.CombinedOutput(); err != nil {
		t.Fatalf("smtp-source: %v\n%s", err, out)
	}
	srcTime := time.Since(t0)
	t.Logf("relay:          %s", relay)
	t.Logf("errpd catch-up: %d notices of %d bytes over %d connections: all sent in %s (%.0f notices/s); %.0f proved by then",
		n, size, conc, sentAt.Round(time.Millisecond), float64(n)/sentAt.Seconds(), proofs)
	t.Logf("errpd store:    %.0f commits by then, %.1f writes per commit", commits, writes/max(commits, 1))
	t.Logf("smtp-source:    %d messages of %d bytes over %d sessions: %s (%.0f messages/s)",
		n, size, conc, srcTime.Round(time.Millisecond), float64(n)/srcTime.Seconds())
}

func httpListen(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "listen = "); ok {
			return strings.Trim(v, `"`)
		}
	}
	t.Fatal("no listen in config")
	return ""
}

// metric reads one series from errpd's /metrics.
func metric(t *testing.T, listen, series string) float64 {
	v, _ := lookupMetric(listen, series)
	return v
}

// lookupMetric reads one series from /metrics; ok is false when the page
// or the series is missing.
func lookupMetric(listen, series string) (v float64, ok bool) {
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), series+" "); found {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}
