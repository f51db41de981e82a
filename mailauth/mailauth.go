// Package mailauth checks, before errpd sends anything, that its notices
// will pass DMARC: that SPF for the envelope sender's domain allows the
// relay's egress addresses, that the envelope domain aligns with the From
// domain (relaxed: the same organisational domain; strict when the From
// domain's DMARC record says aspf=s), and whether DMARC and a DKIM key are
// published. A failing check comes with the exact DNS record that fixes it.
package mailauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"blitiri.com.ar/go/spf"
	"golang.org/x/net/publicsuffix"
)

// Resolver is what the checks ask DNS; *net.Resolver has it.
type Resolver interface {
	spf.DNSResolver
}

// NewResolver returns a resolver that asks the DNS server at addr
// ("host:port"), or the system's resolver when addr is empty.
func NewResolver(addr string) *net.Resolver {
	if addr == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
}

// Sender is one identity errpd sends as: a brand.
type Sender struct {
	Brand        string // the brand's key; "" for the [mail] sender
	From         string // header From address, e.g. renewals@example.net
	EnvelopeFrom string // MAIL FROM
	DKIM         *DKIM  // nil: notices are not signed
}

// DKIM is the key a sender signs with.
type DKIM struct {
	Domain   string // d=
	Selector string // s=
	Record   string // the TXT record that publishes its public key
}

// Checker runs the checks.
type Checker struct {
	Resolver Resolver // nil: the system's
	IPs      []net.IP // the relay's egress addresses
}

// IPResult is SPF's answer for one egress address.
type IPResult struct {
	IP     net.IP
	Result spf.Result
	Err    string // SPF's explanation, for a result other than pass
}

// Verdict is the outcome for one sender.
type Verdict struct {
	Sender         Sender
	FromDomain     string
	EnvelopeDomain string

	SPFRecord string     // the envelope domain's v=spf1 record; "" if none
	SPF       []IPResult // one per egress address
	SPFPass   bool       // every egress address passes

	Strict  bool // DMARC asks for strict SPF alignment (aspf=s)
	Aligned bool // the envelope domain aligns with From

	DMARCRecord string // the DMARC record that applies; "" if none
	DMARCDomain string // where it was found

	DKIMAligned   bool // notices are signed for a domain aligned with From
	DKIMPublished bool // and its key is published as configured

	OK       bool     // SPF passes for every egress address and aligns
	Problems []string // why not OK
	Fixes    []string // DNS records (zone-file lines) or settings that fix them
	Notes    []string // advice that does not fail the check
}

