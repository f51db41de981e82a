// Package boltdump reads a whole bbolt file, for tests that hold one file
// to another: every bucket's sequence and records, in key order.
package boltdump

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Record is one key and its value.
type Record struct{ K, V []byte }

// Bucket is a bucket's sequence and records in key order.
type Bucket struct {
	Seq     uint64
	Records []Record
}

// File reads every bucket of the bbolt file at path, opened read-only.
func File(path string) (map[string]Bucket, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	out := map[string]Bucket{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			d := Bucket{Seq: b.Sequence()}
			err := b.ForEach(func(k, v []byte) error {
				d.Records = append(d.Records, Record{bytes.Clone(k), bytes.Clone(v)})
				return nil
			})
			out[string(name)] = d
			return err
		})
	})
	return out, err
}

// Diff says how got differs from want: for each bucket, a missing or extra
// one, another sequence, another number of records, or the first record
// that differs. None when they are equal.
func Diff(want, got map[string]Bucket) []string {
	var out []string
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			out = append(out, fmt.Sprintf("bucket %s is missing", name))
			continue
		}
		if g.Seq != w.Seq {
			out = append(out, fmt.Sprintf("bucket %s: sequence %d, want %d", name, g.Seq, w.Seq))
		}
		if len(g.Records) != len(w.Records) {
			out = append(out, fmt.Sprintf("bucket %s: %d records, want %d", name, len(g.Records), len(w.Records)))
		}
		for i := range min(len(g.Records), len(w.Records)) {
			gr, wr := g.Records[i], w.Records[i]
			if !bytes.Equal(gr.K, wr.K) || !bytes.Equal(gr.V, wr.V) {
				out = append(out, fmt.Sprintf("bucket %s, record %d: %x = %x, want %x = %x", name, i, gr.K, gr.V, wr.K, wr.V))
				break
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			out = append(out, fmt.Sprintf("bucket %s is extra", name))
		}
	}
	return out
}
