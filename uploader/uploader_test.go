package uploader_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/uploader"
)

const password = "upl0ad-secret"

// sent is a notice as errpd stores it: multipart/alternative, quoted-
// printable text, an RFC 2047 subject.
var sent = []byte(strings.ReplaceAll(`Date: Fri, 30 Jan 2026 11:15:00 +0100
From: "Example Registrar" <noreply@registrar.example>
To: "Jörg Müller" <registrant@example.com>
Subject: =?UTF-8?q?Erinnerung:_m=C3=BCller.example_l=C3=A4uft_ab?=
Message-ID: <muller.example.20260301T000000Z.reminder1@registrar.example>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

Guten Tag J=C3=B6rg,
Ihre Domain l=C3=A4uft am 1. M=C3=A4rz 2026 ab.
--b1
Content-Type: text/html; charset=UTF-8

<p>Guten Tag</p>
--b1--
`, "\n", "\r\n"))

func start(t *testing.T) (*ascioteststand.Server, *uploader.Client) {
	t.Helper()
	s, url := ascioteststand.Start(t)
	s.Account, s.Password = "acct", password
	return s, &uploader.Client{Ascio: &ascio.Client{Endpoint: url, Account: "acct", Password: config.Secret(password)}}
}

func TestUploadCarriesTheStoredMessage(t *testing.T) {
	t.Parallel()
	s, c := start(t)
	res, err := c.Upload(context.Background(), "TEST1234567", scheduler.Reminder1, sent, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Code != 200 || res.MessageID == 0 {
		t.Errorf("result %v, want 200 with a MessageId", res)
	}
	ups := s.Uploads()
	if len(ups) != 1 {
		t.Fatalf("%d uploads, want 1", len(ups))
	}
	u := ups[0]
	want := ascioteststand.Upload{
		OrderID:     "TEST1234567",
		Type:        "ExpiryReminder1",
		From:        "noreply@registrar.example",
		To:          "registrant@example.com",
		Subject:     "=?UTF-8?q?Erinnerung:_m=C3=BCller.example_l=C3=A4uft_ab?=",
		Body:        "Guten Tag Jörg,\r\nIhre Domain läuft am 1. März 2026 ab.",
		Created:     "2026-01-30T10:15:00Z",
		Attachments: []ascio.Attachment{{FileName: "reminder1.eml", Content: sent}},
	}
	u.Envelope = nil
	u.Body = strings.TrimRight(u.Body, "\r\n")
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("upload (-want +got):\n%s", diff)
	}
}

// The done-when check: the request as captured on the wire validates,
// header and body, against Ascio's schemas.
func TestCapturedRequestValidates(t *testing.T) {
	t.Parallel()
	s, c := start(t)
	for _, n := range []scheduler.Notice{scheduler.Reminder1, scheduler.Reminder2, scheduler.Reminder3} {
		if _, err := c.Upload(context.Background(), "O-"+string(n), n, sent, false); err != nil {
			t.Fatal(err)
		}
		env := s.LastEnvelope(ascioteststand.OpUploadMessage)
		sch, err := ascioteststand.WriteSchemas()
		if err != nil {
			t.Fatal(err)
		}
		err = sch.Envelope(env)
		sch.Close()
		if err != nil {
			t.Errorf("%s: captured request does not validate: %v", n, err)
		}
		if !bytes.Contains(env, []byte("<v3:Type>Expiry"+strings.ToUpper(string(n[0]))+"eminder"+string(n[len(n)-1])+"</v3:Type>")) {
			t.Errorf("%s: request has the wrong Type:\n%s", n, env)
		}
	}
}

func TestSuspensionIsNotUploaded(t *testing.T) {
	t.Parallel()
	s, c := start(t)
	_, err := c.Upload(context.Background(), "O1", scheduler.Suspension, sent, false)
	if !errors.Is(err, uploader.ErrNotUploadable) {
		t.Errorf("err = %v, want ErrNotUploadable", err)
	}
	if calls := s.Calls(); len(calls) != 0 {
		t.Errorf("Ascio was called: %v", calls)
	}
}

