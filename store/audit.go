package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/errpd/errpd/scheduler"
)

// Record is one entry of the audit trail: a step's state change, written in
// the same transaction as the change itself. Records form a hash chain: each
// hash covers the hash of the one before, so that an edited or removed
// record breaks every hash after it. docs/audit.md says how it is computed.
type Record struct {
	Seq    uint64          `json:"seq"`
	At     time.Time       `json:"at"`
	Step   string          `json:"step"`
	From   scheduler.State `json:"from,omitempty"`
	To     scheduler.State `json:"to"`
	Detail string          `json:"detail,omitempty"`
	Prev   string          `json:"prev"` // hex SHA-256 of the previous record; empty for the first
	Hash   string          `json:"hash"` // hex SHA-256 of this record (ComputeHash)

	// Planned: the record of a new cycle's planning, which names each step
	// planned (one record for them all since schema 2). Audit gives one
	// Record per step planned, each with the whole list here, so that
	// ComputeHash can recompute the hash they share.
	Planned []PlannedStep `json:"-"`

	// Schema1: written by schema 1 and kept as its JSON, so that its hash
	// is the one computed then, over that JSON (never itself in the JSON).
	Schema1 bool `json:"-"`
}

// PlannedStep is one step of a cycle's planning record: its notice, the
// state it was planned in and why (a reason when missed or skipped).
type PlannedStep struct {
	Notice scheduler.Notice
	State  scheduler.State
	Detail string
}

var keyAuditHead = []byte("audit_head")

// ComputeHash is the record's hash. Since schema 2: SHA-256 of a fixed
// label, the sequence number (8 bytes, big-endian), the previous record's
// hash (32 bytes; none for the first) and the record's stored fields
// without its hash (recordBody). A record of schema 1 keeps its own: over
// its JSON with Hash left empty.
func (r Record) ComputeHash() string {
	if r.Schema1 {
		r.Hash = ""
		raw, _ := json.Marshal(r) // a struct of strings, numbers and times cannot fail
		sum := sha256.Sum256(raw)
		return hex.EncodeToString(sum[:])
	}
	if len(r.Planned) > 0 && strings.Count(r.Step, "/") == 2 {
		// One step of a planning record, as Audit gives it: hashed as the
		// record, with what this one says of its step.
		planned := append([]PlannedStep(nil), r.Planned...)
		for i, p := range planned {
			if strings.HasSuffix(r.Step, "/"+string(p.Notice)) {
				planned[i].State, planned[i].Detail = r.To, r.Detail
			}
		}
		r.Planned = planned
	}
	prev, _ := hex.DecodeString(r.Prev) // a Prev that is not hex hashes as none, and so does not verify
	h := sha256.New()
	h.Write([]byte(recordLabel))
	h.Write(u64(r.Seq))
	h.Write(prev)
	h.Write(r.body())
	return hex.EncodeToString(h.Sum(nil))
}

const recordLabel = "errpd audit record v2\x00"

// Fields of a record's value: its hash (32 bytes), then its body.
const (
	rHash, rAt, rStep, rFrom, rTo, rDetail, rPlanned = 1, 2, 4, 5, 6, 7, 8
)

var noticeNames = func() []string {
	out := make([]string, len(noticeCodes))
	for i, n := range noticeCodes {
		out[i] = string(n)
	}
	return out
}()

// body is a record's stored fields but its hash, in the order written:
// what its hash covers. The step is its key (keys.go), a cycle's or a
// step's; the states one byte each.
func (r Record) body() []byte {
	var e enc
	e.time(rAt, r.At)
	if len(r.Planned) > 0 {
		// A planning record: the cycle, then each step planned.
		e.bytes(rStep, idKey(planningCycle(r.Step)))
		for _, p := range r.Planned {
			e.msg(rPlanned, func(e *enc) {
				e.enum(1, noticeNames, string(p.Notice))
				e.enum(2, stateCodes, string(p.State))
				e.str(3, p.Detail)
			})
		}
		return e.b
	}
	e.bytes(rStep, idKey(r.Step))
	e.enum(rFrom, stateCodes, string(r.From))
	e.enum(rTo, stateCodes, string(r.To))
	e.str(rDetail, r.Detail)
	return e.b
}

func (r Record) marshal() ([]byte, error) {
	sum, err := hex.DecodeString(r.Hash)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("audit record %d: hash %q is not a SHA-256", r.Seq, r.Hash)
	}
	var e enc
	e.bytes(rHash, sum)
	return append(e.b, r.body()...), nil
}

