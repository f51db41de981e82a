package message

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var (
	expiry = time.Date(2026, 12, 31, 14, 0, 0, 0, time.UTC)
	clock  = func() time.Time { return time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC) }
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Dir = wd
	c.Mail.Zone = "Europe/Berlin"
	c.Mail.RenewalURL = "https://example.net/renew"
	c.Mail.FeesURL = "https://example.net/fees"
	c.Mail.ReplyTo = "Example Support <help@example.net>"
	c.Brands = map[string]config.Brand{
		"acme": {
			Name: "ACME Domänen", From: "ACME Domänen <hostmaster@acme.example>", Language: "de",
			RenewalURL: "https://acme.example/verlaengern", FeesURL: "https://acme.example/preise",
			Support: "+49 30 1234567", EnvelopeFrom: "bounces@mail.acme.example",
			DKIMKey: "testdata/dkim-ed25519.pem", DKIMSelector: "errpd2026",
		},
	}
	return c
}

func testBuilder(t *testing.T) *Builder {
	t.Helper()
	return builderWith(t, "testdata/templates")
}

// builderWith is a Builder of the test configuration with the templates
// overridden from dir.
func builderWith(t *testing.T, dir string) *Builder {
	t.Helper()
	set, err := templates.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(testConfig(t), set, clock)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stepID(domain, notice string) string {
	return domain + "/" + expiry.Format("20060102T150405Z") + "/" + notice
}

// TestGolden holds the exact bytes of rendered notices: English and German,
// an ASCII and an internationalised domain, with and without DKIM.
func TestGolden(t *testing.T) {
	b := testBuilder(t)
	tests := []struct {
		name string
		in   Input
	}{
		{"en-renew-reminder1", Input{Domain: "example.com", Mode: "renew", Notice: "reminder1",
			Registrant: Registrant{Name: "Jane Doe", Email: "jane@example.org", Language: "en"}}},
		{"en-idn-expire-reminder3", Input{Domain: "xn--bcher-kva.example", Mode: "expire", Notice: "reminder3",
			Registrant: Registrant{Name: "Jürgen Müller", Email: "jm@example.org"}}},
		{"de-idn-expire-reminder1-dkim", Input{Domain: "xn--bcher-kva.example", Mode: "expire", Notice: "reminder1",
			Brand: "acme", Registrant: Registrant{Name: "Jürgen Müller", Email: "jm@example.org", Language: "de"}}},
		{"de-builtin-expire-suspension", Input{Domain: "xn--mnchen-3ya.example", Mode: "expire", Notice: "suspension",
			Brand: "acme", Registrant: Registrant{Name: "", Email: "office@example.org", Language: "de"}}},
		{"it-fallback-de-expire-reminder2", Input{Domain: "example.com", Mode: "expire", Notice: "reminder2",
			Brand: "acme", Registrant: Registrant{Name: "Giulia Rossi", Email: "giulia@example.org", Language: "it"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.StepID = stepID(tc.in.Domain, tc.in.Notice)
			tc.in.Expiry = expiry
			if tc.in.Notice == "reminder3" || tc.in.Notice == "suspension" {
				tc.in.Expiry = expiry.AddDate(0, -1, -3) // expired some days before the clock
			}
			m, err := b.Build(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", tc.name+".eml")
			if *update {
				if err := os.WriteFile(golden, m.Raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(m.Raw)); diff != "" {
				t.Errorf("%s differs (-golden +built; go test -update if intended):\n%s", golden, diff)
			}
			checkWellFormed(t, m)
		})
	}
}

// checkWellFormed parses a built message back: CRLF line ends only, the
// headers it must have, and text and HTML alternatives that decode.
func checkWellFormed(t *testing.T, m Message) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(m.Raw, []byte("\r\n"), nil), []byte("\n")) {
		t.Error("a bare LF in the message")
	}
	if bytes.Contains(bytes.ReplaceAll(m.Raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("a bare CR in the message")
	}
	pm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"From", "To", "Date", "Message-ID", "Subject", "MIME-Version"} {
		if pm.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if got := pm.Header.Get("Message-ID"); got != m.MessageID {
		t.Errorf("Message-ID header %q, Message says %q", got, m.MessageID)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("subject decodes to %q (%v), want %q", subject, err, m.Subject)
	}
	mt, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	var types []string
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		if !bytes.Contains(body, []byte("https://")) {
			t.Errorf("%s part has no link:\n%s", ct, body)
		}
	}
	if diff := cmp.Diff([]string{"text/plain", "text/html"}, types); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}
}

func TestMessageIDIsTheStepsAndResendsAreIdentical(t *testing.T) {
	b := testBuilder(t)
	in := Input{StepID: stepID("example.com", "reminder2"), Domain: "example.com", Expiry: expiry,
		Mode: "expire", Notice: "reminder2", Registrant: Registrant{Email: "x@example.org"}}
	m1, err := b.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := b.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m1.Raw, m2.Raw) {
		t.Error("the same step built twice at the same time gives different bytes")
	}
	if want := "<" + MessageID(in.StepID, "example.net") + ">"; m1.MessageID != want {
		t.Errorf("Message-ID %s, want %s", m1.MessageID, want)
	}
	if !regexp.MustCompile(`^<[0-9a-f]{32}@example\.net>$`).MatchString(m1.MessageID) {
		t.Errorf("Message-ID %s is not 32 hex digits at the From domain", m1.MessageID)
	}
	in.StepID = stepID("example.com", "reminder1")
	m3, err := b.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if m3.MessageID == m1.MessageID {
		t.Error("two steps share a Message-ID")
	}
	if m1.EnvelopeFrom != "bounces@errp.example.net" || m1.From != "renewals@example.net" || m1.To != "x@example.org" {
		t.Errorf("envelope %q, from %q, to %q", m1.EnvelopeFrom, m1.From, m1.To)
	}
}

