package lifecycle_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

var (
	expA = time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	expB = expA.AddDate(1, 0, 0)
	ann  = store.Registrant{Name: "Ann", Email: "ann@example.org"}
	bob  = store.Registrant{Name: "Bob", Email: "bob@example.org"}
)

// TestDecide holds every status, event and mode switch against a stored
// domain, before and after its expiry.
func TestDecide(t *testing.T) {
	t.Parallel()
	renewA := store.Domain{Name: "a.example", Mode: scheduler.ModeRenew, Expiry: expA, Registrant: ann, OrderID: "O1",
		Cycle: store.CycleKey("a.example", expA)}
	expireA := renewA
	expireA.Mode = scheduler.ModeExpire
	gone := renewA
	gone.Stopped = "transferred away"
	cycA := store.Cycle{Key: renewA.Cycle, Domain: "a.example", Expiry: expA, Mode: scheduler.ModeRenew, Registrant: ann}
	before, after := expA.Add(-10*scheduler.Day), expA.Add(3*time.Hour)
	row := func(st lifecycle.Status, f func(*store.Domain)) lifecycle.Event {
		d := store.Domain{Name: "a.example", Mode: scheduler.ModeRenew, Expiry: expA, Registrant: ann}
		if f != nil {
			f(&d)
		}
		return lifecycle.FromCalendar(st, d, "cal.csv:2")
	}
	withBob := func(d *store.Domain) { d.Registrant = bob }
	toB := func(d *store.Domain) { d.Expiry = expB }
	expire := func(d *store.Domain) { d.Mode = scheduler.ModeExpire }
	plan := func(d store.Domain, reason string, freeze bool, ev *store.Evidence) lifecycle.Decision {
		return lifecycle.Decision{Action: lifecycle.Plan, Domain: d, Reason: reason, Freeze: freeze, Evidence: ev}
	}
	with := func(d store.Domain, f func(*store.Domain)) store.Domain { f(&d); return d }
	ascioFailed := lifecycle.Event{Kind: lifecycle.NotRenewed, Domain: store.Domain{Name: "a.example", Expiry: expA},
		Reason: "AutoRenew order O1 Failed on 2027-03-01"}
	cases := []struct {
		name   string
		stored store.Domain
		found  bool
		ev     lifecycle.Event
		now    time.Time
		want   lifecycle.Decision
	}{
		{"new domain", store.Domain{}, false, row(lifecycle.Active, nil), before,
			plan(store.Domain{Name: "a.example", Mode: scheduler.ModeRenew, Expiry: expA, Registrant: ann}, "", false, nil)},
		{"active, same facts, before expiry", renewA, true, row("", nil), before, plan(renewA, "", false, nil)},
		{"holder change before expiry: follows the new holder", renewA, true, row(lifecycle.Active, withBob), before,
			plan(with(renewA, withBob), "", false, nil)},
		{"holder change after expiry: RAE frozen", renewA, true, row(lifecycle.Active, withBob), after,
			plan(with(renewA, withBob), "", true, nil)},
		{"renewed: new expiry, new cycle, no freeze", renewA, true, row(lifecycle.Renewed, toB), after,
			plan(with(renewA, func(d *store.Domain) { d.Expiry, d.OrderID = expB, "" }), "renewed (calendar cal.csv:2)", false, nil)},
		{"expired after expiry: evidence, frozen", renewA, true, row(lifecycle.Expired, nil), after,
			plan(renewA, "calendar status expired (cal.csv:2)", true,
				&store.Evidence{Event: "calendar status expired (cal.csv:2)", At: after})},
		{"expired before expiry: evidence, not frozen", renewA, true, row(lifecycle.Expired, nil), before,
			plan(renewA, "calendar status expired (cal.csv:2)", false,
				&store.Evidence{Event: "calendar status expired (cal.csv:2)", At: before})},
		{"expired in expire mode: owed anyway, no evidence", expireA, true, row(lifecycle.Expired, expire), after,
			plan(expireA, "calendar status expired (cal.csv:2)", true, nil)},
		{"expired about an older expiry: ignored", with(renewA, func(d *store.Domain) { d.Expiry = expB }), true,
			row(lifecycle.Expired, nil), after, lifecycle.Decision{Action: lifecycle.Ignore,
				Reason: "not renewed at 2027-03-01T12:00:00Z, but the domain now expires 2028-03-01T12:00:00Z"}},
		{"failed AutoRenew after expiry", renewA, true, ascioFailed, after,
			plan(renewA, ascioFailed.Reason, true, &store.Evidence{Event: ascioFailed.Reason, At: after})},
		{"failed AutoRenew, but Ascio shows a later expiry: renewed after all, no evidence", renewA, true,
			lifecycle.Event{Kind: lifecycle.NotRenewed, Domain: store.Domain{Name: "a.example", Expiry: expB, OrderID: "O1"}, Reason: "AutoRenew order O1 Failed"}, after,
			plan(with(renewA, func(d *store.Domain) { d.Expiry, d.OrderID = expB, "" }), "AutoRenew order O1 Failed, but the domain now expires 2028-03-01T12:00:00Z", false, nil)},
		{"failed AutoRenew of a domain not yet stored", store.Domain{}, false, ascioFailed, after,
			plan(store.Domain{Name: "a.example", Mode: scheduler.ModeRenew, Expiry: expA}, ascioFailed.Reason, true, &store.Evidence{Event: ascioFailed.Reason, At: after})},
		{"failed AutoRenew of a gone domain", gone, true, ascioFailed, after,
			lifecycle.Decision{Action: lifecycle.Ignore, Reason: "gone: transferred away"}},
		{"transferred", renewA, true, row(lifecycle.Transferred, nil), before,
			lifecycle.Decision{Action: lifecycle.Close, Reason: "transferred away (calendar cal.csv:2)"}},
		{"deleted after expiry", renewA, true, row(lifecycle.Deleted, nil), after,
			lifecycle.Decision{Action: lifecycle.Close, Reason: "deleted (calendar cal.csv:2)"}},
		{"transferred, already gone", gone, true, row(lifecycle.Transferred, nil), after,
			lifecycle.Decision{Action: lifecycle.Ignore, Reason: "already gone: transferred away"}},
		{"transferred, never stored", store.Domain{}, false, row(lifecycle.Transferred, nil), after,
			lifecycle.Decision{Action: lifecycle.Ignore, Reason: "already gone: not stored"}},
		{"not in a full sync", renewA, true, lifecycle.NotInCalendar("a.example", "cal.csv"), before,
			lifecycle.Decision{Action: lifecycle.Close, Reason: "not in calendar, full sync of cal.csv"}},
		{"restored: new expiry, back from gone", gone, true, row(lifecycle.Restored, toB), after,
			plan(with(renewA, func(d *store.Domain) { d.Expiry, d.OrderID = expB, "" }), "restored (calendar cal.csv:2)", false, nil)},
		{"mode switch before expiry", renewA, true, row(lifecycle.Active, expire), before, plan(expireA, "", false, nil)},
		{"mode switch after expiry: frozen", renewA, true, row(lifecycle.Active, expire), after, plan(expireA, "", true, nil)},
		{"Ascio facts keep what they do not say", renewA, true,
			lifecycle.Event{Kind: lifecycle.Facts, Domain: store.Domain{Name: "a.example", Expiry: expA}, Reason: "OwnerChange"},
			before, plan(renewA, "OwnerChange", false, nil)},
		{"back to A after B (A, B, A) after A's expiry: the cycle is A's again, frozen",
			with(renewA, func(d *store.Domain) { d.Expiry, d.Cycle = expB, store.CycleKey("a.example", expB) }), true,
			row(lifecycle.Active, nil), after, plan(with(renewA, func(d *store.Domain) { d.Cycle = store.CycleKey("a.example", expB); d.OrderID = "" }), "", true, nil)},
		{"new domain after its expiry: its holder is the RAE", store.Domain{}, false, row(lifecycle.Active, nil), after,
			plan(store.Domain{Name: "a.example", Mode: scheduler.ModeRenew, Expiry: expA, Registrant: ann}, "", true, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c store.Cycle
			if tc.found && tc.stored.Cycle != "" {
				c = cycA
				c.Key, c.Expiry, c.Mode = tc.stored.Cycle, tc.stored.Expiry, tc.stored.Mode
			}
			got := lifecycle.Decide(tc.stored, tc.found, c, tc.ev, tc.now)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]lifecycle.Status{"": lifecycle.Active, " Expired ": lifecycle.Expired,
		"renewed": lifecycle.Renewed, "TRANSFERRED": lifecycle.Transferred, "deleted": lifecycle.Deleted, "restored": lifecycle.Restored} {
		if got, err := lifecycle.ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := lifecycle.ParseStatus("suspended"); err == nil {
		t.Error("ParseStatus(suspended) gave no error")
	}
}
