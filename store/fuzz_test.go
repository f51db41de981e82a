package store

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// FuzzDecodeValue reads arbitrary bytes under an arbitrary key as each
// stored type: a value that does not decode is an error, never a panic;
// one that decodes encodes again to bytes that read back to the same
// bytes (the wire format round trip; schema 1's JSON only decodes). The seed corpus is in
// testdata/fuzz/FuzzDecodeValue; f.Add adds the samples' own values.
func FuzzDecodeValue(f *testing.F) {
	d, c, planned, proved, r := samples()
	for _, v := range []struct {
		k []byte
		v any
	}{{[]byte(d.Name), d}, {idKey(c.Key), c}, {idKey(planned.ID), planned}, {idKey(proved.ID), proved}} {
		raw, _ := encodeValue(v.v)
		f.Add(v.k, raw)
		js, _ := json.Marshal(v.v)
		f.Add(v.k, js)
	}
	raw, _ := r.marshal()
	f.Add(u64(r.Seq), raw)
	plan := Record{Seq: 7, At: r.At, Step: c.Key, Planned: []PlannedStep{{Notice: scheduler.Reminder1, State: scheduler.StatePlanned},
		{Notice: scheduler.Reminder2, State: scheduler.StateMissed, Detail: "deadline passed before the notice was sent"}}}
	plan.Hash = plan.ComputeHash()
	raw, _ = plan.marshal()
	f.Add(u64(plan.Seq), raw)
	m, _ := PrepareMessage([]byte("Subject: x\r\n\r\nbody\r\n"))
	f.Add(idKey(planned.ID), m.value)
	f.Add(idKey(StepID("a.example", time.Unix(0, 0), scheduler.Suspension)), []byte{0x0a, 0xff})

	f.Fuzz(func(t *testing.T, k, v []byte) {
		keyID(k)
		for _, into := range []func() any{
			func() any { return &Domain{} }, func() any { return &Cycle{} },
			func() any { return &Step{} }, func() any { return &Message{} },
		} {
			x := into()
			if err := decodeValue(k, v, x); err != nil || (len(v) > 0 && v[0] == '{') {
				continue // schema 1's JSON ignores the key; TestUpgradeV1EveryBucket converts it
			}
			once, err := encodeValue(x)
			if err != nil {
				continue // a JSON value can say what the wire format refuses (a Message's bad hash)
			}
			y := into()
			if err := decodeValue(k, once, y); err != nil {
				t.Fatalf("%T: %x encoded from %x does not decode: %v", x, once, v, err)
			}
			twice, err := encodeValue(y)
			if err != nil || !bytes.Equal(once, twice) {
				t.Fatalf("%T: round trip %x -> %x (%v)", x, once, twice, err)
			}
		}
		if r, err := decodeRecord(k, v, ""); err == nil {
			if once, err := r.marshal(); err == nil {
				r2, err := decodeRecord(k, once, "")
				if err != nil {
					t.Fatalf("record %x does not decode: %v", once, err)
				}
				if twice, _ := r2.marshal(); !bytes.Equal(once, twice) {
					t.Fatalf("record round trip %x -> %x", once, twice)
				}
			}
		}
	})
}