// decodeRecord reads the record at key k; prev is the previous record's
// hash (hex), which a schema-2 record does not repeat.
func decodeRecord(k, raw []byte, prev string) (Record, error) {
	var r Record
	if len(k) != 8 {
		return r, &ValueError{Bucket: "audit", Key: fmt.Sprintf("%x", k), Err: fmt.Errorf("key is not a sequence number")}
	}
	seq := binary.BigEndian.Uint64(k)
	wrap := func(err error) error {
		return &ValueError{Bucket: "audit", Key: fmt.Sprint(seq), Err: err}
	}
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &r); err != nil {
			return r, wrap(err)
		}
		r.Schema1 = true
		return r, nil
	}
	r.Seq, r.Prev = seq, prev
	err := walk(raw, func(f field) (err error) {
		switch f.num {
		case rHash:
			var b []byte
			b, err = f.msg()
			r.Hash = hex.EncodeToString(b)
		case rAt:
			err = f.seconds(&r.At)
		case rAt + 1:
			err = f.nanos(&r.At)
		case rStep:
			var b []byte
			if b, err = f.msg(); err == nil {
				var ok bool
				if r.Step, ok = keyID(b); !ok {
					err = fmt.Errorf("step key %x is no id", b)
				}
			}
		case rFrom:
			var s string
			s, err = f.enum(stateCodes)
			r.From = scheduler.State(s)
		case rTo:
			var s string
			s, err = f.enum(stateCodes)
			r.To = scheduler.State(s)
		case rDetail:
			r.Detail, err = f.str()
		case rPlanned:
			var p PlannedStep
			err = sub(f, func(g field) (err error) {
				var v string
				switch g.num {
				case 1:
					v, err = g.enum(noticeNames)
					p.Notice = scheduler.Notice(v)
				case 2:
					v, err = g.enum(stateCodes)
					p.State = scheduler.State(v)
				case 3:
					p.Detail, err = g.str()
				}
				return err
			})
			r.Planned = append(r.Planned, p)
		}
		return err
	})
	if err != nil {
		return r, wrap(err)
	}
	return r, nil
}

func (t *Tx) appendAudit(r Record) error {
	b := t.tx.Bucket(bucketAudit) // filled, not split in half: fill.go
	// The counter is kept in step for Sequence (retention's purged index
	// reads it).
	seq := lastAuditSeq(b) + 1
	if err := b.SetSequence(seq); err != nil {
		return err
	}
	meta := t.tx.Bucket(bucketMeta)
	r.Seq, r.At, r.Schema1 = seq, t.now, false
	r.Prev = string(meta.Get(keyAuditHead))
	r.Hash = r.ComputeHash()
	if err := meta.Put(keyAuditHead, []byte(r.Hash)); err != nil {
		return err
	}
	if err := keepFlagIndex(meta, r.Prev, r.Hash); err != nil {
		return err
	}
	raw, err := r.marshal()
	if err != nil {
		return err
	}
	return b.Put(u64(seq), raw)
}

// lastAuditSeq is the number of the audit trail's last record: the
// bucket's counter, or its last key when that is higher (a file written
// record by record by the schema upgrade has its records but not that
// counter).
func lastAuditSeq(b *bolt.Bucket) uint64 {
	seq := b.Sequence()
	if k, _ := b.Cursor().Last(); len(k) == 8 {
		seq = max(seq, bytesToU64(k))
	}
	return seq
}

// Audit calls fn for every audit record from sequence number from on, in order.
func (t *Tx) Audit(from uint64, fn func(Record) error) error {
	b := t.tx.Bucket(bucketAudit)
	c := b.Cursor()
	prev := ""
	if from > 1 {
		if k, raw := c.Seek(u64(from - 1)); k != nil && bytesToU64(k) == from-1 {
			r, err := decodeRecord(k, raw, "")
			if err != nil {
				return err
			}
			prev = r.Hash
		}
	}
	for k, raw := c.Seek(u64(from)); k != nil; k, raw = c.Next() {
		r, err := decodeRecord(k, raw, prev)
		if err != nil {
			return err
		}
		prev = r.Hash
		if err := expand(r, fn); err != nil {
			return err
		}
	}
	return nil
}

// expand calls fn with a record, or with one record per step of a
// planning record, as schema 1 wrote them (their Seq, At and Hash shared).
func expand(r Record, fn func(Record) error) error {
	if len(r.Planned) == 0 {
		return fn(r)
	}
	for _, p := range r.Planned {
		one := r
		one.Step, one.From, one.To, one.Detail = r.Step+"/"+string(p.Notice), New, p.State, p.Detail
		if err := fn(one); err != nil {
			return err
		}
	}
	return nil
}

// planningCycle is the cycle of a planning record's Step: the cycle key
// itself, or a step id as Audit gives it.
func planningCycle(step string) string {
	if strings.Count(step, "/") == 2 {
		return step[:strings.LastIndexByte(step, '/')]
	}
	return step
}

// planning collects the audit entries of a new cycle's steps while
// planCycle writes them, for one record (flushPlanning).
type planning struct {
	cycle string
	steps []PlannedStep
}

// flushPlanning appends the record of a new cycle's planning.
func (t *Tx) flushPlanning() error {
	p := t.planning
	t.planning = nil
	if p == nil || len(p.steps) == 0 {
		return nil
	}
	return t.appendAudit(Record{Step: p.cycle, Planned: p.steps})
}

func bytesToU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
