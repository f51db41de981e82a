package intake

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/scheduler"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"Autorenew_Domain": "AutoRenew", "AutoRenew": "AutoRenew",
		"Autodelete_Domain": "AutoDelete", "AutoDelete": "AutoDelete",
		"Pending_End_User_Action": "PendingEndUserAction", "PendingEndUserAction": "PendingEndUserAction",
		"Transfer_Away": "TransferAway", "Delete_Domain": "Delete", "Renew_Domain": "Renew",
		"Transfer_Domain": "Transfer", "Expire_Domain": "Expire", "Unexpire_Domain": "Unexpire",
		"Restore_Domain": "Restore", "Domain_Details_Update": "DetailsUpdate", "Completed": "Completed",
		"Something_New": "Something_New",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInterpret(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 25, 9, 0, 0, 0, time.UTC)
	expires := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	owner := ascio.Contact{FirstName: "Ada", LastName: "Lovelace", Email: " ada@example.net "}
	dom := ascio.Domain{Name: "Example.COM", Handle: "H1", Expires: expires, Owner: owner}
	reg := Registrant{Name: "Ada Lovelace", Email: "ada@example.net"}
	msg := func(typ, status string) ascio.QueueMessage {
		return ascio.QueueMessage{ID: 7, OrderID: "O1", OrderType: typ, OrderStatus: status, ObjectName: "example.com", ObjectType: "DomainType"}
	}
	base := Event{MessageID: 7, Domain: "example.com", Handle: "H1", Expiry: expires, Registrant: reg}
	with := func(f func(*Event)) Event { e := base; f(&e); return e }
	cases := []struct {
		name   string
		typ    string
		status string
		want   Event
		reason string
	}{
		{"autorenew v3", "AutoRenew", "Received", with(func(e *Event) {
			e.Kind, e.Mode, e.OrderID, e.OrderType, e.OrderStatus = Plan, scheduler.ModeRenew, "O1", "AutoRenew", "Received"
		}), "AutoRenew order on 2026-01-25"},
		{"autorenew v2", "Autorenew_Domain", "Pending_End_User_Action", with(func(e *Event) {
			e.Kind, e.Mode, e.OrderID, e.OrderType, e.OrderStatus = Plan, scheduler.ModeRenew, "O1", "AutoRenew", "PendingEndUserAction"
		}), "AutoRenew order"},
		{"autodelete v2", "Autodelete_Domain", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Stop, "AutoDelete", "Completed"
		}), "deleted at expiry"},
		{"autodelete v3", "AutoDelete", "PendingPostProcessing", with(func(e *Event) {
			e.Kind, e.Mode, e.OrderID, e.OrderType, e.OrderStatus = Plan, scheduler.ModeExpire, "O1", "AutoDelete", "PendingPostProcessing"
		}), "AutoDelete order"},
		{"autorenew completed", "AutoRenew", "Completed", with(func(e *Event) {
			e.Kind, e.Mode, e.OrderType, e.OrderStatus = Plan, scheduler.ModeRenew, "AutoRenew", "Completed"
		}), "auto-renewed on 2026-01-25"},
		{"renew", "Renew_Domain", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Plan, "Renew", "Completed"
		}), "renewed on 2026-01-25 (order O1, Renew Completed)"},
		{"transfer in", "Transfer", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Plan, "Transfer", "Completed"
		}), "transferred in"},
		{"expire", "Expire_Domain", "Completed", with(func(e *Event) {
			e.Kind, e.Mode, e.OrderType, e.OrderStatus = Switch, scheduler.ModeExpire, "Expire", "Completed"
		}), "set to expire"},
		{"unexpire", "Unexpire", "Completed", with(func(e *Event) {
			e.Kind, e.Mode, e.OrderType, e.OrderStatus = Switch, scheduler.ModeRenew, "Unexpire", "Completed"
		}), "set to renew"},
		{"transfer away v2", "Transfer_Away", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Stop, "TransferAway", "Completed"
		}), "transferred away"},
		{"delete", "Delete", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Stop, "Delete", "Completed"
		}), "deleted on"},
		{"restore", "Restore_Domain", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Plan, "Restore", "Completed"
		}), "restored"},
		{"renew pending", "Renew", "PendingNicProcessing", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Ignore, "Renew", "PendingNicProcessing"
		}), "not completed"},
		{"autorenew failed", "AutoRenew", "Failed", with(func(e *Event) {
			e.Kind, e.OrderID, e.OrderType, e.OrderStatus = NotRenewed, "O1", "AutoRenew", "Failed"
		}), "AutoRenew order O1 Failed on 2026-01-25"},
		{"autorenew invalid v2", "Autorenew_Domain", "Invalid", with(func(e *Event) {
			e.Kind, e.OrderID, e.OrderType, e.OrderStatus = NotRenewed, "O1", "AutoRenew", "Invalid"
		}), "AutoRenew order O1 Invalid"},
		{"autorenew authentication failed", "AutoRenew", "Authentication_Failed", with(func(e *Event) {
			e.Kind, e.OrderID, e.OrderType, e.OrderStatus = NotRenewed, "O1", "AutoRenew", "AuthenticationFailed"
		}), "AutoRenew order O1 AuthenticationFailed"},
		{"renew failed", "Renew", "Failed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Ignore, "Renew", "Failed"
		}), "did not go through"},
		{"owner change", "Owner_Change", "Completed", with(func(e *Event) {
			e.Kind, e.OrderType, e.OrderStatus = Plan, "OwnerChange", "Completed"
		}), "OwnerChange completed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The order's type and status win over the message's; here
			// they agree, as Ascio's would.
			o := ascio.Order{ID: "O1", Type: tc.typ, Status: tc.status, DomainName: "example.com"}
			got, err := Interpret(msg(tc.typ, tc.status), o, dom, at)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(got.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", got.Reason, tc.reason)
			}
			got.Reason = ""
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInterpretRefusesContradictions(t *testing.T) {
	t.Parallel()
	at := time.Now()
	dom := ascio.Domain{Name: "example.com", Expires: at}
	m := ascio.QueueMessage{ID: 1, OrderID: "O1", ObjectName: "example.com"}
	if _, err := Interpret(m, ascio.Order{ID: "O1", Type: "AutoRenew", DomainName: "other.example"}, dom, at); !errors.Is(err, ErrUnusable) {
		t.Errorf("order naming another domain: %v, want ErrUnusable", err)
	}
	if _, err := Interpret(m, ascio.Order{ID: "O1", Type: "AutoRenew"}, ascio.Domain{Name: "example.com"}, at); !errors.Is(err, ErrUnusable) {
		t.Errorf("no expiry: %v, want ErrUnusable", err)
	}
	ev, err := Interpret(ascio.QueueMessage{ID: 2, ObjectType: "SslCertificateType"}, ascio.Order{ID: "O2", Type: "Register"}, ascio.Domain{}, at)
	if err != nil || ev.Kind != Ignore {
		t.Errorf("certificate message: %+v, %v; want Ignore", ev, err)
	}
	ev, err = Interpret(m, ascio.Order{ID: "O1", Type: "AutoRenew"}, ascio.Domain{Name: "bücher.example", Expires: at}, at)
	if err == nil {
		t.Errorf("U-label mismatch with message object accepted: %+v", ev)
	}
	m.ObjectName = "BÜCHER.example"
	ev, err = Interpret(m, ascio.Order{ID: "O1", Type: "AutoRenew"}, ascio.Domain{Name: "bücher.example", Expires: at}, at)
	if err != nil || ev.Domain != "xn--bcher-kva.example" {
		t.Errorf("IDN: %+v, %v; want the A-label", ev, err)
	}
}