func TestBuildRefuses(t *testing.T) {
	b := testBuilder(t)
	base := Input{StepID: "s", Domain: "example.com", Expiry: expiry, Mode: "renew", Notice: "reminder1",
		Registrant: Registrant{Name: "A", Email: "a@example.org"}}
	tests := map[string]func(*Input){
		"name with CRLF":  func(in *Input) { in.Registrant.Name = "A\r\nBcc: victim@example.com" },
		"address with LF": func(in *Input) { in.Registrant.Email = "a@example.org\nBcc: victim@example.com" },
		"no address":      func(in *Input) { in.Registrant.Email = "" },
		"bad address":     func(in *Input) { in.Registrant.Email = "not an address" },
		"unknown notice":  func(in *Input) { in.Notice = "reminder7" },
	}
	for name, change := range tests {
		in := base
		change(&in)
		if m, err := b.Build(in); err == nil {
			t.Errorf("%s: built\n%s", name, m.Raw)
		}
	}
}

func TestNewRefusesABrandWithoutFees(t *testing.T) {
	c := testConfig(t)
	c.Mail.FeesURL = ""
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	// acme has its own fees URL; the [mail] sender has none.
	if _, err := New(c, set, clock); err == nil || !strings.Contains(err.Error(), "FeesURL") {
		t.Errorf("New: %v, want an error naming FeesURL", err)
	}
}

