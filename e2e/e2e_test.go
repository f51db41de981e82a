package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/internal/ascioteststand"
)

// writeConfig writes a config for errpd serve against the sink and Ascio.
func writeConfig(t *testing.T, dir, smtpAddr, ascioEndpoint string, workers int) string {
	t.Helper()
	host, port, _ := strings.Cut(smtpAddr, ":")
	cfg := fmt.Sprintf(`
[store]
path = "errpd.db"
[http]
listen = "127.0.0.1:%d"
[smtp]
host = %q
port = %s
envelope_from = "bounces@errp.example.net"
max_connections = %d
[mail]
from = "Example Domains <renewals@example.net>"
[ascio]
endpoint = %q
account = "errpd-test"
password = "not-a-real-password"
# Generous: the stand-in runs xmllint on every request and answer, and
# under a loaded CI machine that can take more than a second.
timeout = "10s"
[log]
format = "json"
level = "debug"
[dispatch]
retry_base = "1s"
retry_max = "2s"
`, freePort(t), host, port, workers, ascioEndpoint)
	path := filepath.Join(dir, "errpd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// step is one line of `errpd steps --json`.
type step struct {
	ID        string `json:"id"`
	Domain    string `json:"domain"`
	Notice    string `json:"notice"`
	State     string `json:"state"`
	MessageID string `json:"message_id"`
	OrderID   string `json:"order_id"`
	SHA256    string `json:"sha256"`
	Attempts  int    `json:"attempts"`
	SMTPReply string `json:"smtp_reply"`
	Recipient string `json:"recipient"`
}

func steps(t *testing.T, bin, cfg string) []step {
	t.Helper()
	out, err := errpdCmd(t, bin, "steps", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var all []step
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var s step
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		all = append(all, s)
	}
	return all
}

func byState(all []step) map[string]int {
	m := map[string]int{}
	for _, s := range all {
		m[s.State]++
	}
	return m
}

// calendarCSV writes a calendar whose windows are open now.
func calendarCSV(t *testing.T, dir string, rows []string) string {
	t.Helper()
	path := filepath.Join(dir, "calendar.csv")
	text := "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func day(n int) string {
	return time.Now().UTC().Add(time.Duration(n) * 24 * time.Hour).Format(time.RFC3339)
}

// TestEndToEnd: errpd serve with smtp-sink as relay and the Ascio stand-in;
// exactly the due notices arrive, once each, and each is uploaded once with
// the bytes that arrived.
func TestEndToEnd(t *testing.T) {
	bin, sk, asc, dir, cfg := endToEnd(t, 2)
	d := startErrpd(t, bin, cfg)

	cal := calendarCSV(t, dir, []string{
		"in30.example.com," + day(30) + ",renew,Ann,ann@example.org,en,ORD-30,", // reminder1 due
		"in5.example.com," + day(5) + ",expire,Bea,bea@example.org,en,ORD-5,",   // reminder2 due
		"ago2.example.com," + day(-2) + ",expire,Cy,cy@example.org,en,ORD-2,",   // reminder3 due
		"in60.example.com," + day(60) + ",renew,Di,di@example.org,en,ORD-60,",   // nothing due yet
		"nocc.example.de," + day(30) + ",renew,Ed,ed@example.org,en,ORD-DE,",    // ccTLD: out of scope
	})
	if out, err := errpdCmd(t, bin, "import", "--config", cfg, cal); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(out, "5 new domains") {
		t.Errorf("import through the daemon: %q", out)
	}
	want := map[string]string{ // recipient -> notice
		"ann@example.org": "reminder1",
		"bea@example.org": "reminder2",
		"cy@example.org":  "reminder3",
	}
	var all []step
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		all = steps(t, bin, cfg)
		if byState(all)["proved"] == len(want) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("not all due notices proved: %v\n%s", byState(all), d.logs)
		}
	}
	// What /metrics shows an operator.
	listen := httpListen(t, cfg)
	for name, want := range map[string]float64{
		`errpd_steps{state="proved"}`:             3,
		`errpd_steps{state="skipped"}`:            2, // the ccTLD's two reminders
		`errpd_sends_total{result="ok"}`:          3,
		`errpd_uploads_total{result="ok"}`:        3,
		`errpd_oldest_due_lag_seconds`:            0,
		`errpd_deadline_misses_total`:             0,
		`errpd_sends_total{result="permanent"}`:   0,
		`errpd_sends_total{result="in_doubt"}`:    0,
		`errpd_uploads_total{result="temporary"}`: 0,
	} {
		if got, ok := lookupMetric(listen, name); !ok || got != want {
			t.Errorf("/metrics %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	d.stop(t)

	got := sk.messages(t)
	for _, m := range got {
		t.Logf("arrived: %s to %s", m.messageID, m.rcpt)
	}
	// The daemon's own log (JSON, debug level) holds neither the Ascio
	// password nor any line of a message's body.
	logs := d.logs.String()
	if strings.Contains(logs, "not-a-real-password") {
		t.Error("the Ascio password is in the log")
	}
	looked := 0
	for _, m := range got {
		text := strings.ReplaceAll(string(m.body), "\r\n", "\n")
		_, body, _ := strings.Cut(text, "\n\n")
		for _, line := range strings.Split(body, "\n") {
			if len(line) < 20 {
				continue
			}
			looked++
			if strings.Contains(logs, line) {
				t.Errorf("a line of the message to %s is in the log: %q", m.rcpt, line)
			}
		}
	}
	if looked == 0 || !strings.Contains(logs, "notice sent") {
		t.Errorf("nothing to look for: %d body lines, log of %d bytes", looked, len(logs))
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages arrived, want %d", len(got), len(want))
	}
	uploads := asc.uploads(t)
	if len(uploads) != len(want) {
		t.Errorf("%d uploads, want %d", len(uploads), len(want))
	}
	for _, m := range got {
		if !verpRE.MatchString(m.mailFrom) { // bounces.verp: its own signed sender
			t.Errorf("MAIL FROM %q", m.mailFrom)
		}
		if _, ok := want[m.rcpt]; !ok {
			t.Errorf("unexpected message to %s", m.rcpt)
			continue
		}
		n := 0
		for _, u := range uploads {
			if bytes.Equal(normalize(u.raw), m.body) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("message to %s: uploaded %d times with the bytes that arrived, want 1", m.rcpt, n)
			if os.Getenv("ERRPD_E2E_DEBUG") != "" {
				os.WriteFile("/tmp/e2e-arrived.eml", m.body, 0o644)
				for i, u := range uploads {
					os.WriteFile(fmt.Sprintf("/tmp/e2e-upload%d.eml", i), normalize(u.raw), 0o644)
				}
			}
		}
	}
	for _, s := range all {
		if s.State == "proved" && want[recipientOf(t, got, s.MessageID)] != s.Notice {
			t.Errorf("%s proved but its message %s is not the one expected", s.ID, s.MessageID)
		}
		if strings.HasSuffix(s.Domain, ".de") && s.State != "skipped" {
			t.Errorf("%s is %s, want skipped (out of scope)", s.ID, s.State)
		}
	}
}

func recipientOf(t *testing.T, got []dumped, messageID string) string {
	for _, m := range got {
		if m.messageID == messageID {
			return m.rcpt
		}
	}
	return ""
}

// TestCrashes kills errpd serve with SIGKILL at random moments while it
// works through 2,000 due notices, and restarts it each time. At the end no
// notice is lost, none was delivered twice, every one is proved or in doubt,
// and there is at most one in doubt per kill and connection. It runs one
// connection, so at most one per kill; ERRPD_CRASH_CONNECTIONS runs more.
func TestCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	const notices, minKills = 2000, 20
	bin := errpdBinary(t)
	sk := startSink(t)
	asc := startAscio(t)
	dir := t.TempDir()
	// One connection: each kill can catch at most one SMTP transaction.
	conns := 1
	if v, err := strconv.Atoi(os.Getenv("ERRPD_CRASH_CONNECTIONS")); err == nil && v > 0 {
		conns = v
	}
	cfg := writeConfig(t, dir, sk.addr, asc.endpoint, conns)
	var rows []string
	for i := range notices {
		rows = append(rows, fmt.Sprintf("crash%04d.example.com,%s,renew,R%d,r%d@example.org,en,ORD-%d,", i, day(30), i, i, i))
	}
	cal := calendarCSV(t, dir, rows)
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, cal); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	start := time.Now()
	for kills < minKills {
		d := startErrpd(t, bin, cfg)
		time.Sleep(time.Duration(20+rng.IntN(150)) * time.Millisecond)
		d.kill()
		kills++
	}
	// The last run finishes the work.
	d := startErrpd(t, bin, cfg)
	for end := time.Now().Add(8 * time.Minute); ; time.Sleep(time.Second) {
		st := byState(steps(t, bin, cfg))
		if st["proved"]+st["in_doubt"] == notices || time.Now().After(end) {
			break
		}
	}
	d.stop(t)
	elapsed := time.Since(start)
	all := steps(t, bin, cfg)
	st := byState(all)
	got := sk.messages(t)
	perID := map[string]int{}
	for _, m := range got {
		perID[m.messageID]++
	}
	dups := 0
	for id, n := range perID {
		if n > 1 {
			dups++
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	for _, s := range all {
		if s.State == "proved" && perID[s.MessageID] != 1 {
			t.Errorf("%s proved but delivered %d times", s.ID, perID[s.MessageID])
		}
	}
	t.Logf("connections %d, kills %d, notices %d, delivered %d (distinct %d), duplicates %d, states %v, uploads %d, in %s",
		conns, kills, notices, len(got), len(perID), dups, st, len(asc.uploads(t)), elapsed.Round(time.Second))
	if st["proved"]+st["in_doubt"] != notices {
		t.Errorf("states %v: every notice must end proved or in doubt", st)
	}
	// The last start-up told the operator how many wait for them.
	if n := st["in_doubt"]; n > 0 && !strings.Contains(d.logs.String(), fmt.Sprintf(`"msg":"steps in doubt wait for an operator; list them with `+"`errpd resolve`"+`","in_doubt":%d`, n)) {
		t.Errorf("the last start-up does not report the %d steps in doubt:\n%s", n, d.logs)
	}
	if st["in_doubt"] > kills*conns {
		t.Errorf("%d in doubt after %d kills with %d connections", st["in_doubt"], kills, conns)
	}
	// Uploads cut off by a kill are checked with Ascio before being made
	// again: each proved notice is on its order once.
	perOrder := map[string]int{}
	for _, u := range asc.uploads(t) {
		perOrder[u.orderID]++
	}
	for order, n := range perOrder {
		if n > 1 {
			t.Errorf("order %s holds %d uploads of one notice", order, n)
		}
	}
	if len(perOrder) != st["proved"] {
		t.Errorf("%d orders hold uploads, %d notices proved", len(perOrder), st["proved"])
	}
}

// waitSteps polls until every step of the named domains satisfies ok.
func waitSteps(t *testing.T, bin, cfg, what string, domains []string, ok func(step) bool) []step {
	t.Helper()
	want := map[string]bool{}
	for _, d := range domains {
		want[d] = true
	}
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var sel []step
		good := 0
		for _, s := range steps(t, bin, cfg) {
			if want[s.Domain] && s.Notice == "reminder1" {
				sel = append(sel, s)
				if ok(s) {
					good++
				}
			}
		}
		if good == len(domains) {
			return sel
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s: %+v", what, sel)
		}
	}
}

// TestFaults: the relay answers 550, 451 and 421, drops connections and
// hangs up after the final dot;
// Ascio answers 554, faults and stalls. Nothing is lost: temporary failures
// end proved, delivered once; permanent ones end failed, with the reply.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test")
	}
	bin := errpdBinary(t)
	sk := startSink(t, "-f", "rcpt", "-B", "550 5.1.1 no such user")
	asc := startAscio(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sk.addr, asc.endpoint, 2)
	d := startErrpd(t, bin, cfg)
	defer d.stop(t)
	importDomains := func(names []string) {
		var rows []string
		for i, n := range names {
			rows = append(rows, fmt.Sprintf("%s,%s,renew,R,%s@example.org,en,ORD-%s-%d,", n, day(30), strings.Split(n, ".")[0], n, i))
		}
		if _, err := errpdCmd(t, bin, "import", "--config", cfg, calendarCSV(t, dir, rows)); err != nil {
			t.Fatal(err)
		}
	}

	// 550: permanent, visible, not retried.
	perm := []string{"p1.example.com", "p2.example.com"}
	importDomains(perm)
	for _, s := range waitSteps(t, bin, cfg, "550 failures", perm, func(s step) bool { return s.State == "failed" }) {
		if !strings.Contains(s.SMTPReply, "550") || s.Attempts != 1 {
			t.Errorf("%s: reply %q attempts %d, want the 550 after one attempt", s.ID, s.SMTPReply, s.Attempts)
		}
	}

	// The relay hangs up after the final dot, without an answer: it may
	// have the message, so the step is in doubt and never resent on its own.
	lost := []string{"u1.example.com", "u2.example.com"}
	sk = sk.replace(t, "-q", ".")
	importDomains(lost)
	for _, s := range waitSteps(t, bin, cfg, "lost reply", lost, func(s step) bool { return s.State == "in_doubt" }) {
		if s.Attempts != 1 || !strings.Contains(s.SMTPReply, "may have accepted") {
			t.Errorf("%s: attempts %d reply %q, want in doubt after one attempt, saying so", s.ID, s.Attempts, s.SMTPReply)
		}
	}

	// 451, then 421 with a disconnect, then a dropped connection: temporary.
	temp := []string{"t1.example.com", "t2.example.com", "t3.example.com"}
	sk = sk.replace(t, "-r", "rcpt", "-b", "451 4.3.0 try again later")
	importDomains(temp)
	waitSteps(t, bin, cfg, "451 deferrals", temp, func(s step) bool { return s.State == "due" && strings.Contains(s.SMTPReply, "451") })
	sk = sk.replace(t, "-Q", "rcpt")
	waitSteps(t, bin, cfg, "421 deferrals", temp, func(s step) bool { return s.State == "due" && strings.Contains(s.SMTPReply, "421") })
	sk = sk.replace(t, "-q", "data")
	waitSteps(t, bin, cfg, "dropped connections", temp, func(s step) bool {
		return s.State == "due" && s.Attempts >= 3 && !strings.Contains(s.SMTPReply, "421") && !strings.Contains(s.SMTPReply, "451")
	})

	// The relay recovers; Ascio answers 554, a fault and a stall first, and
	// once stores an upload but loses its answer.
	asc.srv.Script(ascioteststand.OpUploadMessage, ascioteststand.TryLater, ascioteststand.Fault, ascioteststand.Stall, ascioteststand.Lost, ascioteststand.TryLater)
	sk = sk.replace(t)
	waitSteps(t, bin, cfg, "proof", temp, func(s step) bool { return s.State == "proved" })

	// An operator settles the notices in doubt, through the running daemon:
	// u1 is in the relay's log (marked sent, then proved), u2 is sent again.
	out, err := errpdCmd(t, bin, "resolve", "--config", cfg)
	if err != nil || strings.Count(out, "in_doubt") != len(lost) {
		t.Errorf("resolve lists %q (%v), want the %d steps in doubt", out, err, len(lost))
	}
	inDoubt := map[string]string{}
	for _, s := range steps(t, bin, cfg) {
		if s.State == "in_doubt" {
			inDoubt[s.Domain] = s.ID
		}
	}
	if _, err := errpdCmd(t, bin, "resolve", "--config", cfg, inDoubt["u1.example.com"], "--sent", "--note", "relay log shows queued as 4XyZ"); err != nil {
		t.Fatal(err)
	}
	if _, err := errpdCmd(t, bin, "resolve", "--config", cfg, inDoubt["u2.example.com"], "--resend"); err != nil {
		t.Fatal(err)
	}
	waitSteps(t, bin, cfg, "settled notices proved", lost, func(s step) bool { return s.State == "proved" })

	got := sk.messages(t)
	per := map[string]int{}
	for _, m := range got {
		per[m.rcpt]++
	}
	for _, n := range temp {
		if r := strings.Split(n, ".")[0] + "@example.org"; per[r] != 1 {
			t.Errorf("%s delivered %d times, want once", r, per[r])
		}
	}
	// u1 once (its lost reply); u2 twice: the lost reply, then the
	// operator's resend.
	for n, want := range map[string]int{"u1@example.org": 1, "u2@example.org": 2} {
		if per[n] != want {
			t.Errorf("%s delivered %d times, want %d", n, per[n], want)
		}
	}
	for _, n := range perm {
		if r := strings.Split(n, ".")[0] + "@example.org"; per[r] != 0 {
			t.Errorf("%s delivered %d times after a 550", r, per[r])
		}
	}
	if ups := asc.uploads(t); len(ups) != len(temp)+len(lost) {
		t.Errorf("%d uploads accepted, want %d", len(ups), len(temp)+len(lost))
	}
}

