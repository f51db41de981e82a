package ascioteststand_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/ascioteststand"
)

// Every answer the stand-in can give validates against Ascio's schema: it
// checks each one as it writes it and lists failures in Invalid.
func TestAnswersValidate(t *testing.T) {
	t.Parallel()
	s, url := ascioteststand.Start(t)
	c := &ascio.Client{Endpoint: url, Account: "a", Password: "p"}
	ctx := context.Background()
	s.AddMessage(ascio.QueueMessage{ID: 1, OrderID: "O1", OrderType: "AutoDelete", OrderStatus: "Completed",
		ErrorCodes: []ascio.ErrorCode{{Code: "E1", Message: "note"}}})
	s.AddOrder(ascio.Order{ID: "O1", Type: "AutoDelete", Status: "Completed", Created: time.Now(), DomainName: "x.example", DomainHandle: "H"})
	s.AddDomain(ascio.Domain{Name: "x.example", Handle: "H"}) // no expiry: i:nil
	s.Script(ascioteststand.OpGetOrder, ascioteststand.Denied, ascioteststand.TryLater)
	c.PollQueue(ctx, ascio.MessageToPartner)
	c.GetQueueMessage(ctx, 1)
	c.GetQueueMessage(ctx, 2)
	c.GetOrder(ctx, "O1")
	c.GetOrder(ctx, "O1")
	c.GetOrder(ctx, "O1")
	c.GetOrder(ctx, "O2")
	c.GetDomain(ctx, "H")
	c.GetDomain(ctx, "none")
	s.Script(ascioteststand.OpGetDomains, ascioteststand.OK, ascioteststand.OK, ascioteststand.Missing)
	c.GetDomainByName(ctx, "x.example")
	c.GetDomainByName(ctx, "none.example")
	c.GetDomainByName(ctx, "x.example")
	c.AckQueueMessage(ctx, 1)
	c.AckQueueMessage(ctx, 1)
	c.PollQueue(ctx, ascio.MessageToPartner)
	c.UploadMessage(ctx, "O1", ascio.Message{Created: time.Now(), Type: ascio.ExpiryReminder3})
	if got := len(s.Calls()); got != 16 {
		t.Errorf("%d calls recorded, want 16", got)
	}
	if bad := s.Invalid(); len(bad) != 0 {
		t.Errorf("invalid: %v", bad)
	}
}

