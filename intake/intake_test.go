package intake_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/intake"
	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/scheduler"
)

var now = time.Date(2026, 1, 25, 9, 0, 0, 0, time.UTC)

// cycle is the fake calendar's view of a domain's current cycle.
type cycle struct {
	Expiry  time.Time
	Mode    scheduler.Mode
	OrderID string
	Email   string
}

// calendar is an in-memory Calendar that models what the store does:
// a plan with a new expiry closes the old cycle.
type calendar struct {
	mu      sync.Mutex
	seen    map[int]bool
	current map[string]cycle
	closed  map[string][]string // domain: reasons of closed cycles
	applied []intake.Event
	fail    error
	onApply func(intake.Event) // runs inside Apply
}

func newCalendar() *calendar {
	return &calendar{seen: map[int]bool{}, current: map[string]cycle{}, closed: map[string][]string{}}
}

func (c *calendar) Apply(_ context.Context, ev intake.Event) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.onApply != nil {
		c.onApply(ev)
	}
	if c.fail != nil {
		return false, c.fail
	}
	if c.seen[ev.MessageID] {
		return false, nil
	}
	c.seen[ev.MessageID] = true
	c.applied = append(c.applied, ev)
	old, ok := c.current[ev.Domain]
	switch ev.Kind {
	case intake.Plan:
		next := cycle{Expiry: ev.Expiry, Mode: ev.Mode, OrderID: ev.OrderID, Email: ev.Registrant.Email}
		if ok && !old.Expiry.Equal(ev.Expiry) {
			c.closed[ev.Domain] = append(c.closed[ev.Domain], ev.Reason)
		} else if ok {
			if next.OrderID == "" {
				next.OrderID = old.OrderID
			}
		}
		if next.Mode == "" {
			next.Mode = old.Mode
		}
		if next.Mode == "" {
			next.Mode = scheduler.ModeRenew
		}
		c.current[ev.Domain] = next
	case intake.Stop:
		if ok {
			c.closed[ev.Domain] = append(c.closed[ev.Domain], ev.Reason)
			delete(c.current, ev.Domain)
		}
	case intake.Switch:
		if ok {
			old.Mode = ev.Mode
			c.current[ev.Domain] = old
		}
	}
	return true, nil
}

func (c *calendar) state() (map[string]cycle, map[string][]string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := map[string]cycle{}
	for k, v := range c.current {
		cur[k] = v
	}
	cl := map[string][]string{}
	for k, v := range c.closed {
		cl[k] = append([]string(nil), v...)
	}
	return cur, cl, len(c.applied)
}

type env struct {
	ascio *ascioteststand.Server
	cal   *calendar
	in    *intake.Intake
	url   string // callback endpoint
}

func setup(t *testing.T, allow []netip.Prefix, token config.Secret) *env {
	t.Helper()
	s, endpoint := ascioteststand.Start(t)
	cal := newCalendar()
	in := &intake.Intake{
		Ascio:    &ascio.Client{Endpoint: endpoint, Account: "acct", Password: "pw"},
		Calendar: cal,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return now },
	}
	hs := httptest.NewServer(intake.NewHandler(in, token, allow, 0))
	t.Cleanup(hs.Close)
	return &env{ascio: s, cal: cal, in: in, url: hs.URL + "/ascio/callback"}
}