// Check runs every check for one sender. Only a failing DNS lookup is an
// error; everything else is in the verdict.
func (c *Checker) Check(ctx context.Context, s Sender) (Verdict, error) {
	r := c.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	v := Verdict{Sender: s, FromDomain: domainOf(s.From), EnvelopeDomain: domainOf(s.EnvelopeFrom)}
	if v.FromDomain == "" || v.EnvelopeDomain == "" {
		return v, fmt.Errorf("sender %q: from %q or envelope %q has no domain", s.Brand, s.From, s.EnvelopeFrom)
	}

	// DMARC: the From domain's record, else its organisational domain's
	// (RFC 7489 6.6.3).
	for _, d := range uniq(v.FromDomain, orgDomain(v.FromDomain)) {
		rec, err := lookupTXT(ctx, r, "_dmarc."+d, "v=DMARC1")
		if err != nil {
			return v, err
		}
		if len(rec) > 0 {
			v.DMARCRecord, v.DMARCDomain = rec[0], d
			break
		}
	}
	tags := dmarcTags(v.DMARCRecord)
	v.Strict = tags["aspf"] == "s"

	// SPF for the envelope domain.
	spfRecs, err := lookupTXT(ctx, r, v.EnvelopeDomain, "v=spf1")
	if err != nil {
		return v, err
	}
	if len(spfRecs) > 0 {
		v.SPFRecord = spfRecs[0]
	}
	if len(spfRecs) > 1 {
		v.Problems = append(v.Problems, fmt.Sprintf("%s publishes %d SPF records; SPF then fails (permerror): merge them into one", v.EnvelopeDomain, len(spfRecs)))
	}
	v.SPFPass = len(c.IPs) > 0
	var missing []net.IP
	for _, ip := range c.IPs {
		res, err := spf.CheckHostWithSender(ip, v.EnvelopeDomain, s.EnvelopeFrom,
			spf.WithResolver(r), spf.WithContext(ctx))
		ir := IPResult{IP: ip, Result: res}
		if res != spf.Pass {
			v.SPFPass = false
			missing = append(missing, ip)
			if err != nil {
				ir.Err = err.Error()
			}
		}
		v.SPF = append(v.SPF, ir)
	}
	switch {
	case len(c.IPs) == 0:
		v.Problems = append(v.Problems, "smtp.egress_ips is empty: SPF cannot be checked for the relay's addresses")
	case !v.SPFPass:
		for _, ir := range v.SPF {
			if ir.Result != spf.Pass {
				v.Problems = append(v.Problems, fmt.Sprintf("SPF for %s gives %s for the relay's address %s", v.EnvelopeDomain, ir.Result, ir.IP))
			}
		}
		v.Fixes = append(v.Fixes, zoneLine(v.EnvelopeDomain, spfFix(v.SPFRecord, missing)))
	}

	// Alignment of the envelope domain with From.
	if v.Strict {
		v.Aligned = strings.EqualFold(v.EnvelopeDomain, v.FromDomain)
	} else {
		v.Aligned = strings.EqualFold(orgDomain(v.EnvelopeDomain), orgDomain(v.FromDomain))
	}
	if !v.Aligned {
		mode := "relaxed alignment needs the same organisational domain: " + orgDomain(v.EnvelopeDomain) + " is not " + orgDomain(v.FromDomain)
		target := "bounces." + v.FromDomain
		if v.Strict {
			mode = "the DMARC record of " + v.DMARCDomain + " asks for strict alignment (aspf=s): the envelope domain must be " + v.FromDomain
			target = v.FromDomain
		}
		v.Problems = append(v.Problems, fmt.Sprintf("the envelope sender %s does not align with From %s (%s)", s.EnvelopeFrom, s.From, mode))
		key := "smtp.envelope_from"
		if s.Brand != "" {
			key = "brands." + s.Brand + ".envelope_from"
		}
		// Suggest the record for the aligned envelope domain, amending what
		// it may already publish.
		existing, err := lookupTXT(ctx, r, target, "v=spf1")
		if err != nil {
			return v, err
		}
		var cur string
		if len(existing) > 0 {
			cur = existing[0]
		}
		fix := fmt.Sprintf("set %s = \"bounces@%s\"", key, target)
		if len(c.IPs) > 0 {
			fix += " and publish: " + zoneLine(target, spfFix(cur, c.IPs))
		}
		v.Fixes = append(v.Fixes, fix)
	}

	if v.DMARCRecord == "" {
		v.Notes = append(v.Notes, fmt.Sprintf("%s publishes no DMARC record; large mailbox providers want one from bulk senders: %s",
			orgDomain(v.FromDomain), zoneLine("_dmarc."+orgDomain(v.FromDomain), "v=DMARC1; p=none")))
	}

	// DKIM: aligned when the signing domain is From's (or, relaxed, shares
	// its organisational domain); useful only when the key is published.
	if s.DKIM == nil {
		v.Notes = append(v.Notes, "notices are not DKIM-signed (mail.dkim_key); mailbox providers want DKIM from bulk senders")
	} else {
		if tags["adkim"] == "s" {
			v.DKIMAligned = strings.EqualFold(s.DKIM.Domain, v.FromDomain)
		} else {
			v.DKIMAligned = strings.EqualFold(orgDomain(s.DKIM.Domain), orgDomain(v.FromDomain))
		}
		name := s.DKIM.Selector + "._domainkey." + s.DKIM.Domain
		recs, err := lookupTXT(ctx, r, name, "")
		if err != nil {
			return v, err
		}
		want := dmarcTags(s.DKIM.Record)["p"]
		v.DKIMPublished = slices.ContainsFunc(recs, func(rec string) bool { return dmarcTags(rec)["p"] == want })
		if !v.DKIMPublished {
			why := "is not published"
			if len(recs) > 0 {
				why = "is published with another key"
			}
			v.Notes = append(v.Notes, fmt.Sprintf("the DKIM key %s %s, so signatures will fail: %s", name, why, zoneLine(name, s.DKIM.Record)))
		}
		if !v.DKIMAligned {
			v.Notes = append(v.Notes, fmt.Sprintf("the DKIM signing domain %s does not align with From %s", s.DKIM.Domain, v.FromDomain))
		}
	}
	v.OK = v.SPFPass && v.Aligned && len(spfRecs) <= 1
	return v, nil
}

