package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// verpRE is a notice's envelope sender with bounces.verp: the configured
// local part, "+", a 32-character lower-case base32 token, the same domain.
var verpRE = regexp.MustCompile(`^bounces\+[a-z2-7]{32}@errp\.example\.net$`)

// dsn is an RFC 3464 report as Postfix writes it, for the notice sent
// from verp to rcpt.
func dsn(verp, rcpt, status, diag string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
To: %[1]s
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Sender: rfc822; %[1]s

Final-Recipient: rfc822; %[2]s
Action: failed
Status: %[3]s
Diagnostic-Code: smtp; %[4]s

--B1--
`, verp, rcpt, status, diag), "\n", "\r\n"))
}

// bounceStep is a line of `errpd steps --json` with its bounce.
type bounceStep struct {
	ID           string `json:"id"`
	State        string `json:"state"`
	EnvelopeFrom string `json:"envelope_from"`
	Bounce       *struct {
		Kind   string    `json:"kind"`
		Status string    `json:"status"`
		At     time.Time `json:"at"`
	} `json:"bounce"`
}

func bounceSteps(t *testing.T, bin, cfg string) map[string]bounceStep {
	t.Helper()
	out, err := errpdCmd(t, bin, "steps", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bounceStep{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var s bounceStep
		if err := dec.Decode(&s); err != nil {
			t.Fatal(err)
		}
		all[s.ID] = s
	}
	return all
}

// errpdStdin runs errpd with stdin.
func errpdStdin(t *testing.T, bin string, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("errpd %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), err
}

func sendBounce(t *testing.T, addr, rcpt string, msg []byte) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(""); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		t.Fatalf("RCPT %s: %v", rcpt, err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()
}

// TestBounces: a notice goes out through smtp-sink with a VERP envelope
// sender, then comes back twice: an RFC 3464 DSN through the SMTP
// listener, and a bounce through `errpd bounce` (forwarded to the
// daemon). The step records it, unchanged in state; the report row and
// /metrics show it; the domain is flagged. A forged token changes nothing.
func TestBounces(t *testing.T) {
	bin, sk, _, dir, cfg := endToEnd(t, 1)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "[bounces]\nlisten = %q\n", listen)
	f.Close()
	d := startErrpd(t, bin, cfg)

	cal := calendarCSV(t, dir, []string{"in30.example.com," + day(30) + ",renew,Ann,ann@example.org,en,ORD-30,"})
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, cal); err != nil {
		t.Fatal(err)
	}
	var st bounceStep
	for end := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		for _, s := range bounceSteps(t, bin, cfg) {
			if s.State == "proved" {
				st = s
			}
		}
		if st.ID != "" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the notice was not proved:\n%s", d.logs)
		}
	}
	got := sk.messages(t)
	if len(got) != 1 || got[0].mailFrom != st.EnvelopeFrom || !verpRE.MatchString(st.EnvelopeFrom) {
		t.Fatalf("arrived %d messages; MAIL FROM %q, step's envelope %q", len(got), got[0].mailFrom, st.EnvelopeFrom)
	}
	verp := st.EnvelopeFrom
	metrics := httpListen(t, cfg)

	// A forged token: the listener takes the message and nothing changes.
	forged := verp[:len("bounces+")] + strings.Repeat("a", 32) + "@errp.example.net"
	sendBounce(t, listen, forged, dsn(forged, "ann@example.org", "5.1.1", "550 5.1.1 User unknown"))
	if s := bounceSteps(t, bin, cfg)[st.ID]; s.Bounce != nil {
		t.Fatalf("a forged token marked the notice: %+v", s.Bounce)
	}
	if n := metric(t, metrics, `errpd_bounces_total{kind="unverified"}`); n != 1 {
		t.Errorf("unverified bounces %v, want 1", n)
	}

	// 1: a DSN through the SMTP listener, to the address in any case.
	sendBounce(t, listen, strings.ToUpper(verp), dsn(verp, "ann@example.org", "5.1.1", "550 5.1.1 <ann@example.org>: User unknown"))
	s := bounceSteps(t, bin, cfg)[st.ID]
	if s.Bounce == nil || s.Bounce.Kind != "hard" || s.Bounce.Status != "5.1.1" || s.State != "proved" {
		t.Fatalf("after the DSN: state %s, bounce %+v", s.State, s.Bounce)
	}
	first := s.Bounce.At

	// 2: a bounce through `errpd bounce` on stdin, forwarded to the daemon
	// (a non-standard one: found by its address in To).
	qmail := strings.ReplaceAll("From: MAILER-DAEMON@mail.example.org\nTo: "+verp+
		"\nSubject: failure notice\n\n<ann@example.org>:\nRemote host said: 550 5.1.1 No such user here\n", "\n", "\r\n")
	out, err := errpdStdin(t, bin, []byte(qmail), "bounce", "--config", cfg)
	if err != nil || !strings.Contains(out, "recorded: hard 5.1.1 on "+st.ID) {
		t.Fatalf("errpd bounce: %q, %v", out, err)
	}
	// And a forged one through it: exit 0, nothing changes.
	out, err = errpdStdin(t, bin, dsn(forged, "ann@example.org", "5.1.1", "x"), "bounce", "--config", cfg, "--recipient", forged)
	if err != nil || !strings.HasPrefix(out, "ignored: no valid bounce token") {
		t.Errorf("forged through errpd bounce: %q, %v", out, err)
	}

	s = bounceSteps(t, bin, cfg)[st.ID]
	if s.Bounce == nil || s.Bounce.Kind != "hard" || !s.Bounce.At.Equal(first) || s.State != "proved" {
		t.Errorf("after both bounces: state %s, bounce %+v (the first hard bounce is kept)", s.State, s.Bounce)
	}
	for series, want := range map[string]float64{
		`errpd_bounces_total{kind="hard"}`:       2,
		`errpd_bounces_total{kind="unverified"}`: 2,
		`errpd_bounces_total{kind="soft"}`:       0,
	} {
		if got := metric(t, metrics, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}

	// The report row and the domain's flag.
	rep := filepath.Join(dir, "report.csv")
	if _, err := errpdCmd(t, bin, "report", "--config", cfg, "--output", rep); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	found := false
	for _, r := range rows[1:] {
		if r[col["step"]] != st.ID {
			continue
		}
		found = true
		if r[col["bounce"]] != "hard" || r[col["bounce_status"]] != "5.1.1" || r[col["bounced_at"]] == "" ||
			r[col["contact_flag"]] != "registrant e-mail failed: verify contact data" || r[col["state"]] != "proved" {
			t.Errorf("report row: bounce %q status %q at %q flag %q state %q", r[col["bounce"]], r[col["bounce_status"]],
				r[col["bounced_at"]], r[col["contact_flag"]], r[col["state"]])
		}
	}
	if !found {
		t.Errorf("no report row for %s", st.ID)
	}
	if out, _ := errpdCmd(t, bin, "domains", "--config", cfg, "--json"); !strings.Contains(out, `"flag":"registrant e-mail failed: verify contact data"`) {
		t.Errorf("domains: %s", out)
	}
	d.stop(t)

	// Without the daemon, errpd bounce works on the store itself.
	out, err = errpdStdin(t, bin, dsn(verp, "ann@example.org", "4.2.2", "452 4.2.2 Mailbox full"), "bounce", "--config", cfg, "--recipient", verp)
	if err != nil || !strings.Contains(out, "recorded: soft 4.2.2 on "+st.ID) {
		t.Errorf("errpd bounce on the store: %q, %v", out, err)
	}
	if s := bounceSteps(t, bin, cfg)[st.ID]; s.Bounce == nil || s.Bounce.Kind != "hard" {
		t.Errorf("a soft bounce replaced the hard one: %+v", s.Bounce)
	}
	if logs := d.logs.String(); !strings.Contains(logs, "bounce without a valid token") {
		t.Errorf("the forged bounce was not logged")
	}
}