// A request out of the schema's order is refused with a fault and listed.
func TestInvalidRequestIsCaught(t *testing.T) {
	t.Parallel()
	s, err := ascioteststand.New()
	if err == ascioteststand.ErrNoXMLLint {
		t.Skip("skipping: xmllint not found; install libxml2-utils")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	env := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><v3:SecurityHeaderDetails xmlns:v3="http://www.ascio.com/2013/02"><v3:Password>p</v3:Password><v3:Account>a</v3:Account></v3:SecurityHeaderDetails></soapenv:Header><soapenv:Body><service:GetOrder xmlns:service="http://www.ascio.com/2013/02/AscioService" xmlns:v3="http://www.ascio.com/2013/02"><service:request><v3:OrderId>O1</v3:OrderId></service:request></service:GetOrder></soapenv:Body></soapenv:Envelope>`
	req, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(env))
	req.Header.Set("SOAPAction", `"GetOrder"`)
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	rec := newRecorder()
	s.ServeHTTP(rec, req)
	if rec.code != 500 || !strings.Contains(rec.body.String(), "Fault") {
		t.Errorf("answer %d %s, want a fault with 500", rec.code, rec.body.String())
	}
	if bad := s.Invalid(); len(bad) != 1 || !strings.Contains(bad[0], "header") {
		t.Errorf("invalid = %v, want the header error", bad)
	}
}

type recorder struct {
	h    http.Header
	code int
	body strings.Builder
}

func newRecorder() *recorder                    { return &recorder{h: http.Header{}, code: 200} }
func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(c int)           { r.code = c }

// A request cut off by a client that died is no request: it is neither
// recorded nor listed as invalid.
func TestCutOffRequestIsIgnored(t *testing.T) {
	t.Parallel()
	s, url := ascioteststand.Start(t)
	host := strings.TrimPrefix(strings.Split(url, "/v3/")[0], "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v3/AscioService.svc HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\nSOAPAction: \"UploadMessage\"\r\nContent-Length: 5000\r\n\r\n<soapenv:Envelope", host)
	conn.Close()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && len(s.Calls()) == 0; time.Sleep(10 * time.Millisecond) {
	}
	if bad := s.Invalid(); len(bad) != 0 || len(s.Uploads()) != 0 {
		t.Errorf("a cut-off request: invalid %v, uploads %d; want neither", bad, len(s.Uploads()))
	}
}

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ascioteststand.Answer{
		"554": ascioteststand.TryLater, "-500": ascioteststand.Fault, "redirect": ascioteststand.Redirect,
		" Huge-Fault ": ascioteststand.HugeFault, "missing": ascioteststand.Missing, "truncated": ascioteststand.Truncated,
	} {
		if got, err := ascioteststand.ParseAnswer(in); err != nil || got != want {
			t.Errorf("ParseAnswer(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ascioteststand.ParseAnswer("sometimes"); err == nil || !strings.Contains(err.Error(), "wrong-namespace") {
		t.Errorf("ParseAnswer of an unknown name: %v, want an error listing the names", err)
	}
}

// Truncated does the work and cuts the answer; Missing and the other
// hostile answers change nothing at the stand-in.
func TestHostileAnswersAndTheirEffect(t *testing.T) {
	t.Parallel()
	s, url := ascioteststand.Start(t)
	c := &ascio.Client{Endpoint: url, Account: "a", Password: "p"}
	ctx := context.Background()
	up := func() error {
		_, err := c.UploadMessage(ctx, "O1", ascio.Message{Created: time.Now(), Type: ascio.ExpiryReminder1})
		return err
	}
	s.Script(ascioteststand.OpUploadMessage, ascioteststand.Missing, ascioteststand.HTML, ascioteststand.Redirect, ascioteststand.Truncated)
	for range 4 {
		if err := up(); err == nil {
			t.Errorf("a hostile answer was taken for success")
		}
	}
	if n := len(s.Uploads()); n != 1 {
		t.Errorf("%d uploads stored, want 1 (the truncated answer's)", n)
	}
	if bad := s.Invalid(); len(bad) != 0 {
		t.Errorf("invalid: %v", bad)
	}
}

func TestAnswerStringRoundTrips(t *testing.T) {
	t.Parallel()
	for _, a := range []ascioteststand.Answer{ascioteststand.TryLater, ascioteststand.Fault, ascioteststand.Endless, ascioteststand.Answer(501)} {
		if got, err := ascioteststand.ParseAnswer(a.String()); err != nil || got != a {
			t.Errorf("ParseAnswer(%q) = %v, %v; want %d", a.String(), got, err, int(a))
		}
	}
}

// Ascio's own send: held on the order and listed by GetMessages beside the
// partner's uploads, unless the partner uploaded that reminder before.
func TestOwnCopyListedByGetMessages(t *testing.T) {
	t.Parallel()
	s, url := ascioteststand.Start(t)
	c := &ascio.Client{Endpoint: url}
	ctx := context.Background()
	at := time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC)
	if _, err := c.UploadMessage(ctx, "O1", ascio.Message{Created: at.Add(-time.Hour), Subject: "ours", Type: ascio.ExpiryReminder1}); err != nil {
		t.Fatal(err)
	}
	if s.SendOwnCopy("O1", ascio.ExpiryReminder1, "holder@x.example", at) {
		t.Error("Ascio sent its own reminder 1 although the partner uploaded it")
	}
	if !s.SendOwnCopy("O1", ascio.ExpiryReminder2, "holder@x.example", at) {
		t.Error("Ascio did not send its own reminder 2, which the partner did not upload")
	}
	held, err := c.GetMessages(ctx, "O1")
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held[0].Subject != "ours" || held[1].Type != ascio.ExpiryReminder2 ||
		held[1].From != ascioteststand.AscioFrom || !held[1].Created.Equal(at) {
		t.Errorf("GetMessages = %+v; want errpd's upload, then Ascio's reminder 2 at %s", held, at)
	}
	if other, err := c.GetMessages(ctx, "O2"); err != nil || len(other) != 0 {
		t.Errorf("another order: %v, %v; want none", other, err)
	}
}
