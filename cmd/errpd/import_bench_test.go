package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

// checkConfig is a configuration with the [mail] sender and two brands,
// one in German with its own sender, as a reseller's import meets them.
func checkConfig() config.Config {
	c := config.Default()
	c.Mail.ReplyTo = "Example Support <help@example.net>"
	c.Brands = map[string]config.Brand{
		"acme": {
			Name: "ACME Domänen", From: "ACME Domänen <hostmaster@acme.example>", Language: "de",
			RenewalURL: "https://acme.example/verlaengern", FeesURL: "https://acme.example/preise",
			Support: "+49 30 1234567",
		},
		"blue": {From: "Blue Names <notices@blue.example>", RenewalURL: "https://blue.example/renew", FeesURL: "https://blue.example/fees"},
	}
	return c
}

// checkRows are n distinct new rows over the brands, languages (one with
// no built-in template, which falls back) and modes an import meets, with
// ASCII and non-ASCII names and internationalised domains.
func checkRows(n int) []store.Domain {
	brands := []string{"", "acme", "blue"}
	langs := []string{"en", "de", "fr", "es", "da", "pt-BR", ""}
	names := []string{"Ann Smith", "Jürgen Müller", "Zoë O'Brien", "李小龙", "", "Bob \"Bobby\" Jones"}
	modes := []scheduler.Mode{scheduler.ModeRenew, scheduler.ModeExpire}
	expiry := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	rows := make([]store.Domain, n)
	for i := range rows {
		domain := fmt.Sprintf("name-%d.example", i)
		if i%5 == 0 {
			domain = fmt.Sprintf("xn--bcher-%d-kva.example", i) // not valid punycode for every i: shown as is
		}
		rows[i] = store.Domain{
			Name: domain, Mode: modes[i%len(modes)], Expiry: expiry.Add(time.Duration(i) * time.Hour),
			Registrant: store.Registrant{
				Name:     fmt.Sprintf("%s %d", names[i%len(names)], i),
				Email:    fmt.Sprintf("holder%d@mail%d.example.org", i, i%97),
				Language: langs[i%len(langs)],
			},
			Brand: brands[i%len(brands)],
		}
	}
	return rows
}

// BenchmarkRenderCheck is the CPU an import spends test-rendering a new
// row (issue 14): an op is one row of 20,000 distinct ones. Take its
// profile with -cpuprofile.
func BenchmarkRenderCheck(b *testing.B) {
	set, err := templates.Load("")
	if err != nil {
		b.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 12, 1, 3, 30, 0, 0, time.UTC) }
	check, err := renderCheck(checkConfig(), set, now)
	if err != nil {
		b.Fatal(err)
	}
	rows := checkRows(20000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := check(rows[i%len(rows)]); err != nil {
			b.Fatalf("%s: %v", rows[i%len(rows)].Name, err)
		}
		i++
	}
}
