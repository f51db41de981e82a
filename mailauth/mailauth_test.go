package mailauth

import (
	"context"
	"net"
	"strings"
	"testing"

	"blitiri.com.ar/go/spf"
	"github.com/miekg/dns"
)

// zone is an in-process DNS server (miekg/dns) on 127.0.0.1 answering TXT
// queries from a map; every other name does not exist.
func zone(t *testing.T, txt map[string][]string) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true // else Go takes an empty answer for a lame referral
		name := strings.ToLower(strings.TrimSuffix(q.Question[0].Name, "."))
		recs, ok := txt[name]
		if !ok {
			m.Rcode = dns.RcodeNameError
		}
		if q.Question[0].Qtype == dns.TypeTXT {
			for _, r := range recs {
				m.Answer = append(m.Answer, &dns.TXT{
					Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
					Txt: []string{r},
				})
			}
		}
		w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return NewResolver(pc.LocalAddr().String())
}

var records = map[string][]string{
	"example.net":           {"v=spf1 ip4:192.0.2.10 -all", "google-site-verification=abc"},
	"_dmarc.example.net":    {"v=DMARC1; p=quarantine"},
	"soft.example.net":      {"v=spf1 ip4:192.0.2.10 ~all"},
	"bounces.example.org":   {"v=spf1 include:_spf.relay.example -all"},
	"_spf.relay.example":    {"v=spf1 ip4:198.51.100.0/24 -all"},
	"example.org":           {},
	"mail.strict.example":   {"v=spf1 ip4:192.0.2.10 -all"},
	"strict.example":        {"v=spf1 mx -all"},
	"_dmarc.strict.example": {"v=DMARC1; p=reject; aspf=s"},
	"relay.example":         {"v=spf1 ip4:192.0.2.10 -all"},
	"brand.example":         {"v=spf1 include:_spf.office.example ~all"},
	"double.example":        {"v=spf1 ip4:192.0.2.10 -all", "v=spf1 -all"},
}

func TestCheck(t *testing.T) {
	r := zone(t, records)
	ctx := context.Background()
	tests := []struct {
		name        string
		ip          string
		s           Sender
		ok, aligned bool
		result      spf.Result
		fix         string // a fix must contain it; "" wants none
		problem     string
	}{
		{"pass", "192.0.2.10", Sender{From: "renewals@example.net", EnvelopeFrom: "bounces@example.net"},
			true, true, spf.Pass, "", ""},
		{"fail", "192.0.2.99", Sender{From: "renewals@example.net", EnvelopeFrom: "bounces@example.net"},
			false, true, spf.Fail, `example.net. IN TXT "v=spf1 ip4:192.0.2.99 ip4:192.0.2.10 -all"`, "gives fail for the relay's address 192.0.2.99"},
		{"softfail", "192.0.2.99", Sender{From: "renewals@example.net", EnvelopeFrom: "b@soft.example.net"},
			false, true, spf.SoftFail, `soft.example.net. IN TXT "v=spf1 ip4:192.0.2.99 ip4:192.0.2.10 ~all"`, "softfail"},
		{"include", "198.51.100.7", Sender{From: "renewals@example.org", EnvelopeFrom: "errp@bounces.example.org"},
			true, true, spf.Pass, "", ""},
		{"no record", "192.0.2.10", Sender{From: "renewals@example.org", EnvelopeFrom: "errp@example.org"},
			false, true, spf.None, `example.org. IN TXT "v=spf1 ip4:192.0.2.10 ~all"`, "gives none"},
		{"misaligned envelope", "192.0.2.10", Sender{Brand: "acme", From: "renewals@brand.example", EnvelopeFrom: "bounces@relay.example"},
			false, false, spf.Pass, `set brands.acme.envelope_from = "bounces@bounces.brand.example" and publish: bounces.brand.example. IN TXT "v=spf1 ip4:192.0.2.10 ~all"`, "relay.example is not brand.example"},
		{"strict alignment", "192.0.2.10", Sender{From: "renewals@strict.example", EnvelopeFrom: "bounces@mail.strict.example"},
			false, false, spf.Pass, `set smtp.envelope_from = "bounces@strict.example" and publish: strict.example. IN TXT "v=spf1 ip4:192.0.2.10 mx -all"`, "aspf=s"},
		{"two SPF records", "192.0.2.10", Sender{From: "renewals@double.example", EnvelopeFrom: "bounces@double.example"},
			false, true, spf.PermError, "", "2 SPF records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{Resolver: r, IPs: []net.IP{net.ParseIP(tc.ip)}}
			v, err := c.Check(ctx, tc.s)
			if err != nil {
				t.Fatal(err)
			}
			report := v.Report()
			if v.OK != tc.ok || v.Aligned != tc.aligned || len(v.SPF) != 1 || v.SPF[0].Result != tc.result {
				t.Errorf("ok %v aligned %v spf %+v; want %v %v %s\n%s", v.OK, v.Aligned, v.SPF, tc.ok, tc.aligned, tc.result, report)
			}
			fixes := strings.Join(v.Fixes, "\n")
			if tc.fix == "" && tc.problem == "" && fixes != "" {
				t.Errorf("fixes for a passing check: %s", fixes)
			}
			if !strings.Contains(fixes, tc.fix) {
				t.Errorf("fixes %q lack %q", fixes, tc.fix)
			}
			if !strings.Contains(strings.Join(v.Problems, "\n"), tc.problem) {
				t.Errorf("problems %q lack %q", v.Problems, tc.problem)
			}
			if want := map[bool]string{true: "PASS", false: "FAIL"}[tc.ok]; !strings.HasPrefix(report, want) {
				t.Errorf("report starts %q, want %s", report[:10], want)
			}
		})
	}
}

