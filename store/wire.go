package store

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The helpers below write and read the protobuf wire format field by field
// (docs/store_encoding.md): a field absent costs nothing, an unknown one
// is skipped, so a later errpd can add fields without a new schema.

// enc appends fields to a value.
type enc struct{ b []byte }

func (e *enc) str(n protowire.Number, s string) {
	if s != "" {
		e.strAlways(n, s)
	}
}

// strAlways writes s even when empty: for a field whose absence means
// "derive it from the key".
func (e *enc) strAlways(n protowire.Number, s string) {
	e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
	e.b = protowire.AppendString(e.b, s)
}

func (e *enc) bytes(n protowire.Number, v []byte) {
	if len(v) > 0 {
		e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
		e.b = protowire.AppendBytes(e.b, v)
	}
}

func (e *enc) uint(n protowire.Number, v uint64) {
	if v != 0 {
		e.b = protowire.AppendTag(e.b, n, protowire.VarintType)
		e.b = protowire.AppendVarint(e.b, v)
	}
}

func (e *enc) int(n protowire.Number, v int) { e.sint(n, int64(v)) }

func (e *enc) sint(n protowire.Number, v int64) {
	if v != 0 {
		e.uint(n, protowire.EncodeZigZag(v))
	}
}

func (e *enc) bool(n protowire.Number, v bool) {
	if v {
		e.uint(n, 1)
	}
}

// time writes t as seconds since 1970 in field n and, only when not
// whole, its nanoseconds in field n+1. The zero time is absent. Times are
// read back in UTC: the store keeps every time in UTC.
func (e *enc) time(n protowire.Number, t time.Time) {
	if t.IsZero() {
		return
	}
	e.b = protowire.AppendTag(e.b, n, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, protowire.EncodeZigZag(t.Unix()))
	e.uint(n+1, uint64(t.Nanosecond()))
}

// msg writes a nested value, when fill wrote anything.
func (e *enc) msg(n protowire.Number, fill func(*enc)) {
	var sub enc
	fill(&sub)
	e.bytes(n, sub.b)
}

// field is one field read from a value.
type field struct {
	num protowire.Number
	typ protowire.Type
	x   uint64 // varint
	v   []byte // bytes (aliases the value: copy before keeping)
}

var errWireType = errors.New("wrong wire type")

func (f field) str() (string, error) {
	if f.typ != protowire.BytesType {
		return "", fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return string(f.v), nil
}

func (f field) uint() (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return f.x, nil
}

func (f field) int() (int, error) {
	u, err := f.uint()
	return int(protowire.DecodeZigZag(u)), err
}

func (f field) bool() (bool, error) {
	u, err := f.uint()
	return u != 0, err
}

func (f field) msg() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return f.v, nil
}

// seconds sets t to the seconds of a time field (see enc.time).
func (f field) seconds(t *time.Time) error {
	u, err := f.uint()
	if err != nil {
		return err
	}
	*t = time.Unix(protowire.DecodeZigZag(u), 0).UTC()
	return nil
}

// nanos adds the nanoseconds of a time field to t, read before it.
func (f field) nanos(t *time.Time) error {
	u, err := f.uint()
	if err != nil {
		return err
	}
	if t.IsZero() || u >= uint64(time.Second) {
		return fmt.Errorf("field %d: nanoseconds %d without seconds or out of range", f.num, u)
	}
	*t = t.Add(time.Duration(u))
	return nil
}

// walk calls fn for every field of b, skipping none: fn ignores the
// numbers it does not know (a field a later errpd added).
func walk(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// hasField reports whether a value has a field num, walking it without
// decoding it. A schema-1 JSON value, and one that does not parse, say
// yes: their caller decodes them whole, for the value or its error.
func hasField(raw []byte, num protowire.Number) bool {
	if len(raw) > 0 && raw[0] == '{' {
		return true
	}
	found := false
	err := walk(raw, func(f field) error {
		found = found || f.num == num
		return nil
	})
	return found || err != nil
}
