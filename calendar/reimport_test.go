package calendar_test

import (
	"cmp"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/lifecycle"
	"github.com/errpd/errpd/store"
)

// A re-import decides most rows in a read transaction and writes only
// those that change something. Whatever a row does (nothing, new facts, a
// new expiry or mode, a status, a domain new or listed again, an expiry
// that passed since), the store must end as it would had every row been
// applied in a write transaction of its own, as imports did before.
//
// Not parallel: three rows a batch, so that rows cross batches.
func TestReimportWritesWhatChangesAndOnlyThat(t *testing.T) {
	defer calendar.SetBatchSize(3)()
	const first = statusHeader +
		"same.example,2027-06-01,expire,Ann,ann@mail.example,en,O1,,\n" +
		"facts.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"expiry.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"mode.example,2027-06-01,renew,Ann,ann@mail.example,en,,,\n" +
		"deleted.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"expired.example,2027-02-20,renew,Ann,ann@mail.example,en,,,\n" +
		"past.example,2027-03-05,expire,Ann,ann@mail.example,en,,,\n" +
		"gone.example,2027-06-01,expire,Ann,ann@mail.example,en,,,deleted\n" +
		"restored.example,2027-06-01,expire,Ann,ann@mail.example,en,,,deleted\n" +
		"order.example,2027-06-01,expire,Ann,ann@mail.example,en,O2,,\n"
	const second = statusHeader +
		"same.example,2027-06-01,expire,Ann,ann@mail.example,en,O1,,\n" +
		"facts.example,2027-06-01,expire,Ann,new@mail.example,en,,,\n" +
		"expiry.example,2028-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"mode.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"deleted.example,2027-06-01,expire,Ann,ann@mail.example,en,,,deleted\n" +
		"expired.example,2027-02-20,renew,Ann,ann@mail.example,en,,,expired\n" +
		"past.example,2027-03-05,expire,Ann,ann@mail.example,en,,,\n" +
		"gone.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"restored.example,2027-06-01,expire,Ann,ann@mail.example,en,,,restored\n" +
		"order.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n" +
		"new.example,2027-06-01,expire,Ann,ann@mail.example,en,,,\n"

	// The first import, the same way into both stores; then, a week
	// later (past.example's expiry has passed), the second.
	at := now
	clock := func() time.Time { return at }
	imported, reference := setupClock(t, clock), setupClock(t, clock)
	for _, b := range []*bundle{imported, reference} {
		if _, rejected, err := b.importWith(t, first, nil, calendar.Options{}); err != nil || len(rejected) > 0 {
			t.Fatalf("first import: %v %v", err, rejected)
		}
	}
	at = at.Add(7 * 24 * time.Hour)

	got, rejected, err := imported.importWith(t, second, nil, calendar.Options{})
	if err != nil || len(rejected) > 0 {
		t.Fatalf("second import: %v %v", err, rejected)
	}
	want := reference.applyOneByOne(t, second)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-one row a transaction +import):\n%s", diff)
	}
	if got.Unchanged != 3 { // same, order and past.example (its cycle is not written again)
		t.Errorf("unchanged %d, want 3: %+v", got.Unchanged, got)
	}
	if diff := gocmp.Diff(reference.domains(t), imported.domains(t)); diff != "" {
		t.Errorf("domains (-one row a transaction +import):\n%s", diff)
	}
	ws, gs := reference.state(t), imported.state(t)
	if diff := gocmp.Diff(ws.Steps, gs.Steps); diff != "" {
		t.Errorf("steps (-one row a transaction +import):\n%s", diff)
	}
	if diff := gocmp.Diff(reference.audit(t), imported.audit(t)); diff != "" {
		t.Errorf("audit records, in any order (-one row a transaction +import):\n%s", diff)
	}
}

// setupClock is setup with a clock of the test's own.
func setupClock(t *testing.T, clock func() time.Time) *bundle {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "errpd.db"), store.Options{Now: clock, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &bundle{db: db, opts: setup(t).opts}
}

// applyOneByOne applies each row of text in a write transaction of its
// own, as imports did before they had a read-only fast path.
func (b *bundle) applyOneByOne(t *testing.T, text string) calendar.Stats {
	t.Helper()
	r, err := calendar.NewReader(strings.NewReader(text), "cal.csv")
	if err != nil {
		t.Fatal(err)
	}
	var st calendar.Stats
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return st
		}
		if err != nil {
			t.Fatal(err)
		}
		st.Rows++
		ev := lifecycle.FromCalendar(row.Status, row.Domain, "cal.csv:"+strconv.Itoa(row.Line))
		if err := b.db.Update(func(tx *store.Tx) error {
			ch, _, err := lifecycle.Apply(tx, ev, b.opts)
			switch ch {
			case store.Added:
				st.Added++
			case store.Updated:
				st.Updated++
			case store.NewCycle:
				st.NewCycles++
			case store.Unchanged:
				st.Unchanged++
			case lifecycle.Closed:
				st.Closed++
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// audit is the audit trail without its order, sequence numbers and hashes:
// an import writes a batch's rows in domain order.
func (b *bundle) audit(t *testing.T) []store.Record {
	t.Helper()
	var out []store.Record
	if err := b.db.View(func(tx *store.Tx) error {
		return tx.Audit(0, func(r store.Record) error {
			r.Seq, r.Prev, r.Hash = 0, "", ""
			out = append(out, r)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b store.Record) int {
		return cmp.Or(strings.Compare(a.Step, b.Step), strings.Compare(string(a.To), string(b.To)), strings.Compare(a.Detail, b.Detail))
	})
	return out
}