func TestDMARCAndDKIM(t *testing.T) {
	key := "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	recs := map[string][]string{}
	for k, v := range records {
		recs[k] = v
	}
	recs["errpd._domainkey.example.net"] = []string{key}
	recs["old._domainkey.example.net"] = []string{"v=DKIM1; k=ed25519; p=AAAA"}
	r := zone(t, recs)
	c := &Checker{Resolver: r, IPs: []net.IP{net.ParseIP("192.0.2.10")}}

	// The DMARC record of the organisational domain applies to a subdomain.
	v, err := c.Check(context.Background(), Sender{From: "renewals@news.example.net", EnvelopeFrom: "bounces@example.net",
		DKIM: &DKIM{Domain: "example.net", Selector: "errpd", Record: key}})
	if err != nil {
		t.Fatal(err)
	}
	if v.DMARCDomain != "example.net" || v.DMARCRecord != "v=DMARC1; p=quarantine" {
		t.Errorf("DMARC %q at %q", v.DMARCRecord, v.DMARCDomain)
	}
	if !v.OK || !v.DKIMAligned || !v.DKIMPublished || !v.DMARCPass() {
		t.Errorf("ok %v, DKIM aligned %v published %v\n%s", v.OK, v.DKIMAligned, v.DKIMPublished, v.Report())
	}

	// A key published under the selector but not matching ours.
	v, err = c.Check(context.Background(), Sender{From: "renewals@example.net", EnvelopeFrom: "bounces@example.net",
		DKIM: &DKIM{Domain: "example.net", Selector: "old", Record: key}})
	if err != nil {
		t.Fatal(err)
	}
	if v.DKIMPublished || !strings.Contains(strings.Join(v.Notes, "\n"), `old._domainkey.example.net. IN TXT "`+key+`"`) {
		t.Errorf("mismatched DKIM key: published %v, notes %q", v.DKIMPublished, v.Notes)
	}

	// No DMARC anywhere: reported, with the record to publish, but SPF
	// alone decides the verdict.
	v, err = c.Check(context.Background(), Sender{From: "renewals@relay.example", EnvelopeFrom: "bounces@relay.example"})
	if err != nil {
		t.Fatal(err)
	}
	if v.DMARCRecord != "" || !v.OK || !strings.Contains(strings.Join(v.Notes, "\n"), `_dmarc.relay.example. IN TXT "v=DMARC1; p=none"`) {
		t.Errorf("no DMARC: record %q ok %v notes %q", v.DMARCRecord, v.OK, v.Notes)
	}
}

func TestNoEgressAddresses(t *testing.T) {
	c := &Checker{Resolver: zone(t, records)}
	v, err := c.Check(context.Background(), Sender{From: "renewals@example.net", EnvelopeFrom: "bounces@example.net"})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || !strings.Contains(strings.Join(v.Problems, "\n"), "smtp.egress_ips") {
		t.Errorf("without egress addresses: ok %v problems %q", v.OK, v.Problems)
	}
}

func TestOrgDomain(t *testing.T) {
	for in, want := range map[string]string{
		"bounces.example.net": "example.net", "example.net": "example.net",
		"a.b.example.co.uk": "example.co.uk", "Mail.Example.COM.": "example.com",
	} {
		if got := orgDomain(in); got != want {
			t.Errorf("orgDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestZoneLineSplitsLongRecords(t *testing.T) {
	long := "v=DKIM1; k=rsa; p=" + strings.Repeat("A", 400)
	got := zoneLine("s._domainkey.example.net", long)
	if !strings.HasPrefix(got, `s._domainkey.example.net. IN TXT "v=DKIM1`) || strings.Count(got, `"`) != 4 {
		t.Errorf("zoneLine: %s", got)
	}
}
