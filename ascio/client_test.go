package ascio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/ascioteststand"
)

const password = "s3cret-Pa55"

func setup(t *testing.T) (*ascioteststand.Server, *ascio.Client) {
	t.Helper()
	s, url := ascioteststand.Start(t)
	s.Account, s.Password = "acct", password
	return s, &ascio.Client{Endpoint: url, Account: "acct", Password: config.Secret(password)}
}

func TestUploadMessageValidatesAndArrives(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	created := time.Date(2026, 1, 30, 10, 15, 0, 0, time.FixedZone("CET", 3600))
	m := ascio.Message{
		Attachments: []ascio.Attachment{{FileName: "notice.eml", Content: []byte("Subject: x\r\n\r\nbody <&>\r\n")}},
		Body:        "Dear registrant,\r\n<example.com> & co. expires.\r\n\x00bad control",
		Created:     created,
		From:        "noreply@registrar.example",
		Subject:     "=?utf-8?q?Erinnerung?=",
		To:          "registrant@example.com",
		Type:        ascio.ExpiryReminder1,
	}
	res, err := c.UploadMessage(context.Background(), "TEST1234567", m)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != 200 || res.MessageID == 0 {
		t.Errorf("result = %+v, want 200 with a MessageId", res)
	}
	ups := s.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads, want 1", len(ups))
	}
	u := ups[0]
	want := ascioteststand.Upload{
		OrderID: "TEST1234567", Type: "ExpiryReminder1", From: m.From, To: m.To, Subject: m.Subject,
		Body:        "Dear registrant,\r\n<example.com> & co. expires.\r\n\uFFFDbad control",
		Created:     "2026-01-30T09:15:00Z",
		Attachments: m.Attachments,
	}
	if diff := cmp.Diff(want, u, cmpIgnoreEnvelope); diff != "" {
		t.Errorf("upload (-want +got):\n%s", diff)
	}
	env := s.LastEnvelope(ascioteststand.OpUploadMessage)
	if !strings.Contains(string(env), "<v3:Password>"+password+"</v3:Password>") {
		t.Errorf("envelope does not carry the password in SecurityHeaderDetails:\n%s", env)
	}
}

var cmpIgnoreEnvelope = cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Envelope" }, cmp.Ignore())