// DMARCPass says whether a notice would pass DMARC: SPF passing and
// aligned, or a published, aligned DKIM signature.
func (v Verdict) DMARCPass() bool {
	return (v.SPFPass && v.Aligned) || (v.DKIMAligned && v.DKIMPublished)
}

// Report is the verdict in plain words, one line per finding.
func (v Verdict) Report() string {
	var b strings.Builder
	name := v.Sender.Brand
	if name == "" {
		name = "[mail]"
	}
	verdict := "PASS"
	if !v.OK {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "%s %s: From %s, envelope %s\n", verdict, name, v.Sender.From, v.Sender.EnvelopeFrom)
	rec := v.SPFRecord
	if rec == "" {
		rec = "(none)"
	}
	fmt.Fprintf(&b, "  SPF %s: %s\n", v.EnvelopeDomain, rec)
	for _, ir := range v.SPF {
		fmt.Fprintf(&b, "    %s: %s\n", ir.IP, ir.Result)
	}
	mode := "relaxed"
	if v.Strict {
		mode = "strict"
	}
	fmt.Fprintf(&b, "  alignment (%s): %s\n", mode, yesNo(v.Aligned))
	if v.DMARCRecord != "" {
		fmt.Fprintf(&b, "  DMARC %s: %s\n", v.DMARCDomain, v.DMARCRecord)
	} else {
		fmt.Fprintf(&b, "  DMARC: none\n")
	}
	if d := v.Sender.DKIM; d != nil {
		fmt.Fprintf(&b, "  DKIM d=%s s=%s: aligned %s, published %s\n", d.Domain, d.Selector, yesNo(v.DKIMAligned), yesNo(v.DKIMPublished))
	} else {
		fmt.Fprintf(&b, "  DKIM: not signed\n")
	}
	fmt.Fprintf(&b, "  DMARC would pass: %s\n", yesNo(v.DMARCPass()))
	for _, p := range v.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	for _, f := range v.Fixes {
		fmt.Fprintf(&b, "  fix: %s\n", f)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// spfFix is the SPF record that adds ips to rec (or a new one).
func spfFix(rec string, ips []net.IP) string {
	var add []string
	for _, ip := range ips {
		if ip.To4() != nil {
			add = append(add, "ip4:"+ip.String())
		} else {
			add = append(add, "ip6:"+ip.String())
		}
	}
	if rec == "" {
		return "v=spf1 " + strings.Join(add, " ") + " ~all"
	}
	terms := strings.Fields(rec)
	return strings.Join(slices.Concat(terms[:1], add, terms[1:]), " ")
}

// zoneLine writes a TXT record as a zone file line. Strings longer than
// 255 bytes are split, as TXT's character-strings must be.
func zoneLine(name, text string) string {
	var parts []string
	for len(text) > 255 {
		parts = append(parts, text[:255])
		text = text[255:]
	}
	parts = append(parts, text)
	for i, p := range parts {
		parts[i] = `"` + strings.ReplaceAll(p, `"`, `\"`) + `"`
	}
	return name + ". IN TXT " + strings.Join(parts, " ")
}

// lookupTXT returns name's TXT records starting with prefix (compared
// case-blind, as a whole word); a name that does not exist has none.
func lookupTXT(ctx context.Context, r Resolver, name, prefix string) ([]string, error) {
	recs, err := r.LookupTXT(ctx, name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up TXT %s: %w", name, err)
	}
	var out []string
	for _, rec := range recs {
		if prefix == "" {
			out = append(out, rec)
			continue
		}
		f := strings.FieldsFunc(rec, func(r rune) bool { return r == ' ' || r == ';' })
		if len(f) > 0 && strings.EqualFold(f[0], prefix) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// dmarcTags reads a tag=value; list (DMARC and DKIM records share it).
func dmarcTags(rec string) map[string]string {
	tags := map[string]string{}
	for _, kv := range strings.Split(rec, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			tags[strings.ToLower(strings.TrimSpace(k))] = strings.Join(strings.Fields(v), "")
		}
	}
	return tags
}

// orgDomain is a domain's organisational domain: one label below its
// public suffix (RFC 7489 3.2), via the public suffix list.
func orgDomain(d string) string {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	org, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return d
	}
	return org
}

func domainOf(addr string) string {
	addr = strings.TrimSuffix(strings.TrimSpace(addr), ">")
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

func uniq(s ...string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
