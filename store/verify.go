package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Break is the first place where the store's evidence does not hold
// together: an audit record whose hash or link is wrong, a gap in the
// sequence, or a stored message whose bytes do not match their hash.
type Break struct {
	Seq     uint64 // the audit record at fault; 0 for a message
	Step    string // the step at fault, when known
	Problem string
}

func (b *Break) Error() string {
	switch {
	case b.Seq != 0 && b.Step != "":
		return fmt.Sprintf("audit record %d (step %s): %s", b.Seq, b.Step, b.Problem)
	case b.Seq != 0:
		return fmt.Sprintf("audit record %d: %s", b.Seq, b.Problem)
	}
	return fmt.Sprintf("message of step %s: %s", b.Step, b.Problem)
}

// Head is the audit chain's last record as of some moment: what a partner
// anchors elsewhere (a ticket, a mail, a timestamping service) so that the
// chain up to it cannot be rewritten unnoticed.
type Head struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"at"`
}

// Verified is what Verify checked.
type Verified struct {
	Records  uint64 // audit records walked
	Messages int    // stored messages whose bytes were hashed
	Purged   int    // messages purged by retention, each backed by its audit record
	Head     Head
	Pages    int // pages in use, every one read and checked by bbolt's tx.Check
}

// verifyChunk bounds the work of one read transaction, so that verifying a
// large store does not pin old pages while the daemon writes.
const verifyChunk = 10000

// Verify walks the audit chain from its first record (sequence contiguous
// from 1, each Prev the previous Hash, each Hash the record's own, the last
// one the head kept in meta as of that read) and every stored message (its
// bytes hash to the SHA-256 stored with them and to the step's), and checks
// that a step that was given a message still has it, unless retention purged
// it and said so in the chain. It returns the first *Break found, if any.
//
// Before all that it checks the file's structure: every key and value of
// every bucket is read (a page that does not hold together is a
// *DamagedError, not a crash), then bbolt's own check (tx.Check) looks for
// pages unreachable, freed twice, or out of order.
func (db *DB) Verify() (Verified, error) {
	var v Verified
	if err := db.verifyStructure(&v); err != nil {
		return v, err
	}
	if err := db.verifyChain(&v); err != nil {
		return v, err
	}
	return v, db.verifyMessages(&v)
}

func (db *DB) verifyChain(v *Verified) error {
	next, prev := uint64(1), ""
	for {
		n := 0
		var head string
		err := db.View(func(t *Tx) error {
			b := t.tx.Bucket(bucketAudit)
			head = string(t.tx.Bucket(bucketMeta).Get(keyAuditHead))
			c := b.Cursor()
			for k, raw := c.Seek(u64(next)); k != nil && n < verifyChunk; k, raw = c.Next() {
				n++
				if len(k) != 8 {
					return &Break{Seq: next, Problem: fmt.Sprintf("malformed key %x", k)}
				}
				r, err := decodeRecord(k, raw, prev)
				if err != nil {
					return &Break{Seq: bytesToU64(k), Problem: "record does not decode: " + err.Error()}
				}
				seq := bytesToU64(k)
				switch {
				case seq != next:
					return &Break{Seq: next, Problem: fmt.Sprintf("missing: the next record is %d", seq)}
				case r.Seq != seq:
					return &Break{Seq: seq, Step: r.Step, Problem: fmt.Sprintf("record says it is %d", r.Seq)}
				case r.Prev != prev:
					return &Break{Seq: seq, Step: r.Step, Problem: "prev does not match the previous record's hash"}
				case r.Hash != r.ComputeHash() && r.Schema1:
					return &Break{Seq: seq, Step: r.Step, Problem: "hash does not match the record's content (edited)"}
				case r.Hash != r.ComputeHash():
					return &Break{Seq: seq, Step: r.Step, Problem: "hash does not match the record's content and the previous record's hash (this record or the previous one edited)"}
				}
				prev, next = r.Hash, seq+1
				v.Records = seq
				v.Head = Head{Seq: seq, Hash: r.Hash, At: r.At}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n < verifyChunk {
			// The chunk that reached the end also read the head in the
			// same transaction: a truncated tail shows here.
			if head != prev {
				return &Break{Seq: next, Problem: "the chain's head in meta is not the last record's hash (records removed at the end?)"}
			}
			return nil
		}
	}
}

func (db *DB) verifyMessages(v *Verified) error {
	after := ""
	for {
		n := 0
		err := db.View(func(t *Tx) error {
			purged := t.tx.Bucket(bucketPurged)
			var err error
			after, err = t.StepsAfter("", after, verifyChunk, func(s Step) error {
				n++
				m, ok, err := t.rawMessage(s.ID)
				if err != nil {
					return &Break{Step: s.ID, Problem: err.Error()}
				}
				if !ok {
					if s.SHA256 == "" {
						return nil // never rendered
					}
					var seq []byte
					if purged != nil {
						seq = purged.Get(idKey(s.ID))
					}
					if len(seq) != 8 {
						return &Break{Step: s.ID, Problem: "missing (the step records SHA-256 " + s.SHA256 + ", and no purge is recorded)"}
					}
					r, err := decodeRecord(seq, t.tx.Bucket(bucketAudit).Get(seq), "")
					if err != nil || r.Step != s.ID || r.Detail != purgeDetail {
						return &Break{Step: s.ID, Problem: fmt.Sprintf("missing, and audit record %d does not record its purge", bytesToU64(seq))}
					}
					v.Purged++
					return nil
				}
				v.Messages++
				if s.SHA256 != "" && m.SHA256 != s.SHA256 {
					return &Break{Step: s.ID, Problem: "stored SHA-256 " + m.SHA256 + " is not the step's " + s.SHA256}
				}
				sum, err := gunzipSHA256(m.Gzip)
				if err != nil {
					return &Break{Step: s.ID, Problem: "stored bytes do not decompress: " + err.Error()}
				}
				if sum != m.SHA256 {
					return &Break{Step: s.ID, Problem: "stored bytes hash to " + sum + ", not " + m.SHA256 + " (altered)"}
				}
				return nil
			})
			return err
		})
		if err != nil {
			return err
		}
		if n < verifyChunk {
			break
		}
	}
	// A message with no step: stored bytes that no notice explains.
	return db.View(func(t *Tx) error {
		steps := t.tx.Bucket(bucketSteps)
		return t.tx.Bucket(bucketMessages).ForEach(func(k, _ []byte) error {
			if steps.Get(k) == nil {
				return &Break{Step: mustID(k), Problem: "stored message has no step"}
			}
			return nil
		})
	})
}

// rawMessage reads a stored message without decompressing it.
func (t *Tx) rawMessage(id string) (Message, bool, error) {
	var m Message
	ok, err := getJSON(t.tx.Bucket(bucketMessages), idKey(id), &m)
	return m, ok, err
}

func gunzipSHA256(z []byte) (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, zr); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ChainHead is the audit chain's last record; the zero Head when the chain
// is empty.
func (t *Tx) ChainHead() (Head, error) {
	k, raw := t.tx.Bucket(bucketAudit).Cursor().Last()
	if k == nil {
		return Head{}, nil
	}
	r, err := decodeRecord(k, raw, "")
	if err != nil {
		return Head{}, err
	}
	return Head{Seq: r.Seq, Hash: r.Hash, At: r.At}, nil
}

// DailyHeads calls fn with the last record of each UTC day that has
// records, oldest day first: the heads a partner anchors day by day.
func (db *DB) DailyHeads(fn func(Head) error) error {
	var cur Head
	var have bool
	from := uint64(1)
	for {
		n := 0
		err := db.View(func(t *Tx) error {
			return t.Audit(from, func(r Record) error {
				if n == verifyChunk {
					return errChunkFull
				}
				n++
				from = r.Seq + 1
				if have && !sameDay(cur.At, r.At) {
					if err := fn(cur); err != nil {
						return err
					}
				}
				cur, have = Head{Seq: r.Seq, Hash: r.Hash, At: r.At}, true
				return nil
			})
		})
		if err != nil && err != errChunkFull {
			return err
		}
		if err == nil {
			break
		}
	}
	if have {
		return fn(cur)
	}
	return nil
}

var errChunkFull = fmt.Errorf("chunk full")

func sameDay(a, b time.Time) bool {
	a, b = a.UTC(), b.UTC()
	return a.YearDay() == b.YearDay() && a.Year() == b.Year()
}

// verifyStructure reads the whole file under guard, then runs tx.Check on
// it. The read comes first because tx.Check works in a goroutine of its
// own, where SetPanicOnFault does not reach: it is run only on pages
// already read once without a fault.
func (db *DB) verifyStructure(v *Verified) error {
	var problems []string
	err := db.guard(func() error {
		return db.bolt.View(func(tx *bolt.Tx) error {
			if err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return readAll(b) }); err != nil {
				return err
			}
			for err := range tx.Check() {
				if len(problems) < 5 {
					problems = append(problems, err.Error())
				}
			}
			v.Pages = int(tx.Size() / int64(db.bolt.Info().PageSize))
			return nil
		})
	})
	if err == nil && len(problems) > 0 {
		err = &DamagedError{Path: db.path, Problem: "bbolt's structural check failed: " + strings.Join(problems, "; ")}
	}
	return err
}

// readAll reads every key and value of a bucket and its nested buckets,
// each byte of them (a checksum is the cheapest read a compiler cannot
// drop).
func readAll(b *bolt.Bucket) error {
	var sum uint32
	c := b.Cursor()
	for k, val := c.First(); k != nil; k, val = c.Next() {
		sum = crc32.Update(crc32.Update(sum, crc32.IEEETable, k), crc32.IEEETable, val)
		if val == nil {
			if nested := b.Bucket(k); nested != nil {
				if err := readAll(nested); err != nil {
					return err
				}
			}
		}
	}
	_ = sum
	return nil
}
