package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"regexp"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/errpd/errpd/internal/peertext"
	"github.com/errpd/errpd/store"
)

// Verdict is what a message sent to a bounce address says. Kind is empty
// when it says nothing to record (Ignored says why).
type Verdict struct {
	Kind       store.BounceKind
	Status     string // RFC 3463 status code, e.g. 5.1.1; empty when none was given
	Diagnostic string // capped (peertext)
	DSN        bool   // an RFC 3464 delivery status notification
	Ignored    string
}

// maxScan bounds how much of a non-standard bounce is searched for a
// status code.
const maxScan = 64 << 10

var statusRE = regexp.MustCompile(`\b([245])\.(\d{1,3})\.(\d{1,3})\b`)

// Parse reads a message that arrived at a bounce address. An RFC 3464
// report (multipart/report; report-type=delivery-status) gives the
// recipient's Action, Status and Diagnostic-Code; an auto-reply (RFC 3834
// Auto-Submitted other than "no") is ignored; anything else is a
// non-standard bounce, identified by its VERP address alone, whose kind
// comes from the first status code in its text (soft when it has none).
func Parse(r io.Reader) (Verdict, error) {
	e, err := message.Read(r)
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return Verdict{}, fmt.Errorf("not a mail message: %w", err)
	}
	mt, params, _ := e.Header.ContentType()
	if strings.EqualFold(mt, "multipart/report") && strings.EqualFold(params["report-type"], "delivery-status") {
		v, found, err := parseReport(e)
		if err != nil || found {
			return v, err
		}
		// A report without a status part: treated as non-standard below.
	} else if as := strings.TrimSpace(e.Header.Get("Auto-Submitted")); as != "" && !strings.EqualFold(as, "no") && !fromDaemon(e.Header) {
		// An MTA's bounce may carry Auto-Submitted too; it comes from
		// MAILER-DAEMON or postmaster, an out-of-office does not.
		return Verdict{Ignored: "auto-reply (Auto-Submitted: " + peertext.CapN(as, 64) + ")"}, nil
	}
	return nonStandard(e)
}

// parseReport finds the delivery-status part and reads its fields: a
// per-message block, then one block per recipient (RFC 3464 2.1).
func parseReport(e *message.Entity) (Verdict, bool, error) {
	var v Verdict
	found := false
	err := e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil || found {
			return nil
		}
		mt, _, _ := part.Header.ContentType()
		if !strings.EqualFold(mt, "message/delivery-status") && !strings.EqualFold(mt, "message/global-delivery-status") {
			return nil
		}
		found = true
		v, err = readStatus(part.Body)
		return err
	})
	return v, found, err
}

func readStatus(body io.Reader) (Verdict, error) {
	br := bufio.NewReader(io.LimitReader(body, maxScan))
	if _, err := textproto.ReadHeader(br); err != nil { // per-message fields
		return Verdict{}, fmt.Errorf("delivery-status: per-message fields: %w", err)
	}
	best := Verdict{DSN: true, Ignored: "delivery-status with no failed or delayed recipient"}
	for n := 1; ; n++ {
		if skipBlank(br) {
			break
		}
		h, err := textproto.ReadHeader(br)
		if err != nil {
			return Verdict{}, fmt.Errorf("delivery-status: recipient block %d: %w", n, err)
		}
		if v := recipient(h); rank(v.Kind) > rank(best.Kind) {
			best = v
		}
	}
	return best, nil
}

// skipBlank skips blank lines between blocks and tells whether the part
// ended.
func skipBlank(br *bufio.Reader) bool {
	for {
		b, err := br.Peek(1)
		if err != nil {
			return true
		}
		if b[0] != '\r' && b[0] != '\n' {
			return false
		}
		br.ReadByte()
	}
}

// recipient reads one per-recipient block.
func recipient(h textproto.Header) Verdict {
	v := Verdict{DSN: true}
	status := statusRE.FindString(h.Get("Status"))
	v.Status = status
	v.Diagnostic = peertext.Cap(strings.Join(strings.Fields(h.Get("Diagnostic-Code")), " "))
	switch action := strings.ToLower(strings.TrimSpace(h.Get("Action"))); action {
	case "failed":
		v.Kind = store.BounceHard
		if strings.HasPrefix(status, "4.") {
			v.Kind = store.BounceSoft
		}
	case "delayed":
		v.Kind = store.BounceDelayed
	default:
		v.Ignored = "delivery-status action " + peertext.CapN(action, 32)
	}
	return v
}

func rank(k store.BounceKind) int {
	switch k {
	case store.BounceHard:
		return 3
	case store.BounceSoft:
		return 2
	case store.BounceDelayed:
		return 1
	}
	return 0
}

// nonStandard takes a bounce that is no RFC 3464 report: its VERP address
// names the step; its text may hold a status code.
func nonStandard(e *message.Entity) (Verdict, error) {
	var text bytes.Buffer
	err := e.Walk(func(_ []int, part *message.Entity, err error) error {
		if err != nil || text.Len() >= maxScan {
			return nil
		}
		if mt, _, _ := part.Header.ContentType(); mt == "" || strings.HasPrefix(strings.ToLower(mt), "text/") {
			_, err := io.Copy(&text, io.LimitReader(part.Body, int64(maxScan-text.Len())))
			return err
		}
		return nil
	})
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return Verdict{}, fmt.Errorf("reading the bounce: %w", err)
	}
	subject := strings.Join(strings.Fields(e.Header.Get("Subject")), " ")
	v := Verdict{Kind: store.BounceSoft, Diagnostic: peertext.Cap("non-standard bounce: " + subject)}
	if m := statusRE.FindSubmatch(text.Bytes()); m != nil {
		v.Status = string(m[0])
		switch m[1][0] {
		case '5':
			v.Kind = store.BounceHard
		case '2':
			return Verdict{Ignored: "non-standard message with a success status " + v.Status}, nil
		}
	}
	return v, nil
}

// fromDaemon tells whether a message is from an MTA (MAILER-DAEMON or
// postmaster, RFC 5321 4.5.5's senders of bounces).
func fromDaemon(h message.Header) bool {
	list, err := mail.ParseAddressList(h.Get("From"))
	if err != nil || len(list) != 1 {
		return false
	}
	local, _, _ := strings.Cut(list[0].Address, "@")
	return strings.EqualFold(local, "mailer-daemon") || strings.EqualFold(local, "postmaster")
}
