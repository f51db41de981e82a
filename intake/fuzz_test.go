package intake_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/intake"
	"github.com/errpd/errpd/internal/peertext"
	"github.com/errpd/errpd/scheduler"
)

// heldAscio is an Ascio that holds one queue message (7, order O1, domain
// example.com) and counts the calls made to it. The fuzz targets call the
// handler millions of times; the stand-in's HTTP and schema checks would
// make each call a thousand times slower.
type heldAscio struct{ calls int }

var (
	heldMessage = ascio.QueueMessage{ID: 7, MessageType: "MessageToPartner", ObjectHandle: "DOM-1", ObjectName: "example.com",
		ObjectType: "DomainType", OrderID: "O1", OrderStatus: "Received", OrderType: "AutoRenew"}
	heldOrder  = ascio.Order{ID: "O1", Status: "Received", Type: "AutoRenew", DomainName: "example.com", DomainHandle: "DOM-1"}
	heldDomain = ascio.Domain{Name: "example.com", Handle: "DOM-1", Expires: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Owner: ascio.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.net"}}
)

func notFound(op string) error { return &ascio.Error{Op: op, Result: ascio.Result{Code: 404}} }

func (a *heldAscio) PollQueue(context.Context, ascio.MessageType) (*ascio.QueueMessage, error) {
	a.calls++
	return nil, nil
}

func (a *heldAscio) GetQueueMessage(_ context.Context, id int) (ascio.QueueMessage, error) {
	a.calls++
	if id != heldMessage.ID {
		return ascio.QueueMessage{}, notFound("GetQueueMessage")
	}
	return heldMessage, nil
}

func (a *heldAscio) AckQueueMessage(context.Context, int) error { a.calls++; return nil }

func (a *heldAscio) GetOrder(_ context.Context, id string) (ascio.Order, error) {
	a.calls++
	if id != heldOrder.ID {
		return ascio.Order{}, notFound("GetOrder")
	}
	return heldOrder, nil
}

func (a *heldAscio) GetDomain(_ context.Context, handle string) (ascio.Domain, error) {
	a.calls++
	if handle != heldDomain.Handle {
		return ascio.Domain{}, notFound("GetDomain")
	}
	return heldDomain, nil
}

// maxLogged bounds one log line, whatever the URL: peertext.Cap keeps
// 2 KiB of a value, which the text handler's escapes (\x00 for a byte)
// can make four times longer, with room for the rest of the line.
const maxLogged = 4*peertext.Max + 2<<10

// FuzzCallback sends any query string to the callback handler, once with
// a token set and once without. Properties: no panic; only the statuses
// the handler documents; with a token, a request without it never reaches
// Ascio; only the message Ascio holds, named with its own OrderId (and
// Object, when given), is stored; a log line stays bounded whatever the
// URL holds.
func FuzzCallback(f *testing.F) {
	for _, q := range []string{
		"OrderId=O1&MessageId=7&OrderStatus=Completed&Object=example.com&token=tok-fuzz-123",
		"OrderId=O1&MessageId=7&OrderStatus=Completed",
		"OrderId=O1&MessageId=7&Object=EXAMPLE.com.&token=tok-fuzz-123",
		"OrderId=O1&MessageId=8&token=tok-fuzz-123",
		"OrderId=O2&MessageId=7&token=tok-fuzz-123",
		"OrderId=O1&MessageId=7&Object=other.example&token=tok-fuzz-123",
		"OrderId=%20O1%20&MessageId=+7&token=tok-fuzz-123",
		"OrderId=O1&MessageId=-7",
		"OrderId=O1&MessageId=99999999999999999999",
		"OrderId=&MessageId=7",
		"OrderId=O1;MessageId=7",
		"OrderId=%zz&MessageId=7",
		"token=tok-fuzz-123&token=x&MessageId=7&OrderId=O1",
		"MessageId=1&OrderId=" + strings.Repeat("A", 12000),
		"MessageId=7&OrderId=O1&Object=" + strings.Repeat("\xff", 2100),
		"",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, query string) {
		for _, token := range []config.Secret{"", "tok-fuzz-123"} {
			var logged bytes.Buffer
			fake, cal := &heldAscio{}, newCalendar()
			in := &intake.Intake{Ascio: fake, Calendar: cal, Now: func() time.Time { return now },
				Log: slog.New(slog.NewTextHandler(&logged, nil))}
			h := intake.NewHandler(in, token, nil, 1)
			req := httptest.NewRequest(http.MethodGet, "/ascio/callback", nil)
			req.URL.RawQuery = query
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			q, _ := url.ParseQuery(query)
			switch rec.Code {
			case http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound,
				http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			default:
				t.Fatalf("token %t: status %d", token.Set(), rec.Code)
			}
			if token.Set() && q.Get("token") != token.Reveal() && (fake.calls > 0 || rec.Code != http.StatusForbidden) {
				t.Fatalf("a wrong token got status %d after %d Ascio calls", rec.Code, fake.calls)
			}
			_, _, applied := cal.state()
			id, _ := strconv.Atoi(q.Get("MessageId"))
			ours := id == heldMessage.ID && strings.TrimSpace(q.Get("OrderId")) == heldMessage.OrderID
			if obj := q.Get("Object"); obj != "" && !strings.EqualFold(strings.TrimSuffix(strings.TrimSpace(obj), "."), heldMessage.ObjectName) {
				ours = false
			}
			if (rec.Code == http.StatusOK || applied > 0) && !ours {
				t.Fatalf("query %q was taken for message %d (status %d, %d applied)", query, heldMessage.ID, rec.Code, applied)
			}
			for _, line := range strings.Split(logged.String(), "\n") {
				if len(line) > maxLogged {
					t.Fatalf("a log line of %d bytes from a query of %d: %.200q...", len(line), len(query), line)
				}
			}
		}
	})
}

