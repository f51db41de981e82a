package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestPreview(t *testing.T) {
	cfg := testConfig(t)
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"+
		"bücher.example,2099-06-30T12:00:00Z,expire,Bea Beispiel,bea@example.org,en,,\n"), 0o600)
	if _, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv); err != nil {
		t.Fatal(err)
	}
	out, _, err := errpd(t, context.Background(), "preview", "--config", cfg, "--domain", "bücher.example",
		"--notice", "reminder3", "--now", "2099-07-01T08:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Subject:", "To: ", "bea@example.org", "Bea Beispiel", "bücher.example", "2099-06-30", "(templates: "} {
		if !strings.Contains(out, want) {
			t.Errorf("preview lacks %q:\n%s", want, out)
		}
	}
	raw, _, err := errpd(t, context.Background(), "preview", "--config", cfg, "--domain", "xn--bcher-kva.example", "--notice", "reminder3", "--raw")
	if err != nil || !strings.Contains(raw, "\r\n\r\n") || !strings.Contains(raw, "Message-ID: <") {
		t.Errorf("--raw is not the message as sent (%v):\n%.300s", err, raw)
	}

	// Mistakes name what was wrong.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--domain", "nope.example"}, "nope.example is not in the store"},
		{[]string{"--domain", "bücher.example", "--notice", "reminder9"}, "--notice"},
		{[]string{"--domain", "bücher.example", "--now", "tomorrow"}, "--now"},
	} {
		_, _, err := errpd(t, context.Background(), append([]string{"preview", "--config", cfg}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("preview %v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "var", "outbox")); err == nil {
		t.Error("preview wrote to the outbox")
	}
}

// startDNS serves TXT records on loopback for check-spf.
func startDNS(t *testing.T, txt map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		name := strings.ToLower(strings.TrimSuffix(q.Question[0].Name, "."))
		rec, ok := txt[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		} else if q.Question[0].Qtype == dns.TypeTXT {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{rec}})
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func TestCheckSPF(t *testing.T) {
	resolver := startDNS(t, map[string]string{
		"example.net":        "v=spf1 ip4:192.0.2.10 -all",
		"bounces.other.test": "v=spf1 ip4:192.0.2.10 -all",
	})
	write := func(envelope string) string {
		dir := t.TempDir()
		path := filepath.Join(dir, "errpd.toml")
		os.WriteFile(path, fmt.Appendf(nil, `[store]
path = "errpd.db"
[smtp]
envelope_from = %q
egress_ips = ["192.0.2.10"]
resolver = %q
[mail]
from = "Example Domains <renewals@example.net>"
`, envelope, resolver), 0o600)
		return path
	}
	out, _, err := errpd(t, context.Background(), "check-spf", "--config", write("bounces@example.net"))
	if err != nil || !strings.Contains(out, "PASS") {
		t.Errorf("aligned envelope with a passing SPF record: %v\n%s", err, out)
	}
	out, _, err = errpd(t, context.Background(), "check-spf", "--config", write("bounces@bounces.other.test"))
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(out, "does not align") ||
		!strings.Contains(out, "fix: set smtp.envelope_from") || exitCode(err) == 0 {
		t.Errorf("envelope domain not aligned with From: %v (exit %d)\n%s", err, exitCode(err), out)
	}
}