// TestSIGTERMFinishesTheSendInFlight: SIGTERM arrives while the relay takes
// its time answering the final dot. errpd waits for the answer, records the
// notice sent and exits; after a restart nothing is in doubt and the notice
// is proved, delivered once.
func TestSIGTERMFinishesTheSendInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin := errpdBinary(t)
	sk := startSink(t, "-W", ".:2")
	asc := startAscio(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, sk.addr, asc.endpoint, 1)
	d := startErrpd(t, bin, cfg)
	slow := []string{"slow.example.com"}
	cal := calendarCSV(t, dir, []string{"slow.example.com," + day(30) + ",renew,Sam,sam@example.org,en,ORD-S,"})
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, cal); err != nil {
		t.Fatal(err)
	}
	waitSteps(t, bin, cfg, "the SMTP transaction", slow, func(s step) bool { return s.State == "sending" })
	start := time.Now()
	d.stop(t) // SIGTERM
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(10*time.Millisecond))
	for _, s := range waitSteps(t, bin, cfg, "the outcome", slow, func(step) bool { return true }) {
		if s.State != "sent" && s.State != "proved" || !strings.Contains(s.SMTPReply, "250") {
			t.Errorf("after SIGTERM: %s with reply %q, want sent with the relay's 250", s.State, s.SMTPReply)
		}
	}
	if !strings.Contains(d.logs.String(), "notice sent") {
		t.Errorf("log does not record the send:\n%s", d.logs)
	}

	d = startErrpd(t, bin, cfg)
	waitSteps(t, bin, cfg, "proof after the restart", slow, func(s step) bool { return s.State == "proved" })
	d.stop(t)
	if got := sk.messages(t); len(got) != 1 {
		t.Errorf("%d messages delivered, want 1", len(got))
	}
}