// TestDKIMVerifies checks the signature the way a receiver would:
// relaxed/relaxed canonicalisation, Ed25519 over the SHA-256 of the signed
// headers (RFC 6376, RFC 8463), against the public key in its DNS record.
func TestDKIMVerifies(t *testing.T) {
	b := testBuilder(t)
	m, err := b.Build(Input{StepID: "s", Domain: "xn--bcher-kva.example", Expiry: expiry, Mode: "expire",
		Notice: "reminder1", Brand: "acme", Registrant: Registrant{Name: "Jürgen", Email: "j@example.org", Language: "de"}})
	if err != nil {
		t.Fatal(err)
	}
	tags, sum, sig := dkimSigned(t, m.Raw)
	if tags["d"] != "acme.example" || tags["s"] != "errpd2026" || tags["a"] != "ed25519-sha256" {
		t.Errorf("d=%s s=%s a=%s", tags["d"], tags["s"], tags["a"])
	}
	blk, _ := pem.Decode(mustRead(t, "testdata/dkim-ed25519.pem"))
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.(ed25519.PrivateKey).Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, sum[:], sig) {
		t.Error("the signature does not verify")
	}
	k := b.dkims["acme"]
	if want := "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub); k.Record() != want {
		t.Errorf("record %q, want %q", k.Record(), want)
	}
	if k.RecordName() != "errpd2026._domainkey.acme.example" {
		t.Errorf("record name %q", k.RecordName())
	}
}

// TestDKIMVerifiesRSA: the same with an RSA 2048 key in PKCS#1 PEM, the
// kind most partners' DNS already publishes (rsa-sha256, RFC 6376).
func TestDKIMVerifiesRSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dkim-rsa.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	c := testConfig(t)
	acme := c.Brands["acme"]
	acme.DKIMKey, acme.DKIMSelector = path, "rsa2026"
	c.Brands["acme"] = acme
	set, err := templates.Load("testdata/templates")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(c, set, clock)
	if err != nil {
		t.Fatal(err)
	}
	m, err := b.Build(Input{StepID: "s", Domain: "example.com", Expiry: expiry, Mode: "renew",
		Notice: "reminder2", Brand: "acme", Registrant: Registrant{Name: "Ann", Email: "ann@example.org", Language: "en"}})
	if err != nil {
		t.Fatal(err)
	}
	tags, sum, sig := dkimSigned(t, m.Raw)
	if tags["a"] != "rsa-sha256" || tags["s"] != "rsa2026" || tags["d"] != "acme.example" {
		t.Errorf("a=%s s=%s d=%s", tags["a"], tags["s"], tags["d"])
	}
	if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		t.Errorf("the RSA signature does not verify: %v", err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if want := "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der); b.dkims["acme"].Record() != want {
		t.Errorf("record %q, want the key's SubjectPublicKeyInfo", b.dkims["acme"].Record())
	}
}

// dkimSigned checks a message's DKIM-Signature tags (t, bh) and returns
// them with the SHA-256 of the signed headers in relaxed form and the
// signature's bytes, for the caller to verify with its key.
func dkimSigned(t *testing.T, msg []byte) (map[string]string, [32]byte, []byte) {
	t.Helper()
	head, body, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	lines := unfold(string(head))
	sig := lines[0]
	if !strings.HasPrefix(strings.ToLower(sig), "dkim-signature:") {
		t.Fatalf("first header is not the signature: %q", sig)
	}
	tags := map[string]string{}
	for _, kv := range strings.Split(sig[len("dkim-signature:"):], ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		tags[k] = strings.Join(strings.Fields(v), "")
	}
	if tags["t"] != strconv.FormatInt(clock().Unix(), 10) {
		t.Errorf("t=%s, want the builder's clock", tags["t"])
	}
	bh := sha256.Sum256(relaxedBody(body))
	if got := base64.StdEncoding.EncodeToString(bh[:]); got != tags["bh"] {
		t.Errorf("bh=%s, body hashes to %s", tags["bh"], got)
	}
	var signed strings.Builder
	used := map[string]int{}
	for _, name := range strings.Split(tags["h"], ":") {
		// the last unused instance of a header, counting from the bottom
		n := 0
		for i := len(lines) - 1; i > 0; i-- {
			k, _, _ := strings.Cut(lines[i], ":")
			if strings.EqualFold(strings.TrimSpace(k), name) {
				if n == used[strings.ToLower(name)] {
					signed.WriteString(relaxedHeader(lines[i]) + "\r\n")
					break
				}
				n++
			}
		}
		used[strings.ToLower(name)]++
	}
	signed.WriteString(relaxedHeader(regexp.MustCompile(`b=[^;]*$`).ReplaceAllString(sig, "b=")))
	raw, err := base64.StdEncoding.DecodeString(tags["b"])
	if err != nil {
		t.Fatal(err)
	}
	return tags, sha256.Sum256([]byte(signed.String())), raw
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unfold(head string) []string {
	var out []string
	for _, l := range strings.Split(head, "\r\n") {
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			out[len(out)-1] += l
			continue
		}
		out = append(out, l)
	}
	return out
}