// The captured bytes are checked here once more, on their own, so that the
// test does not depend on the stand-in having looked at them.
func TestCapturedUploadValidatesWithXMLLint(t *testing.T) {
	t.Parallel()
	var captured []byte
	var action string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		action = r.Header.Get("SOAPAction")
		buf := new(strings.Builder)
		fmt.Fprint(buf, "")
		b := make([]byte, 1<<20)
		n, _ := r.Body.Read(b)
		for n > 0 {
			captured = append(captured, b[:n]...)
			n, _ = r.Body.Read(b)
		}
		w.Write([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><UploadMessageResponse xmlns="http://www.ascio.com/2013/02/AscioService"><UploadMessageResult xmlns:a="http://www.ascio.com/2013/02"><a:ResultCode>200</a:ResultCode><a:ResultMessage>OK</a:ResultMessage><a:MessageId>7</a:MessageId></UploadMessageResult></UploadMessageResponse></s:Body></s:Envelope>`))
	}))
	defer hs.Close()
	sch, err := ascioteststand.WriteSchemas()
	if errors.Is(err, ascioteststand.ErrNoXMLLint) {
		t.Skip("skipping: xmllint not found; install libxml2-utils")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer sch.Close()
	c := &ascio.Client{Endpoint: hs.URL, Account: "acct", Password: "pw"}
	_, err = c.UploadMessage(context.Background(), "O1", ascio.Message{
		Body: "b", Created: time.Unix(0, 0), From: "a@b.example", Subject: "s", To: "c@d.example", Type: ascio.ExpiryReminder3,
	})
	if err != nil {
		t.Fatal(err)
	}
	if action != `"UploadMessage"` {
		t.Errorf("SOAPAction = %s, want \"UploadMessage\"", action)
	}
	if err := sch.Envelope(captured); err != nil {
		t.Errorf("captured request does not validate: %v\n%s", err, captured)
	}
	// And the schema check is not vacuous: a wrong order fails it.
	swapped := strings.Replace(string(captured), "<v3:Body>b</v3:Body>", "", 1)
	swapped = strings.Replace(swapped, "</v3:Subject>", "</v3:Subject><v3:Body>b</v3:Body>", 1)
	if err := sch.Envelope([]byte(swapped)); err == nil {
		t.Errorf("an envelope with Body after Subject validated")
	}
}

func TestQueueOrderDomain(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	ctx := context.Background()
	expires := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	qm := ascio.QueueMessage{ID: 987654, Text: "AutoRenew example.com", MessageType: "MessageToPartner",
		ObjectHandle: "DOM-1", ObjectName: "example.com", ObjectType: "DomainType",
		OrderID: "TEST1", OrderStatus: "Received", OrderType: "AutoRenew"}
	owner := ascio.Contact{Handle: "C-1", FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.net", CountryCode: "GB"}
	s.AddMessage(qm)
	s.AddOrder(ascio.Order{ID: "TEST1", Status: "Received", Type: "AutoRenew", Created: expires.AddDate(0, 0, -35),
		DomainName: "example.com", DomainHandle: "DOM-1", Owner: owner})
	s.AddDomain(ascio.Domain{Name: "example.com", Handle: "DOM-1", Status: "ACTIVE", Expires: expires, Owner: owner})

	got, err := c.PollQueue(ctx, ascio.MessageToPartner)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&qm, got); diff != "" {
		t.Errorf("PollQueue (-want +got):\n%s", diff)
	}
	one, err := c.GetQueueMessage(ctx, 987654)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(qm, one); diff != "" {
		t.Errorf("GetQueueMessage (-want +got):\n%s", diff)
	}
	o, err := c.GetOrder(ctx, "TEST1")
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := ascio.Order{ID: "TEST1", Status: "Received", Type: "AutoRenew", Created: expires.AddDate(0, 0, -35),
		DomainName: "example.com", DomainHandle: "DOM-1", Owner: owner}
	if diff := cmp.Diff(wantOrder, o); diff != "" {
		t.Errorf("GetOrder (-want +got):\n%s", diff)
	}
	d, err := c.GetDomain(ctx, "DOM-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ascio.Domain{Name: "example.com", Handle: "DOM-1", Status: "ACTIVE", Expires: expires, Owner: owner}, d); diff != "" {
		t.Errorf("GetDomain (-want +got):\n%s", diff)
	}
	// By name, as for a domain known from the calendar alone: the same
	// domain, whatever the case of the name asked.
	byName, err := c.GetDomainByName(ctx, "Example.COM")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d, byName); diff != "" {
		t.Errorf("GetDomainByName (-GetDomain +got):\n%s", diff)
	}
	env := string(s.LastEnvelope(ascioteststand.OpGetDomains))
	for _, part := range []string{`<arr:string>Example.COM</arr:string>`, `<v3:PageInfo><v3:PageIndex>1</v3:PageIndex>`} {
		if !strings.Contains(env, part) {
			t.Errorf("GetDomains request lacks %s:\n%s", part, env)
		}
	}
	if err := c.AckQueueMessage(ctx, 987654); err != nil {
		t.Fatal(err)
	}
	if got, err := c.PollQueue(ctx, ascio.MessageToPartner); err != nil || got != nil {
		t.Errorf("PollQueue after ack = %+v, %v; want nil, nil", got, err)
	}
	if _, err := c.GetQueueMessage(ctx, 987654); !ascio.IsNotFound(err) {
		t.Errorf("GetQueueMessage of an acked message: %v, want not found", err)
	}
	if _, err := c.GetOrder(ctx, "NOPE"); !ascio.IsNotFound(err) || ascio.IsTemporary(err) {
		t.Errorf("GetOrder of an unknown order: %v, want permanent not found", err)
	}
	if _, err := c.GetDomain(ctx, "NOPE"); !ascio.IsNotFound(err) {
		t.Errorf("GetDomain of an unknown handle: %v, want not found", err)
	}
	if _, err := c.GetDomainByName(ctx, "nope.example"); !ascio.IsNotFound(err) || ascio.IsTemporary(err) {
		t.Errorf("GetDomainByName of a name Ascio does not hold: %v, want permanent not found", err)
	}
	want := []string{"PollQueue", "GetQueueMessage", "GetOrder", "GetDomain", "GetDomains", "AckQueueMessage", "PollQueue", "GetQueueMessage", "GetOrder", "GetDomain", "GetDomains"}
	if diff := cmp.Diff(want, s.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestResultClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		answer    ascioteststand.Answer
		ok        bool
		temporary bool
		code      int
	}{
		{ascioteststand.OK, true, false, 200},
		{ascioteststand.Created, true, false, 201},
		{ascioteststand.TooLarge, true, false, 413},
		{ascioteststand.TryLater, false, true, 554},
		{ascioteststand.Fault, false, true, 0},
		{ascioteststand.Denied, false, false, 401},
		{ascioteststand.AccessDenied, false, false, 405},
		{ascioteststand.NotFound, false, false, 404},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.answer), func(t *testing.T) {
			t.Parallel()
			s, c := setup(t)
			s.Script(ascioteststand.OpUploadMessage, tc.answer)
			res, err := c.UploadMessage(context.Background(), "O1", ascio.Message{Created: time.Now(), Type: ascio.ExpiryReminder2})
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if ascio.IsTemporary(err) != tc.temporary {
				t.Errorf("IsTemporary(%v) = %v, want %v", err, !tc.temporary, tc.temporary)
			}
			var e *ascio.Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("%T is not *ascio.Error", err)
			}
			code := res.Code
			if e != nil {
				code = e.Result.Code
				if !tc.temporary && len(e.Result.Errors) == 0 {
					t.Errorf("permanent error without Ascio's Errors: %+v", e)
				}
				if tc.answer == ascioteststand.Fault && (e.HTTPStatus != 500 || !strings.Contains(e.Fault, "internal error")) {
					t.Errorf("fault error = %+v, want HTTP 500 with the faultstring", e)
				}
			}
			if code != tc.code {
				t.Errorf("code = %d, want %d", code, tc.code)
			}
		})
	}
}

func TestStallIsTemporary(t *testing.T) {
	t.Parallel()
	s, c := setup(t)
	s.Script(ascioteststand.OpGetOrder, ascioteststand.Stall)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.GetOrder(ctx, "O1")
	if !ascio.IsTemporary(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("stalled call: %v, want a temporary deadline error", err)
	}
}

func TestNetworkErrorIsTemporary(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.NotFoundHandler())
	url := hs.URL
	hs.Close() // nothing listens there any more
	c := &ascio.Client{Endpoint: url, Account: "a", Password: password}
	err := c.AckQueueMessage(context.Background(), 1)
	if !ascio.IsTemporary(err) {
		t.Errorf("refused connection: %v, want temporary", err)
	}
}

// Whatever the answer, the password does not reach an error's text, not
// even when a server echoes the request into its fault or result.
func TestPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	answers := map[string]func(w http.ResponseWriter, body string){
		"fault echo": func(w http.ResponseWriter, body string) {
			w.WriteHeader(500)
			fmt.Fprintf(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>bad request: %s</faultstring></s:Fault></s:Body></s:Envelope>`, strings.ReplaceAll(strings.ReplaceAll(body, "<", "&lt;"), ">", "&gt;"))
		},
		"result echo": func(w http.ResponseWriter, body string) {
			fmt.Fprintf(w, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetOrderResponse xmlns="http://www.ascio.com/2013/02/AscioService"><GetOrderResult xmlns:a="http://www.ascio.com/2013/02" xmlns:b="http://schemas.microsoft.com/2003/10/Serialization/Arrays"><a:ResultCode>401</a:ResultCode><a:ResultMessage>no account for password %s</a:ResultMessage><a:Errors><b:string>%s</b:string></a:Errors></GetOrderResult></GetOrderResponse></s:Body></s:Envelope>`, password, password)
		},
		"html 502": func(w http.ResponseWriter, body string) {
			w.WriteHeader(502)
			fmt.Fprintf(w, "<html>%s", body)
		},
	}
	for name, answer := range answers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b := new(strings.Builder)
				buf := make([]byte, 4096)
				for {
					n, err := r.Body.Read(buf)
					b.Write(buf[:n])
					if err != nil {
						break
					}
				}
				answer(w, b.String())
			}))
			defer hs.Close()
			c := &ascio.Client{Endpoint: hs.URL, Account: "acct", Password: password}
			_, err := c.GetOrder(context.Background(), "O1")
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
				if strings.Contains(s, password) {
					t.Errorf("error text holds the password: %s", s)
				}
			}
		})
	}
}

func TestGetMessagesListsTheOrdersUploads(t *testing.T) {
	t.Parallel()
	_, c := setup(t)
	created := time.Date(2026, 1, 30, 9, 15, 0, 0, time.UTC)
	m := ascio.Message{Body: "b", Created: created, From: "f@registrar.example", Subject: "s", To: "r@example.com", Type: ascio.ExpiryReminder2}
	if _, err := c.UploadMessage(context.Background(), "O1", m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UploadMessage(context.Background(), "O2", m); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetMessages(context.Background(), "O1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ascio.Message{m}, got); diff != "" {
		t.Errorf("GetMessages(O1) (-want +got):\n%s", diff)
	}
	if got, err := c.GetMessages(context.Background(), "O3"); err != nil || len(got) != 0 {
		t.Errorf("GetMessages of an order without messages: %v, %v", got, err)
	}
}