var (
	expires = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	owner   = ascio.Contact{FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.net"}
)

// seed puts one message with its order and domain into the stand-in.
func (e *env) seed(id int, orderID, typ, status string, exp time.Time) {
	e.ascio.AddMessage(ascio.QueueMessage{ID: id, Text: typ + " example.com", ObjectHandle: "DOM-1",
		ObjectName: "example.com", OrderID: orderID, OrderStatus: status, OrderType: typ})
	e.ascio.AddOrder(ascio.Order{ID: orderID, Status: status, Type: typ, DomainName: "example.com", DomainHandle: "DOM-1", Owner: owner})
	e.ascio.AddDomain(ascio.Domain{Name: "example.com", Handle: "DOM-1", Status: "ACTIVE", Expires: exp, Owner: owner})
}

func (e *env) callback(t *testing.T, q url.Values) int {
	t.Helper()
	resp, err := http.Get(e.url + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func params(id, orderID string) url.Values {
	return url.Values{"MessageId": {id}, "OrderId": {orderID}, "OrderStatus": {"Completed"}, "Object": {"example.com"}}
}

func TestCallbackPlansCycle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ  string
		mode scheduler.Mode
	}{{"AutoRenew", scheduler.ModeRenew}, {"AutoDelete", scheduler.ModeExpire}} {
		t.Run(tc.typ, func(t *testing.T) {
			t.Parallel()
			e := setup(t, nil, "")
			e.seed(987654, "TEST1234567", tc.typ, "PendingEndUserAction", expires)
			if code := e.callback(t, params("987654", "TEST1234567")); code != 200 {
				t.Fatalf("callback answered %d", code)
			}
			cur, _, _ := e.cal.state()
			want := map[string]cycle{"example.com": {Expiry: expires, Mode: tc.mode, OrderID: "TEST1234567", Email: "ada@example.net"}}
			if diff := cmp.Diff(want, cur); diff != "" {
				t.Errorf("calendar (-want +got):\n%s", diff)
			}
			wantCalls := []string{"GetQueueMessage", "GetOrder", "GetDomain", "AckQueueMessage"}
			if diff := cmp.Diff(wantCalls, e.ascio.Calls()); diff != "" {
				t.Errorf("Ascio calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{987654}, e.ascio.Acked()); diff != "" {
				t.Errorf("acked (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenewalClosesCycle(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	e.seed(1, "AR-1", "AutoRenew", "Received", expires)
	if code := e.callback(t, params("1", "AR-1")); code != 200 {
		t.Fatalf("callback answered %d", code)
	}
	renewed := expires.AddDate(1, 0, 0)
	e.seed(2, "RN-1", "Renew", "Completed", renewed)
	if code := e.callback(t, params("2", "RN-1")); code != 200 {
		t.Fatalf("renewal callback answered %d", code)
	}
	cur, closed, _ := e.cal.state()
	if got := cur["example.com"]; !got.Expiry.Equal(renewed) || got.OrderID != "" {
		t.Errorf("current cycle %+v, want expiry %s and no order id yet", got, renewed)
	}
	want := []string{"renewed on 2026-01-25 (order RN-1, Renew Completed)"}
	if diff := cmp.Diff(want, closed["example.com"]); diff != "" {
		t.Errorf("closed cycles (-want +got):\n%s", diff)
	}
}

func TestReplayedCallbackChangesNothing(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	e.seed(5, "AR-5", "AutoRenew", "Received", expires)
	if code := e.callback(t, params("5", "AR-5")); code != 200 {
		t.Fatalf("first callback answered %d", code)
	}
	cur1, closed1, n1 := e.cal.state()
	// Replayed after the ack: Ascio no longer holds it.
	if code := e.callback(t, params("5", "AR-5")); code != 404 {
		t.Errorf("replay answered %d, want 404", code)
	}
	cur2, closed2, n2 := e.cal.state()
	if n1 != n2 || !cmp.Equal(cur1, cur2) || !cmp.Equal(closed1, closed2) {
		t.Errorf("replay changed the calendar: %d→%d applied, %v→%v", n1, n2, cur1, cur2)
	}
}

// When the ack failed, the message is still queued; taking it again
// applies nothing twice and acknowledges it.
func TestReplayBeforeAckIsIdempotent(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	e.seed(6, "AR-6", "AutoRenew", "Received", expires)
	e.ascio.Script(ascioteststand.OpAckQueueMessage, ascioteststand.TryLater)
	if code := e.callback(t, params("6", "AR-6")); code != 503 {
		t.Errorf("callback whose ack failed answered %d, want 503", code)
	}
	if len(e.ascio.Acked()) != 0 {
		t.Fatalf("acked despite 554")
	}
	_, _, n1 := e.cal.state()
	if code := e.callback(t, params("6", "AR-6")); code != 200 {
		t.Errorf("second callback answered %d", code)
	}
	_, _, n2 := e.cal.state()
	if n1 != 1 || n2 != 1 {
		t.Errorf("applied %d then %d events, want 1 and 1", n1, n2)
	}
	if diff := cmp.Diff([]int{6}, e.ascio.Acked()); diff != "" {
		t.Errorf("acked (-want +got):\n%s", diff)
	}
}

func TestForgedCallbacksChangeNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		allow     []netip.Prefix
		token     config.Secret
		q         url.Values
		code      int
		wantCalls []string
	}{
		{"unknown message id", nil, "", params("424242", "TEST1"), 404, []string{"GetQueueMessage"}},
		{"order id not the message's", nil, "", params("11", "OTHER"), 404, []string{"GetQueueMessage"}},
		{"object not the message's", nil, "", url.Values{"MessageId": {"11"}, "OrderId": {"AR-11"}, "Object": {"victim.example"}}, 404, []string{"GetQueueMessage"}},
		{"address not allowed", []netip.Prefix{netip.MustParsePrefix("185.26.229.129/32")}, "", params("11", "AR-11"), 403, nil},
		{"no token", nil, "t0ken", params("11", "AR-11"), 403, nil},
		{"wrong token", nil, "t0ken", func() url.Values { q := params("11", "AR-11"); q.Set("token", "t0kem"); return q }(), 403, nil},
		{"no message id", nil, "", url.Values{"OrderId": {"AR-11"}}, 400, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tc.allow, tc.token)
			e.seed(11, "AR-11", "AutoRenew", "Received", expires)
			if code := e.callback(t, tc.q); code != tc.code {
				t.Errorf("answered %d, want %d", code, tc.code)
			}
			if _, _, n := e.cal.state(); n != 0 {
				t.Errorf("calendar applied %d events", n)
			}
			if diff := cmp.Diff(tc.wantCalls, e.ascio.Calls()); diff != "" {
				t.Errorf("Ascio calls (-want +got):\n%s", diff)
			}
			if len(e.ascio.Acked()) != 0 {
				t.Errorf("acked %v", e.ascio.Acked())
			}
		})
	}
}

func TestAllowedAddressAndTokenPass(t *testing.T) {
	t.Parallel()
	e := setup(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "t0ken")
	e.seed(12, "AR-12", "AutoRenew", "Received", expires)
	q := params("12", "AR-12")
	q.Set("token", "t0ken")
	if code := e.callback(t, q); code != 200 {
		t.Errorf("answered %d, want 200", code)
	}
	if _, _, n := e.cal.state(); n != 1 {
		t.Errorf("calendar applied %d events, want 1", n)
	}
}

func TestDrainAcksOnlyAfterApply(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	e.seed(21, "AR-21", "AutoRenew", "Received", expires)
	e.ascio.AddMessage(ascio.QueueMessage{ID: 22, ObjectHandle: "DOM-1", ObjectName: "example.com", OrderID: "EX-22", OrderStatus: "Completed", OrderType: "Expire"})
	e.ascio.AddOrder(ascio.Order{ID: "EX-22", Status: "Completed", Type: "Expire", DomainName: "example.com", DomainHandle: "DOM-1"})
	var ackedAtApply [][]int
	e.cal.onApply = func(intake.Event) { ackedAtApply = append(ackedAtApply, e.ascio.Acked()) }

	// The calendar fails: nothing is acknowledged, the message stays.
	e.cal.fail = errors.New("disk full")
	n, err := e.in.Drain(context.Background())
	if err == nil || n != 0 {
		t.Errorf("Drain with a failing calendar = %d, %v; want 0 and an error", n, err)
	}
	if len(e.ascio.Acked()) != 0 || len(e.ascio.Queue()) != 2 {
		t.Errorf("acked %v, queue %d; want nothing acked, 2 queued", e.ascio.Acked(), len(e.ascio.Queue()))
	}

	e.cal.fail = nil
	n, err = e.in.Drain(context.Background())
	if err != nil || n != 2 {
		t.Fatalf("Drain = %d, %v; want 2, nil", n, err)
	}
	if diff := cmp.Diff([]int{21, 22}, e.ascio.Acked()); diff != "" {
		t.Errorf("acked (-want +got):\n%s", diff)
	}
	// Each Apply ran before its own message was acknowledged.
	// (The failing round stopped at its first Apply.)
	want := [][]int{nil, nil, {21}}
	if diff := cmp.Diff(want, ackedAtApply); diff != "" {
		t.Errorf("acked as seen from inside Apply (-want +got):\n%s", diff)
	}
	cur, _, _ := e.cal.state()
	if got := cur["example.com"]; got.Mode != scheduler.ModeExpire || got.OrderID != "AR-21" {
		t.Errorf("after AutoRenew then Expire: %+v, want mode expire with order AR-21", got)
	}
}

func TestDrainStopsOnTemporaryError(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	e.seed(31, "AR-31", "AutoRenew", "Received", expires)
	e.ascio.Script(ascioteststand.OpGetOrder, ascioteststand.Fault)
	if _, err := e.in.Drain(context.Background()); !ascio.IsTemporary(err) {
		t.Errorf("Drain = %v, want a temporary error", err)
	}
	if _, _, n := e.cal.state(); n != 0 || len(e.ascio.Acked()) != 0 {
		t.Errorf("applied %d, acked %v after a fault", n, e.ascio.Acked())
	}
}

// A message whose order Ascio does not know would block the queue head
// forever; it is recorded as ignored and acknowledged.
func TestDrainRecordsUnusableMessage(t *testing.T) {
	t.Parallel()
	e := setup(t, nil, "")
	e.ascio.AddMessage(ascio.QueueMessage{ID: 41, ObjectHandle: "DOM-X", OrderID: "GONE", OrderStatus: "Completed", OrderType: "Renew"})
	n, err := e.in.Drain(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v", n, err)
	}
	if len(e.cal.applied) != 1 || e.cal.applied[0].Kind != intake.Ignore || e.cal.applied[0].Reason == "" {
		t.Errorf("applied %+v, want one Ignore with a reason", e.cal.applied)
	}
	if diff := cmp.Diff([]int{41}, e.ascio.Acked()); diff != "" {
		t.Errorf("acked (-want +got):\n%s", diff)
	}
}

func TestCheckSchedule(t *testing.T) {
	t.Parallel()
	for spec, ok := range map[string]bool{
		"@every 10m": true, "@every 5m": true, "*/10 * * * *": true, "0 * * * *": true,
		"@every 1m": false, "*/3 * * * *": false, "0,2 * * * *": false,
	} {
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if err := intake.CheckSchedule(s, now); (err == nil) != ok {
			t.Errorf("CheckSchedule(%q) = %v, want ok=%v", spec, err, ok)
		}
	}
}

func TestPollerRunStops(t *testing.T) {
	t.Parallel()
	in := &intake.Intake{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return now }}
	p := &intake.Poller{Intake: in, Schedule: cron.Every(time.Minute)}
	if err := p.Run(context.Background()); err == nil {
		t.Errorf("Run accepted a one-minute schedule")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Schedule = cron.Every(10 * time.Minute)
	if err := p.Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
}
