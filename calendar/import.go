package calendar

import (
	"errors"
	"io"

	"github.com/errpd/errpd/store"
)

// Stats counts what an import did.
type Stats struct {
	Rows      int // data rows read
	Rejected  int
	Added     int
	Updated   int
	NewCycles int
	Unchanged int
}

// batchSize rows share one write transaction: one fsync for many domains,
// yet a transaction small enough to keep memory flat on a large calendar.
// Each row dirties some ten pages spread over the store (domain, cycle,
// steps, due index), which bbolt holds in memory until the commit: at 2000
// rows a batch, a daemon importing 1,000,000 rows peaked above 230 MiB of
// its own memory; at 500, see scripts/bench-import.sh daemon.
const batchSize = 500

// Import reads every row of r into db. Bad rows go to reject, one by one,
// and the rest still import. It returns when the input is read, or at the
// first error that is not a row's (I/O, store).
func Import(r *Reader, db *store.DB, o store.PlanOptions, reject func(*RowError)) (Stats, error) {
	var st Stats
	batch := make([]store.Domain, 0, batchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := db.Update(func(tx *store.Tx) error {
			for _, d := range batch {
				ch, err := tx.Upsert(d, o)
				if err != nil {
					return err
				}
				switch ch {
				case store.Added:
					st.Added++
				case store.Updated:
					st.Updated++
				case store.NewCycle:
					st.NewCycles++
				case store.Unchanged:
					st.Unchanged++
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	for {
		row, err := r.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			st.Rows++
			st.Rejected++
			reject(re)
			continue
		}
		if err != nil {
			return st, err
		}
		st.Rows++
		batch = append(batch, row.Domain)
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return st, err
			}
		}
	}
	return st, flush()
}
