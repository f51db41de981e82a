package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	ascioapi "github.com/errpd/errpd/ascio"
)

// TestCallbackPlansAndSends: Ascio calls errpd back for an AutoDelete
// order; errpd checks the message with Ascio, plans the cycle in its store
// with the order id, sends the notice that is due and uploads it against
// that order. A replay of the callback changes nothing; a forged one is
// refused.
func TestCallbackPlansAndSends(t *testing.T) {
	bin, sk, asc, _, cfg := endToEnd(t, 2)
	d := startErrpd(t, bin, cfg)
	defer d.stop(t)

	exp := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Second)
	owner := ascioapi.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.net"}
	asc.srv.AddMessage(ascioapi.QueueMessage{ID: 4711, Text: "AutoDelete cb.example.com", ObjectHandle: "DOM-CB",
		ObjectName: "cb.example.com", OrderID: "ORD-CB", OrderStatus: "PendingEndUserAction", OrderType: "AutoDelete"})
	asc.srv.AddOrder(ascioapi.Order{ID: "ORD-CB", Status: "PendingEndUserAction", Type: "AutoDelete",
		DomainName: "cb.example.com", DomainHandle: "DOM-CB", Owner: owner})
	asc.srv.AddDomain(ascioapi.Domain{Name: "cb.example.com", Handle: "DOM-CB", Status: "ACTIVE", Expires: exp, Owner: owner})

	callback := func(id, order string) int {
		q := url.Values{"MessageId": {id}, "OrderId": {order}, "OrderStatus": {"PendingEndUserAction"}, "Object": {"cb.example.com"}}
		resp, err := http.Get("http://" + httpListen(t, cfg) + "/ascio/callback?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := callback("999", "ORD-FORGED"); code == http.StatusOK {
		t.Errorf("a forged callback was accepted")
	}
	if code := callback("4711", "ORD-CB"); code != http.StatusOK {
		t.Fatalf("callback answered %d", code)
	}
	all := waitSteps(t, bin, cfg, "the callback's notice proved", []string{"cb.example.com"}, func(s step) bool { return s.State == "proved" })
	if all[0].OrderID != "ORD-CB" || all[0].Recipient != "ada@example.net" {
		t.Errorf("step %+v: want order ORD-CB and the registrant from GetDomain", all[0])
	}
	callback("4711", "ORD-CB") // replay
	var n int
	for _, s := range steps(t, bin, cfg) {
		if s.Domain == "cb.example.com" {
			n++
			if !strings.HasPrefix(s.ID, "cb.example.com/") {
				t.Errorf("unexpected step %s", s.ID)
			}
		}
	}
	if n != 4 { // AutoDelete: reminder1, reminder2, reminder3, suspension
		t.Errorf("%d steps for cb.example.com, want the 4 of one expire cycle", n)
	}
	if got := len(sk.messages(t)); got != 1 {
		t.Errorf("%d messages arrived, want 1", got)
	}
	if ups := asc.uploads(t); len(ups) != 1 {
		t.Errorf("%d uploads, want 1", len(ups))
	}
}
