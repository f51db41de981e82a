package bounce

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/errpd/errpd/store"
)

func readTestdata(t testing.TB, name, addr string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(raw), "TOKEN_ADDR", addr))
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		file         string
		kind         store.BounceKind
		status, diag string
		dsn          bool
		ignored      string
	}{
		{"dsn-hard.eml", store.BounceHard, "5.1.1", "smtp; 550 5.1.1 <holder@proved.com>: Recipient address rejected: User unknown", true, ""},
		{"dsn-soft.eml", store.BounceSoft, "4.2.2", "smtp; 452 4.2.2 Mailbox full", true, ""},
		{"dsn-delayed.eml", store.BounceDelayed, "4.4.1", "smtp; connect to mail.proved.com: Connection timed out", true, ""},
		{"autoreply.eml", "", "", "", false, "auto-reply (Auto-Submitted: auto-replied)"},
		{"nonstandard.eml", store.BounceHard, "5.1.1", "non-standard bounce: failure notice", false, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			v, err := Parse(strings.NewReader(string(readTestdata(t, tc.file, "bounces+x@errp.example.net"))))
			if err != nil {
				t.Fatal(err)
			}
			want := Verdict{Kind: tc.kind, Status: tc.status, Diagnostic: tc.diag, DSN: tc.dsn, Ignored: tc.ignored}
			if v != want {
				t.Errorf("got  %+v\nwant %+v", v, want)
			}
		})
	}
}

// A DSN carries Auto-Submitted (Postfix and Exim add it) and is still a
// bounce; a report whose only recipient was delivered is not.
func TestParseReportKinds(t *testing.T) {
	raw := string(readTestdata(t, "dsn-hard.eml", "x"))
	delivered := strings.Replace(raw, "Action: failed\r\nStatus: 5.1.1", "Action: delivered\r\nStatus: 2.0.0", 1)
	v, err := Parse(strings.NewReader(delivered))
	if err != nil || v.Kind != "" || v.Ignored == "" {
		t.Errorf("delivered DSN: %+v, %v", v, err)
	}
	// Two recipients: the worst one counts.
	two := strings.Replace(raw, "Final-Recipient: rfc822; holder@proved.com", "Final-Recipient: rfc822; other@proved.com\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\nFinal-Recipient: rfc822; holder@proved.com", 1)
	if v, err := Parse(strings.NewReader(two)); err != nil || v.Kind != store.BounceHard {
		t.Errorf("two recipients: %+v, %v", v, err)
	}
	// A non-standard bounce with Auto-Submitted from MAILER-DAEMON is a
	// bounce; the same header from a person is an auto-reply.
	q := strings.Replace(string(readTestdata(t, "nonstandard.eml", "x")), "Subject:", "Auto-Submitted: auto-replied\r\nSubject:", 1)
	if v, err := Parse(strings.NewReader(q)); err != nil || v.Kind != store.BounceHard {
		t.Errorf("non-standard bounce with Auto-Submitted: %+v, %v", v, err)
	}
	q = strings.Replace(q, "From: MAILER-DAEMON@", "From: holder@", 1)
	if v, err := Parse(strings.NewReader(q)); err != nil || v.Kind != "" {
		t.Errorf("auto-reply quoting a status: %+v, %v", v, err)
	}
	if _, err := Parse(strings.NewReader("no header at all")); err == nil {
		t.Error("garbage parsed")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"dsn-hard.eml", "dsn-soft.eml", "dsn-delayed.eml", "autoreply.eml", "nonstandard.eml"} {
		f.Add(readTestdata(f, name, "bounces+x@errp.example.net"))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := Parse(strings.NewReader(string(raw)))
		if err != nil {
			return
		}
		if (v.Kind == "") == (v.Ignored == "") && v.Kind != "" {
			t.Errorf("a verdict with a kind and a reason to ignore: %+v", v)
		}
		if len(v.Diagnostic) > 2100 {
			t.Errorf("diagnostic of %d bytes: not capped", len(v.Diagnostic))
		}
		switch v.Kind {
		case "", store.BounceHard, store.BounceSoft, store.BounceDelayed:
		default:
			t.Errorf("kind %q", v.Kind)
		}
	})
}