func relaxedHeader(h string) string {
	k, v, _ := strings.Cut(h, ":")
	return strings.ToLower(strings.TrimSpace(k)) + ":" + strings.Join(strings.Fields(v), " ")
}

func relaxedBody(b []byte) []byte {
	lines := strings.Split(string(b), "\r\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.Join(strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == '\t' }), " "), " ")
		if strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t") {
			lines[i] = " " + lines[i]
		}
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}

// Each message says its language; a registrant language without templates
// falls back to the brand's default language, and the message says which.
func TestContentLanguage(t *testing.T) {
	b := testBuilder(t)
	for _, tc := range []struct {
		brand, lang, want, fallback string
	}{
		{"", "de", "de", ""},
		{"", "fr", "fr", ""},
		{"", "es", "es", ""},
		{"", "da", "da", ""},
		{"", "", "en", ""},
		{"acme", "it", "de", "it"}, // acme's default language is German
		{"", "it", "en", "it"},     // [mail] language is English
	} {
		in := Input{StepID: stepID("example.com", "reminder1"), Domain: "example.com", Expiry: expiry,
			Mode: "expire", Notice: "reminder1", Brand: tc.brand,
			Registrant: Registrant{Name: "R", Email: "r@example.org", Language: tc.lang}}
		m, err := b.Build(in)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("Content-Language"); got != tc.want || m.Language != tc.want || m.LanguageFallback != tc.fallback {
			t.Errorf("brand %q registrant %q: Content-Language %q, Language %q, fallback %q; want %q, fallback %q",
				tc.brand, tc.lang, got, m.Language, m.LanguageFallback, tc.want, tc.fallback)
		}
	}
}

// The dates after expiry come from [policy]: suspension at the suspension
// window's opening, renewal until renewal_grace_days, restore until
// redemption_days after that, each written in mail.zone.
func TestLifecycleDates(t *testing.T) {
	c := testConfig(t)
	c.Policy.RenewalGraceDays, c.Policy.RedemptionDays = 40, 30
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(c, set, clock)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC) // 15:00 in Berlin
	for notice, want := range map[string][]string{
		"reminder2": {"2026-12-06 15:00 Europe/Berlin", "2027-01-07 15:00 Europe/Berlin"}, // +8, +40
		"reminder3": {"2027-01-07 15:00 Europe/Berlin", "2027-02-06 15:00 Europe/Berlin"}, // +40, +70
	} {
		in := Input{StepID: stepID("example.com", notice), Domain: "example.com", Expiry: exp, Mode: "expire", Notice: notice,
			Registrant: Registrant{Name: "R", Email: "r@example.org", Language: "en"}}
		m, err := b.Build(in)
		if err != nil {
			t.Fatal(err)
		}
		_, text := textPart(t, m.Raw)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q:\n%s", notice, w, text)
			}
		}
	}
}

// textPart is a built message's headers and decoded text/plain part.
func textPart(t *testing.T, raw []byte) (mail.Header, string) {
	t.Helper()
	pm, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, _ := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err != nil {
			t.Fatalf("no text/plain part: %v", err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			b, _ := io.ReadAll(p)
			return pm.Header, string(b)
		}
	}
}
