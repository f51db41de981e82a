package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPlanWindows(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	tests := []struct {
		name   string
		expiry string
		mode   Mode
		want   [][3]string // notice, opens, deadline
	}{
		{"renew, midnight", "2026-12-31T00:00:00Z", ModeRenew, [][3]string{
			{"reminder1", "2026-11-26T00:00:00Z", "2026-12-05T00:00:00Z"},
			{"reminder2", "2026-12-24T00:00:00Z", "2026-12-27T00:00:00Z"},
		}},
		{"expire, one second before midnight", "2026-12-31T23:59:59Z", ModeExpire, [][3]string{
			{"reminder1", "2026-11-26T23:59:59Z", "2026-12-05T23:59:59Z"},
			{"reminder2", "2026-12-24T23:59:59Z", "2026-12-27T23:59:59Z"},
			{"reminder3", "2026-12-31T23:59:59Z", "2027-01-05T23:59:59Z"},
			{"suspension", "2027-01-08T23:59:59Z", "2027-01-09T23:59:59Z"},
		}},
		{"leap day expiry", "2028-02-29T12:00:00Z", ModeExpire, [][3]string{
			{"reminder1", "2028-01-25T12:00:00Z", "2028-02-03T12:00:00Z"},
			{"reminder2", "2028-02-22T12:00:00Z", "2028-02-25T12:00:00Z"},
			{"reminder3", "2028-02-29T12:00:00Z", "2028-03-05T12:00:00Z"},
			{"suspension", "2028-03-08T12:00:00Z", "2028-03-09T12:00:00Z"},
		}},
		{"windows across a leap day", "2028-03-03T00:00:00Z", ModeRenew, [][3]string{
			{"reminder1", "2028-01-28T00:00:00Z", "2028-02-06T00:00:00Z"},
			{"reminder2", "2028-02-25T00:00:00Z", "2028-02-28T00:00:00Z"},
		}},
		{"month end, no leap year", "2027-03-01T00:00:00Z", ModeExpire, [][3]string{
			{"reminder1", "2027-01-25T00:00:00Z", "2027-02-03T00:00:00Z"},
			{"reminder2", "2027-02-22T00:00:00Z", "2027-02-25T00:00:00Z"},
			{"reminder3", "2027-03-01T00:00:00Z", "2027-03-06T00:00:00Z"},
			{"suspension", "2027-03-09T00:00:00Z", "2027-03-10T00:00:00Z"},
		}},
		{"expiry given in another zone is counted in UTC", "2027-01-01T01:30:00+02:00", ModeRenew, [][3]string{
			{"reminder1", "2026-11-26T23:30:00Z", "2026-12-05T23:30:00Z"},
			{"reminder2", "2026-12-24T23:30:00Z", "2026-12-27T23:30:00Z"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			exp := mustTime(t, tc.expiry)
			// Judged long before: everything planned, sent when it opens.
			steps := Plan(exp, tc.mode, p, exp.Add(-100*Day))
			var got [][3]string
			for _, s := range steps {
				got = append(got, [3]string{string(s.Notice), s.Opens.Format(time.RFC3339), s.Deadline.Format(time.RFC3339)})
				if s.State != StatePlanned || !s.SendAt.Equal(s.Opens) {
					t.Errorf("%s: state %s send_at %s, want planned at opening", s.Notice, s.State, s.SendAt)
				}
				if s.Opens.Location() != time.UTC || s.Deadline.Location() != time.UTC {
					t.Errorf("%s: times not in UTC", s.Notice)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("windows (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlanNow judges one expire cycle at instants before, at and after every
// window edge.
func TestPlanNow(t *testing.T) {
	t.Parallel()
	exp := mustTime(t, "2027-01-31T00:00:00Z")
	p := DefaultPolicy()
	at := func(days int, d time.Duration) time.Time { return exp.Add(time.Duration(days)*Day + d) }
	tests := []struct {
		now  time.Time
		want []State // reminder1, reminder2, reminder3, suspension
	}{
		{at(-36, 0), []State{StatePlanned, StatePlanned, StatePlanned, StatePlanned}},
		{at(-35, -time.Second), []State{StatePlanned, StatePlanned, StatePlanned, StatePlanned}},
		{at(-35, 0), []State{StateDue, StatePlanned, StatePlanned, StatePlanned}},
		{at(-30, 0), []State{StateDue, StatePlanned, StatePlanned, StatePlanned}},
		{at(-26, -time.Second), []State{StateDue, StatePlanned, StatePlanned, StatePlanned}},
		{at(-26, 0), []State{StateMissed, StatePlanned, StatePlanned, StatePlanned}},
		{at(-7, 0), []State{StateMissed, StateDue, StatePlanned, StatePlanned}},
		{at(-4, -time.Second), []State{StateMissed, StateDue, StatePlanned, StatePlanned}},
		{at(-4, 0), []State{StateMissed, StateMissed, StatePlanned, StatePlanned}},
		{at(0, -time.Second), []State{StateMissed, StateMissed, StatePlanned, StatePlanned}},
		{at(0, 0), []State{StateMissed, StateMissed, StateDue, StatePlanned}},
		{at(5, -time.Second), []State{StateMissed, StateMissed, StateDue, StatePlanned}},
		{at(5, 0), []State{StateMissed, StateMissed, StateMissed, StatePlanned}},
		{at(8, 0), []State{StateMissed, StateMissed, StateMissed, StateDue}},
		{at(9, 0), []State{StateMissed, StateMissed, StateMissed, StateMissed}},
	}
	for _, tc := range tests {
		steps := Plan(exp, ModeExpire, p, tc.now)
		var got []State
		for _, s := range steps {
			got = append(got, s.State)
			switch s.State {
			case StateDue:
				if !s.SendAt.Equal(tc.now) {
					t.Errorf("now %s: %s due but send_at %s", tc.now, s.Notice, s.SendAt)
				}
			case StateMissed:
				if !s.SendAt.IsZero() {
					t.Errorf("now %s: %s missed but has send_at %s", tc.now, s.Notice, s.SendAt)
				}
			}
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("now %s (-want +got):\n%s", tc.now, diff)
		}
	}
}

func TestPlanSendHour(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy()
	p.SendHour, p.Zone = 9, berlin

	tests := []struct {
		name, expiry, now string
		notice            Notice
		want              string
	}{
		// Window opens 2026-11-26 00:00Z = 01:00 Berlin: first 09:00 is that day.
		{"winter", "2026-12-31T00:00:00Z", "2026-10-01T00:00:00Z", Reminder1, "2026-11-26T08:00:00Z"},
		// Opens 10:00 Berlin: the next 09:00 is the following day.
		{"after the hour", "2026-12-31T09:00:00Z", "2026-10-01T00:00:00Z", Reminder1, "2026-11-27T08:00:00Z"},
		// Spring change (2027-03-28): reminder2 opens 2027-03-27 12:00Z; next 09:00 Berlin is 2027-03-28 07:00Z (CEST).
		{"spring forward", "2027-04-03T12:00:00Z", "2027-01-01T00:00:00Z", Reminder2, "2027-03-28T07:00:00Z"},
		// Autumn change (2026-10-25): reminder2 opens 2026-10-24 12:00Z; next 09:00 is 2026-10-25 08:00Z (CET).
		{"fall back", "2026-10-31T12:00:00Z", "2026-09-01T00:00:00Z", Reminder2, "2026-10-25T08:00:00Z"},
		// Inside the window already: the next 09:00 after now.
		{"now inside the window", "2026-12-31T00:00:00Z", "2026-11-30T12:00:00Z", Reminder1, "2026-12-01T08:00:00Z"},
		// The suspension window is one day long; if 09:00 does not fall in
		// it after now, send at now rather than miss.
		{"no send hour before the deadline", "2027-01-01T06:30:00Z", "2027-01-09T08:31:00Z", Suspension, "2027-01-09T08:31:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got Step
			for _, s := range Plan(mustTime(t, tc.expiry), ModeExpire, p, mustTime(t, tc.now)) {
				if s.Notice == tc.notice {
					got = s
				}
			}
			if got.SendAt.Format(time.RFC3339) != tc.want {
				t.Errorf("send_at %s, want %s (opens %s, deadline %s)", got.SendAt.Format(time.RFC3339), tc.want, got.Opens, got.Deadline)
			}
		})
	}
}

// TestSendHourEveryDay walks a send hour across both DST changes of a year
// and checks that consecutive days give consecutive local dates at the same
// hour: no day skipped, none doubled.
func TestSendHourEveryDay(t *testing.T) {
	t.Parallel()
	for _, zoneName := range []string{"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"} {
		zone, err := time.LoadLocation(zoneName)
		if err != nil {
			t.Fatal(err)
		}
		for _, hour := range []int{0, 2, 9, 23} {
			p := Policy{SendHour: hour, Zone: zone}
			start := mustTime(t, "2026-01-01T12:00:00Z")
			prev := p.sendTime(start, start.Add(400*Day))
			for d := 1; d < 366; d++ {
				from := start.Add(time.Duration(d) * Day)
				got := p.sendTime(from, from.Add(400*Day))
				if got.Before(from) {
					t.Fatalf("%s %02d: send %s before %s", zoneName, hour, got, from)
				}
				gy, gm, gd := got.In(zone).Date()
				py, pm, pd := prev.In(zone).Date()
				if time.Date(gy, gm, gd, 0, 0, 0, 0, time.UTC).Sub(time.Date(py, pm, pd, 0, 0, 0, 0, time.UTC)) != Day {
					t.Fatalf("%s %02d: %s follows %s: a day skipped or doubled", zoneName, hour, got.In(zone), prev.In(zone))
				}
				prev = got
			}
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatalf("default policy: %v", err)
	}
	p.Windows[0].DeadlineDays = p.Windows[0].OpensDays
	if err := p.Validate(); err == nil {
		t.Error("a window whose deadline is not after its opening was accepted")
	}
	p = DefaultPolicy()
	p.SendHour = 24
	if err := p.Validate(); err == nil {
		t.Error("send hour 24 accepted")
	}
}

// FuzzPlan checks the planner's invariants for any expiry, now and send hour.
func FuzzPlan(f *testing.F) {
	f.Add(int64(1798675200), int64(1795000000), int8(-1), true)
	f.Add(int64(1835395200), int64(1835395199), int8(2), false)
	f.Add(int64(1774576800), int64(1774000000), int8(9), true)
	zone, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, expSec, nowSec int64, hour int8, expire bool) {
		const span = 1 << 33 // about 270 years around 1970, far beyond any expiry
		if expSec < -span || expSec > span || nowSec < -span || nowSec > span {
			t.Skip()
		}
		p := DefaultPolicy()
		p.SendHour, p.Zone = int(hour)%24, zone
		if hour < 0 {
			p.SendHour = -1
		}
		mode := ModeRenew
		if expire {
			mode = ModeExpire
		}
		exp, now := time.Unix(expSec, 0), time.Unix(nowSec, 0)
		steps := Plan(exp, mode, p, now)
		if want := map[Mode]int{ModeRenew: 2, ModeExpire: 4}[mode]; len(steps) != want {
			t.Fatalf("%d steps for %s, want %d", len(steps), mode, want)
		}
		for i, s := range steps {
			if i > 0 && !steps[i-1].Opens.Before(s.Opens) {
				t.Errorf("steps out of order: %s opens %s before %s opens %s", s.Notice, s.Opens, steps[i-1].Notice, steps[i-1].Opens)
			}
			switch s.State {
			case StateMissed:
				if now.Before(s.Deadline) {
					t.Errorf("%s missed before its deadline", s.Notice)
				}
			case StatePlanned, StateDue:
				if s.SendAt.Before(s.Opens) || !s.SendAt.Before(s.Deadline) || s.SendAt.Before(now) {
					t.Errorf("%s %s: send_at %s outside [max(opens %s, now %s), deadline %s)", s.Notice, s.State, s.SendAt, s.Opens, now, s.Deadline)
				}
				if (s.State == StateDue) == now.Before(s.Opens) {
					t.Errorf("%s is %s with opens %s and now %s", s.Notice, s.State, s.Opens, now)
				}
			default:
				t.Errorf("%s: planner returned state %s", s.Notice, s.State)
			}
		}
	})
}
