package proof

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/fakeascio"
	"github.com/errpd/errpd/scheduler"
)

const secret = "s3cr3t-pw<&>"

var sent = []byte("Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <abc.errpd@example.net>\r\n" +
	"Subject: =?UTF-8?q?B=C3=BCcher=2Eexample_expires?=\r\nFrom: \"Example Domains\" <renewals@example.net>\r\n" +
	"To: \"Ann\" <ann@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" +
	"Dear Ann, your domain expires <soon> & must be renewed.\r\n")

func needXmllint(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint not installed (Debian package libxml2-utils); .ci/run installs it")
	}
}

func newClient(url string) *Client {
	return &Client{Endpoint: url, Account: "acct", Password: config.Secret(secret), HTTP: &http.Client{Timeout: 2 * time.Second}}
}

// TestRequestValidates checks the captured request against Ascio's schemas:
// the body payload against AscioService.xsd, the header against
// ascio-2013-02.xsd.
func TestRequestValidates(t *testing.T) {
	needXmllint(t)
	c := newClient("http://unused")
	for _, n := range []scheduler.Notice{scheduler.Reminder1, scheduler.Reminder2, scheduler.Reminder3} {
		req, err := c.Request("ORDER-1", n, sent)
		if err != nil {
			t.Fatal(err)
		}
		xsd := fakeascio.XSDDir()
		body := between(t, req, "<soapenv:Body>", "</soapenv:Body>")
		header := between(t, req, "<soapenv:Header>", "</soapenv:Header>")
		if err := fakeascio.Validate(filepath.Join(xsd, "AscioService.xsd"), body); err != nil {
			t.Errorf("%s body: %v\n%s", n, err, body)
		}
		if err := fakeascio.Validate(filepath.Join(xsd, "ascio-2013-02.xsd"), header); err != nil {
			t.Errorf("%s header: %v", n, err)
		}
		for _, want := range []string{"<v3:OrderId>ORDER-1</v3:OrderId>", "<v3:FromAddress>renewals@example.net</v3:FromAddress>",
			"<v3:ToAddress>ann@example.org</v3:ToAddress>", "<v3:Created>2026-11-23T10:00:00Z</v3:Created>",
			"=?UTF-8?q?B=C3=BCcher=2Eexample_expires?=", "&lt;soon&gt; &amp;", "<v3:FileName>notice.eml</v3:FileName>"} {
			if !bytes.Contains(req, []byte(want)) {
				t.Errorf("%s request lacks %s", n, want)
			}
		}
	}
	// A broken request is caught by the same check: the schema check can fail.
	bad := []byte(`<service:UploadMessage xmlns:service="http://www.ascio.com/2013/02/AscioService" xmlns:v3="http://www.ascio.com/2013/02"><service:request><v3:Message><v3:Type>Reminder9</v3:Type></v3:Message></service:request></service:UploadMessage>`)
	if err := fakeascio.Validate(filepath.Join(fakeascio.XSDDir(), "AscioService.xsd"), bad); err == nil {
		t.Error("an invalid Type validated")
	}
	if _, err := c.Request("ORDER-1", scheduler.Suspension, sent); !errors.Is(err, ErrNotUploadable) {
		t.Errorf("suspension: %v", err)
	}
}

func between(t *testing.T, b []byte, open, close string) []byte {
	t.Helper()
	_, rest, ok := bytes.Cut(b, []byte(open))
	in, _, ok2 := bytes.Cut(rest, []byte(close))
	if !ok || !ok2 {
		t.Fatalf("no %s in %s", open, b)
	}
	return in
}

func TestResultClasses(t *testing.T) {
	needXmllint(t)
	srv := fakeascio.Start()
	defer srv.Close()
	c := newClient(srv.URL)
	tests := []struct {
		answer    fakeascio.Answer
		ok        bool
		permanent bool
	}{
		{fakeascio.OK, true, false},
		{fakeascio.TryLater, false, false},
		{fakeascio.Denied, false, true},
		{fakeascio.Fault, false, false},
		{fakeascio.Stall, false, false},
	}
	for _, tc := range tests {
		srv.Script(tc.answer)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		res, err := c.Upload(ctx, "ORDER-1", scheduler.Reminder1, sent)
		cancel()
		if (err == nil) != tc.ok || IsPermanent(err) != tc.permanent {
			t.Errorf("answer %d: result %q err %v (permanent %v), want ok %v permanent %v", tc.answer, res, err, IsPermanent(err), tc.ok, tc.permanent)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("answer %d: the password leaked into the error: %v", tc.answer, err)
		}
	}
	if bad := srv.Invalid(); len(bad) > 0 {
		t.Errorf("the stand-in found invalid requests: %v", bad)
	}
	ups := srv.Uploads()
	if len(ups) != 1 || !bytes.Equal(ups[0].Raw, sent) || ups[0].Type != "ExpiryReminder1" || ups[0].OrderID != "ORDER-1" {
		t.Errorf("uploads %+v, want the one accepted with the bytes sent", ups)
	}
}

// TestStandInResponsesValidate holds the stand-in to Ascio's schema too.
func TestStandInResponsesValidate(t *testing.T) {
	needXmllint(t)
	for _, r := range [][]byte{fakeascio.Response(200, "OK"), fakeascio.Response(401, "Authorization failed", "Authorization failed")} {
		body := between(t, r, "<s:Body>", "</s:Body>")
		if err := fakeascio.Validate(filepath.Join(fakeascio.XSDDir(), "AscioService.xsd"), body); err != nil {
			t.Errorf("stand-in response does not validate: %v\n%s", err, body)
		}
	}
}
