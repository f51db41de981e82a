package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ascioapi "github.com/errpd/errpd/ascio"
)

// lstep is a step as `errpd steps --json` prints it, with its reason.
type lstep struct {
	ID        string `json:"id"`
	Domain    string `json:"domain"`
	Notice    string `json:"notice"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Recipient string `json:"recipient"`
	OrderID   string `json:"order_id"`
}

func lsteps(t *testing.T, bin, cfg string) map[string]lstep {
	t.Helper()
	out, err := errpdCmd(t, bin, "steps", "--config", cfg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]lstep{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var s lstep
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		all[s.Domain+" "+s.Notice] = s
	}
	return all
}

// waitProved waits until the given notices ("domain notice") are proved.
func waitProved(t *testing.T, bin, cfg string, keys ...string) map[string]lstep {
	t.Helper()
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		all := lsteps(t, bin, cfg)
		done := 0
		for _, k := range keys {
			if all[k].State == "proved" {
				done++
			}
		}
		if done == len(keys) {
			return all
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %v to be proved: %+v", keys, all)
		}
	}
}

// appendConfig adds text to the end of a config file.
func appendConfig(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeCalendar(t *testing.T, path string, rows ...string) string {
	t.Helper()
	text := "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand,status\n" + strings.Join(rows, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLifecycleAfterExpiry, through errpd serve, smtp-sink and the Ascio
// stand-in: a holder change after expiry still sends reminder3 to the
// Registrant at Expiration; a failed AutoRenew callback and a status
// expired row each lead to reminder3 being sent and proved; a domain
// transferred away is sent nothing more.
func TestLifecycleAfterExpiry(t *testing.T) {
	bin, sk, asc, dir, cfg := endToEnd(t, 2)
	// The failed AutoRenew callback is to be the evidence for
	// fail.example.com. Its renewal check (asked by name: the calendar
	// gives no handle) would otherwise fall due at once, expiry being a
	// day ago, and race the callback with GetDomains' evidence; the check
	// is lifecycle's TestRenewalCheck's.
	appendConfig(t, cfg, "[policy]\nrenewal_check_after = \"72h\"\n")

	// Before the daemon runs: two imports after expiry, the second with
	// a new holder; a transferred domain; a renew-mode domain the
	// calendar says expired; one whose AutoRenew will fail.
	// Each expiry once: a second's difference would be another cycle.
	exp := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	ago1, ago2 := exp.Format(time.RFC3339), exp.Add(-24*time.Hour).Format(time.RFC3339)
	first := writeCalendar(t, filepath.Join(dir, "first.csv"),
		"rae.example.com,"+ago2+",expire,Ann,ann@example.org,en,ORD-RAE,,",
		"gone.example.com,"+ago2+",expire,Gil,gil@example.org,en,ORD-GONE,,",
		"fail.example.com,"+ago1+",renew,Fay,fay@example.org,en,ORD-FAIL,,",
		"renewed.example.com,"+ago1+",renew,Ray,ray@example.org,en,ORD-REN,,",
	)
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, first); err != nil {
		t.Fatal(err)
	}
	second := writeCalendar(t, filepath.Join(dir, "second.csv"),
		"rae.example.com,"+ago2+",expire,Bob,bob@example.org,en,ORD-RAE,,",
		"gone.example.com,"+ago2+",expire,Gil,gil@example.org,en,ORD-GONE,,transferred",
		"exp.example.com,"+ago1+",renew,Eve,eve@example.org,en,ORD-EXP,,expired",
		"renewed.example.com,"+day(364)+",renew,Ray,ray@example.org,en,ORD-REN2,,renewed",
	)
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, second); err != nil {
		t.Fatal(err)
	}

	d := startErrpd(t, bin, cfg)
	defer d.stop(t)

	owner := ascioapi.Contact{FirstName: "Fay", LastName: "F", Email: "fay@example.org"}
	asc.srv.AddMessage(ascioapi.QueueMessage{ID: 5150, Text: "AutoRenew fail.example.com", ObjectHandle: "DOM-FAIL",
		ObjectName: "fail.example.com", OrderID: "ORD-FAIL", OrderStatus: "Failed", OrderType: "AutoRenew"})
	asc.srv.AddOrder(ascioapi.Order{ID: "ORD-FAIL", Status: "Failed", Type: "AutoRenew",
		DomainName: "fail.example.com", DomainHandle: "DOM-FAIL", Owner: owner})
	asc.srv.AddDomain(ascioapi.Domain{Name: "fail.example.com", Handle: "DOM-FAIL", Status: "EXPIRED", Expires: exp, Owner: owner})
	q := url.Values{"MessageId": {"5150"}, "OrderId": {"ORD-FAIL"}, "OrderStatus": {"Failed"}, "Object": {"fail.example.com"}}
	resp, err := http.Get("http://" + httpListen(t, cfg) + "/ascio/callback?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("callback answered %d", resp.StatusCode)
	}

	all := waitProved(t, bin, cfg, "rae.example.com reminder3", "exp.example.com reminder3", "fail.example.com reminder3")
	if r := all["rae.example.com reminder3"].Recipient; r != "ann@example.org" {
		t.Errorf("reminder3 after a holder change after expiry went to %s, want the RAE ann@example.org", r)
	}
	for k, order := range map[string]string{"exp.example.com reminder3": "ORD-EXP", "fail.example.com reminder3": "ORD-FAIL"} {
		if s := all[k]; s.OrderID != order {
			t.Errorf("%s proved against order %q, want %s", k, s.OrderID, order)
		}
	}
	for k, s := range all {
		switch {
		case strings.HasPrefix(k, "gone.example.com ") && s.State != "skipped" && s.State != "missed":
			t.Errorf("%s: %s, want skipped (transferred) or missed", k, s.State)
		case k == "gone.example.com reminder3" && s.Reason != "transferred away (calendar "+second+":3)":
			t.Errorf("%s skipped with %q, want the calendar's reason", k, s.Reason)
		case strings.HasPrefix(k, "renewed.example.com ") && (s.Notice == "reminder3" || s.Notice == "suspension"):
			t.Errorf("renewed domain owes %s (%s)", s.Notice, s.State)
		}
	}
	out, err := errpdCmd(t, bin, "steps", "--config", cfg, "--domain", "fail.example.com")
	if err != nil || !strings.Contains(out, "not renewed: AutoRenew order ORD-FAIL Failed") {
		t.Errorf("steps does not show the evidence: %v\n%s", err, out)
	}
	to := map[string]int{}
	for _, m := range sk.messages(t) {
		to[m.rcpt]++
	}
	for _, r := range []string{"bob@example.org", "gil@example.org", "ray@example.org"} {
		if to[r] != 0 {
			t.Errorf("%d messages to %s, want none", to[r], r)
		}
	}
	for _, r := range []string{"ann@example.org", "eve@example.org", "fay@example.org"} {
		if to[r] != 1 {
			t.Errorf("%d messages to %s, want reminder3 once", to[r], r)
		}
	}
}

// TestFullSync: errpd import --full-sync through the daemon closes the
// domains the file does not list, and refuses above --max-drop; --dry-run
// writes nothing.
func TestFullSync(t *testing.T) {
	bin, _, _, dir, cfg := endToEnd(t, 1)
	d := startErrpd(t, bin, cfg)
	defer d.stop(t)

	var rows []string
	for _, n := range "abcdefghij" {
		rows = append(rows, string(n)+".example.com,"+day(60)+",expire,Ann,ann@example.org,en,,,")
	}
	if _, err := errpdCmd(t, bin, "import", "--config", cfg, writeCalendar(t, filepath.Join(dir, "all.csv"), rows...)); err != nil {
		t.Fatal(err)
	}
	sync := writeCalendar(t, filepath.Join(dir, "sync.csv"), rows[2:]...) // a and b missing: 20%
	before := lsteps(t, bin, cfg)
	out, err := errpdCmd(t, bin, "import", "--config", cfg, "--full-sync", "--dry-run", "--max-drop", "25", sync)
	if err != nil || !strings.Contains(out, "dry run, nothing written") || !strings.Contains(out, "2 open cycles closed") {
		t.Errorf("dry run: %v\n%s", err, out)
	}
	_, err = errpdCmd(t, bin, "import", "--config", cfg, "--full-sync", sync)
	if err == nil || !strings.Contains(err.Error(), "would close 2 of 10 active domains (20.0%), more than --max-drop 10.0%") {
		t.Errorf("full sync dropping 20%% with the default --max-drop: %v, want refused naming the counts", err)
	}
	if after := lsteps(t, bin, cfg); len(after) != len(before) || after["a.example.com reminder1"].State != before["a.example.com reminder1"].State {
		t.Errorf("a dry run or refused sync changed steps")
	}
	if out, err := errpdCmd(t, bin, "import", "--config", cfg, "--full-sync", "--max-drop", "20", sync); err != nil || !strings.Contains(out, "2 open cycles closed") {
		t.Fatalf("full sync within --max-drop: %v\n%s", err, out)
	}
	after := lsteps(t, bin, cfg)
	for k, s := range after {
		gone := strings.HasPrefix(k, "a.") || strings.HasPrefix(k, "b.")
		if gone && (s.State != "skipped" || s.Reason != "not in calendar, full sync of "+sync) {
			t.Errorf("%s: %s (%q), want skipped, not in calendar", k, s.State, s.Reason)
		}
		if !gone && s.State != "planned" {
			t.Errorf("%s: %s, want planned", k, s.State)
		}
	}
}
