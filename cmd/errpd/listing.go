package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/store"
)

// listing is where a listing command (`domains`, `steps`) writes its rows
// as it reads them: JSON lines, CSV or an aligned table, all through one
// buffer of 64 KiB, so that through the daemon each block is one frame of
// the answer, not one a row. The table is aligned a chunk of rows at a time
// (readChunks): tabwriter holds what it
// aligns, and a whole store's worth is hundreds of MB.
type listing struct {
	out   *bufio.Writer
	table *tabwriter.Writer
	json  *json.Encoder
	csv   *report.CSVWriter
}

// newListing starts a listing with the header of its format: csvHeader for
// --csv, tableHeader (tab-separated) for the table, none for --json.
func (a *app) newListing(asJSON, asCSV bool, csvHeader []string, tableHeader string) *listing {
	l := &listing{out: bufio.NewWriterSize(a.stdout, 64<<10)}
	l.table = tabwriter.NewWriter(l.out, 0, 4, 2, ' ', 0)
	l.json = json.NewEncoder(l.out)
	l.csv = report.NewCSVWriter(l.out)
	switch {
	case asCSV:
		l.csv.Write(csvHeader)
	case !asJSON:
		fmt.Fprintln(l.table, tableHeader)
	}
	return l
}

// readChunks calls read in read transactions of their own, one a chunk
// of rows, until it says no more follow, then finishes the listing: no
// listing of millions holds a transaction for minutes while the daemon
// writes.
func (l *listing) readChunks(db *store.DB, read func(*store.Tx) (more bool, err error)) error {
	for more := true; more; {
		err := db.View(func(tx *store.Tx) (err error) {
			more, err = read(tx)
			return err
		})
		if err != nil {
			return err
		}
		if err := l.table.Flush(); err != nil { // the table's chunk
			return err
		}
	}
	return l.finish()
}

// finish writes out what is buffered.
func (l *listing) finish() error {
	l.csv.Flush()
	if err := l.csv.Error(); err != nil {
		return err
	}
	if err := l.table.Flush(); err != nil {
		return err
	}
	return l.out.Flush()
}