// FuzzInterpret feeds Interpret any message, order and domain. Properties:
// no panic; an error is ErrUnusable; the event keeps the message id, has a
// kind and a reason; one that changes a cycle names a lower-case ASCII
// domain; Plan and Switch carry a UTC expiry in whole seconds; Switch
// carries a mode; and Interpret, a pure function, gives the same event
// twice.
func FuzzInterpret(f *testing.F) {
	f.Add(7, "DomainType", "example.com", "AutoRenew", "Completed", "O1", "AutoRenew", "Completed", "example.com", "Example.COM", int64(1772323200), "Ada", "ada@example.net")
	f.Add(8, "DomainType", "example.com", "Autorenew_Domain", "Pending_End_User_Action", "O1", "", "", "", "example.com", int64(1772323200), "", "")
	f.Add(9, "ContactType", "", "Update", "Completed", "O2", "", "", "", "", int64(0), "", "")
	f.Add(10, "", "bücher.example", "Transfer_Away", "Completed", "O3", "", "", "xn--bcher-kva.example", "BÜCHER.example.", int64(-62135596800), "", "")
	f.Add(11, "DomainType", "example.com", "Expire_Domain", "Completed", "O4", "Expire", "Completed", "example.com", "example.com", int64(0), "", "")
	f.Add(12, "DomainType", "a.example", "Renew", "Completed", "O5", "Renew", "Completed", "b.example", "a.example", int64(1772323200), "", "")
	f.Add(13, "DomainType", "", "Unexpire", "Completed", "O6", "", "Failed", "", "x..y", int64(253402300800), "", "")
	at := time.Date(2026, 1, 25, 9, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, id int, objType, objName, mType, mStatus, orderID, oType, oStatus, oDomain, dName string, expires int64, owner, email string) {
		m := ascio.QueueMessage{ID: id, ObjectType: objType, ObjectName: objName, OrderType: mType, OrderStatus: mStatus, OrderID: orderID}
		o := ascio.Order{ID: orderID, Type: oType, Status: oStatus, DomainName: oDomain}
		d := ascio.Domain{Name: dName, Owner: ascio.Contact{OrgName: owner, Email: email}}
		if expires != 0 {
			d.Expires = time.Unix(expires, 0).In(time.FixedZone("X", 3600))
		}
		ev, err := intake.Interpret(m, o, d, at)
		again, err2 := intake.Interpret(m, o, d, at)
		if !reflect.DeepEqual(ev, again) || (err == nil) != (err2 == nil) {
			t.Fatalf("two calls differ: %+v, %v and %+v, %v", ev, err, again, err2)
		}
		if ev.MessageID != id {
			t.Fatalf("event for message %d says %d", id, ev.MessageID)
		}
		if err != nil {
			if !errors.Is(err, intake.ErrUnusable) {
				t.Fatalf("error %v is not ErrUnusable", err)
			}
			return
		}
		if ev.Reason == "" {
			t.Fatalf("event %+v without a reason", ev)
		}
		switch ev.Mode {
		case "", scheduler.ModeRenew, scheduler.ModeExpire:
		default:
			t.Fatalf("mode %q", ev.Mode)
		}
		switch ev.Kind {
		case intake.Ignore:
			return
		case intake.Switch:
			if ev.Mode == "" {
				t.Fatalf("switch without a mode: %+v", ev)
			}
			fallthrough
		case intake.Plan:
			if ev.Expiry.IsZero() || ev.Expiry.Location() != time.UTC || ev.Expiry.Nanosecond() != 0 {
				t.Fatalf("%s with expiry %v", ev.Kind, ev.Expiry)
			}
		case intake.Stop:
		default:
			t.Fatalf("kind %q", ev.Kind)
		}
		if ev.Domain == "" || ev.Domain != strings.ToLower(ev.Domain) || !isASCII(ev.Domain) {
			t.Fatalf("%s names domain %q", ev.Kind, ev.Domain)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
