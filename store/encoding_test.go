package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// samples are values as an import of the benchmark's calendar writes them
// (a planned step), plus a step as it ends (sent, proved, bounced): what
// docs/store_encoding.md measures.
func samples() (Domain, Cycle, Step, Step, Record) {
	exp := time.Date(2027, 6, 2, 11, 38, 20, 0, time.UTC)
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := Registrant{Name: "Registrant 4711", Email: "owner4711@mail.example", Language: "en"}
	d := Domain{Name: "d1a2b3c4d.example", Mode: scheduler.ModeExpire, Expiry: exp, Registrant: reg, Brand: "brand",
		Cycle: CycleKey("d1a2b3c4d.example", exp), Updated: now}
	c := Cycle{Key: d.Cycle, Domain: d.Name, Expiry: exp, Mode: d.Mode, Registrant: reg, Brand: "brand", InScope: true, Planned: now}
	id := StepID(d.Name, exp, scheduler.Reminder1)
	planned := Step{ID: id, Cycle: c.Key, Domain: d.Name, Expiry: exp, Notice: scheduler.Reminder1,
		Opens: exp.AddDate(0, 0, -35), Deadline: exp.AddDate(0, 0, -26), SendAt: exp.AddDate(0, 0, -35).Add(9 * time.Hour),
		State: scheduler.StatePlanned, Updated: now}
	proved := planned
	sent := planned.SendAt.Add(1500 * time.Millisecond)
	proved.State, proved.MessageID, proved.SHA256 = scheduler.StateProved, "<"+id+"@errpd.example.net>",
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	proved.From, proved.Recipient, proved.EnvelopeFrom = "Example <renewals@example.net>", reg.Email, "b+x@errp.example.net"
	proved.Attempts, proved.SentAt, proved.SMTPReply = 1, sent, "250 2.0.0 Ok: queued as 4Z1"
	proved.Language, proved.OrderID, proved.UploadAttempts = "en", "ORD-1", 1
	proved.UploadedAt, proved.AscioResult = sent.Add(time.Hour), "200 Success"
	proved.Bounce = &Bounce{Kind: BounceSoft, Status: "4.2.2", Diagnostic: "mailbox full", At: sent.Add(2 * time.Hour)}
	r := Record{Seq: 42, At: now, Step: id, To: scheduler.StatePlanned}
	r.Prev = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	r.Hash = r.ComputeHash()
	return d, c, planned, proved, r
}

// TestValuesRoundTrip: every sample reads back equal to what was written,
// and is smaller than its JSON.
func TestValuesRoundTrip(t *testing.T) {
	d, c, planned, proved, r := samples()
	for _, v := range []struct {
		key  []byte
		in   any
		into any
	}{
		{[]byte(d.Name), &d, &Domain{}},
		{idKey(c.Key), &c, &Cycle{}},
		{idKey(planned.ID), &planned, &Step{}},
		{idKey(proved.ID), &proved, &Step{}},
	} {
		raw, err := encodeValue(v.in)
		if err != nil {
			t.Fatal(err)
		}
		if err := decodeValue(v.key, raw, v.into); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.in, v.into) {
			t.Errorf("%T read back as %+v, want %+v", v.in, v.into, v.in)
		}
		js, _ := json.Marshal(v.in)
		if len(raw) >= len(js) {
			t.Errorf("%T: %d bytes, its JSON %d", v.in, len(raw), len(js))
		}
	}
	raw, err := r.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(u64(r.Seq), raw, r.Prev)
	if err != nil || !reflect.DeepEqual(got, r) || got.ComputeHash() != r.Hash {
		t.Errorf("record read back as %+v, %v; want %+v", got, err, r)
	}
}

// BenchmarkValues measures bytes, encode and decode time of each sample
// in the wire format and in schema 1's JSON (docs/store_encoding.md).
func BenchmarkValues(b *testing.B) {
	d, c, planned, proved, r := samples()
	for _, v := range []struct {
		name string
		key  []byte
		in   any
		new  func() any
	}{
		{"Domain", []byte(d.Name), &d, func() any { return &Domain{} }},
		{"Cycle", idKey(c.Key), &c, func() any { return &Cycle{} }},
		{"Step/planned", idKey(planned.ID), &planned, func() any { return &Step{} }},
		{"Step/proved", idKey(proved.ID), &proved, func() any { return &Step{} }},
	} {
		raw, _ := encodeValue(v.in)
		js, _ := json.Marshal(v.in)
		b.Run(v.name+"/wire/encode", func(b *testing.B) {
			for b.Loop() {
				encodeValue(v.in)
			}
			b.ReportMetric(float64(len(raw)), "bytes")
		})
		b.Run(v.name+"/wire/decode", func(b *testing.B) {
			for b.Loop() {
				decodeValue(v.key, raw, v.new())
			}
		})
		b.Run(v.name+"/json/encode", func(b *testing.B) {
			for b.Loop() {
				json.Marshal(v.in)
			}
			b.ReportMetric(float64(len(js)+len(v.key)), "bytes") // schema 1 repeated the key in the value
		})
		b.Run(v.name+"/json/decode", func(b *testing.B) {
			for b.Loop() {
				json.Unmarshal(js, v.new())
			}
		})
	}
	raw, _ := r.marshal()
	r1 := r
	r1.Schema1 = true
	js, _ := json.Marshal(r1)
	b.Run("Record/wire/encode", func(b *testing.B) {
		for b.Loop() {
			r.Hash = r.ComputeHash()
			r.marshal()
		}
		b.ReportMetric(float64(len(raw)), "bytes")
	})
	b.Run("Record/wire/decode", func(b *testing.B) {
		for b.Loop() {
			decodeRecord(u64(r.Seq), raw, r.Prev)
		}
	})
	b.Run("Record/json/encode", func(b *testing.B) {
		for b.Loop() {
			r1.Hash = r1.ComputeHash()
			json.Marshal(r1)
		}
		b.ReportMetric(float64(len(js)), "bytes")
	})
	b.Run("Record/json/decode", func(b *testing.B) {
		for b.Loop() {
			var x Record
			json.Unmarshal(js, &x)
		}
	})
}

// TestDecodeIntoReusedValue: a value decoded into a struct that held
// another record keeps nothing of it, from JSON (schema 1) as from the
// wire format: readers decode every step of a chunk into one Step.
func TestDecodeIntoReusedValue(t *testing.T) {
	old := Step{ID: StepID("old.com", time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC), scheduler.Reminder1), Reason: "stale", SMTPReply: "250 stale", Attempts: 3}
	exp := time.Date(2031, 5, 6, 0, 0, 0, 0, time.UTC)
	fresh := Step{ID: StepID("new.com", exp, scheduler.Reminder2), Cycle: CycleKey("new.com", exp), Domain: "new.com", Expiry: exp, Notice: scheduler.Reminder2, State: scheduler.StatePlanned}
	wire, err := fresh.marshal()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(fresh)
	if err != nil {
		t.Fatal(err)
	}
	for name, kv := range map[string][2][]byte{"wire": {idKey(fresh.ID), wire}, "json": {[]byte(fresh.ID), js}} {
		s := old
		if err := decodeValue(kv[0], kv[1], &s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Reason != "" || s.SMTPReply != "" || s.Attempts != 0 || s.ID != fresh.ID {
			t.Errorf("%s: decoded into a used Step: %+v, want %+v", name, s, fresh)
		}
	}
}