func TestResultClasses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		answer    ascioteststand.Answer
		ok        bool
		permanent bool
		code      int
	}{
		{ascioteststand.OK, true, false, 200},
		{ascioteststand.Created, true, false, 201},
		{ascioteststand.TooLarge, true, false, 413},
		{ascioteststand.TryLater, false, false, 554},
		{ascioteststand.Fault, false, false, 0},
		{ascioteststand.Stall, false, false, 0},
		{ascioteststand.Denied, false, false, 401}, // errpd's credentials: retried until fixed
		{ascioteststand.AccessDenied, false, true, 405},
		{ascioteststand.Answer(501), false, true, 501},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.answer), func(t *testing.T) {
			t.Parallel()
			s, c := start(t)
			s.Script(ascioteststand.OpUploadMessage, tc.answer)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if tc.answer == ascioteststand.Stall {
				ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
			}
			defer cancel()
			res, err := c.Upload(ctx, "O1", scheduler.Reminder2, sent, false)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want success %v", err, tc.ok)
			}
			if failure.IsPermanent(err) != tc.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tc.permanent, tc.permanent)
			}
			if res.Code != tc.code {
				t.Errorf("result code %d, want %d (%v)", res.Code, tc.code, res)
			}
			var e *uploader.Error
			if err != nil {
				if !errors.As(err, &e) {
					t.Fatalf("%T is not *uploader.Error", err)
				}
				if tc.permanent && len(e.Result.Errors) == 0 {
					t.Errorf("permanent failure without Ascio's Errors: %+v", e.Result)
				}
				if strings.Contains(err.Error(), password) || strings.Contains(fmt.Sprintf("%#v", e.Result), password) {
					t.Errorf("error holds the password: %v", err)
				}
			}
			if tc.ok && len(s.Uploads()) != 1 {
				t.Errorf("%d uploads recorded, want 1", len(s.Uploads()))
			}
		})
	}
}

func TestEightBitSubjectIsEncoded(t *testing.T) {
	t.Parallel()
	raw := []byte("Date: Fri, 30 Jan 2026 11:15:00 +0100\r\nFrom: a@b.example\r\nTo: c@d.example\r\nSubject: Grüße\r\n\r\nbody\r\n")
	m, err := uploader.Message(scheduler.Reminder1, raw)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "=?utf-8?b?R3LDvMOfZQ==?=" {
		t.Errorf("subject %q, want base64 encoded word", m.Subject)
	}
	if m.Body != "body\r\n" && m.Body != "body" {
		t.Errorf("body %q", m.Body)
	}
}

func TestNoOrderIDIsPermanent(t *testing.T) {
	t.Parallel()
	c := &uploader.Client{}
	if _, err := c.Upload(context.Background(), "", scheduler.Reminder1, sent, false); !failure.IsPermanent(err) {
		t.Errorf("err = %v, want permanent", err)
	}
}

// TestRetryChecksBeforeUploading: after an attempt whose answer was lost,
// the retry finds the message on the order and does not upload it again;
// a retry whose first attempt never arrived uploads.
func TestRetryChecksBeforeUploading(t *testing.T) {
	t.Parallel()
	s, c := start(t)
	s.Script(ascioteststand.OpUploadMessage, ascioteststand.Lost)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := c.Upload(ctx, "O1", scheduler.Reminder1, sent, false)
	cancel()
	if err == nil || failure.IsPermanent(err) {
		t.Fatalf("an upload whose answer is lost: %v, want a temporary error", err)
	}
	res, err := c.Upload(context.Background(), "O1", scheduler.Reminder1, sent, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Uploads()); n != 1 || !strings.Contains(res.Message, "already on the order") {
		t.Fatalf("retry after a lost answer: %d uploads, result %q; want 1 upload, found on the order", n, res.Message)
	}
	// Another notice of the same order is not mistaken for this one.
	if _, err := c.Upload(context.Background(), "O1", scheduler.Reminder2, sent, true); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Uploads()); n != 2 {
		t.Fatalf("reminder2 after reminder1: %d uploads, want 2", n)
	}
}
