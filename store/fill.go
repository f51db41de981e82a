package store

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// fillPercent is how full bbolt fills a page before it splits one, per
// bucket, in every write transaction (bbolt's default is half). The audit
// trail only appends: its pages are filled. The others take keys in
// random places (names, send times) and keep bbolt's default: at 0.9 an
// import of random names left their pages 37-41% full instead of 68-71%
// (docs/store_encoding.md).
var fillPercent = map[string]float64{
	string(bucketAudit): 1.0,
}

// writeTx is a read-write transaction's Tx, its buckets' fill set.
func writeTx(btx *bolt.Tx, now func() time.Time) *Tx {
	for name, fp := range fillPercent {
		if b := btx.Bucket([]byte(name)); b != nil {
			b.FillPercent = fp
		}
	}
	return &Tx{tx: btx, now: now().UTC()}
}
