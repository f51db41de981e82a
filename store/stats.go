package store

import (
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// BucketSize is what one bucket holds and what it costs in the file:
// pages allocated to it (branch and leaf, full or not) against the bytes
// in use on them.
type BucketSize struct {
	Name      string
	Keys      int
	Allocated int // bytes of the pages allocated to it
	InUse     int // bytes of them used by keys, values and page headers
}

// BucketSizes returns every bucket's size, largest allocation first: the
// benchmark's per-bucket breakdown of the file.
func (db *DB) BucketSizes() ([]BucketSize, error) {
	var out []BucketSize
	err := db.View(func(t *Tx) error {
		return t.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			s := b.Stats()
			out = append(out, BucketSize{Name: string(name), Keys: s.KeyN,
				Allocated: s.BranchAlloc + s.LeafAlloc, InUse: s.BranchInuse + s.LeafInuse})
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Allocated > out[j].Allocated })
	return out, err
}

// FormatBucketSizes writes sizes one bucket a line, per domain when
// domains is positive: allocated bytes, fill, keys.
func FormatBucketSizes(sizes []BucketSize, domains int) string {
	var sb strings.Builder
	for _, s := range sizes {
		if s.Allocated == 0 {
			continue
		}
		fmt.Fprintf(&sb, "  %-15s %9.1f MiB allocated, %3.0f%% in use, %9d keys", s.Name,
			float64(s.Allocated)/(1<<20), 100*float64(s.InUse)/float64(s.Allocated), s.Keys)
		if domains > 0 {
			fmt.Fprintf(&sb, ", %6.0f B a domain", float64(s.Allocated)/float64(domains))
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func hexString(b []byte) string { return fmt.Sprintf("%x", b) }
