package store

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/scheduler"
)

// TestKeysSortAsIDs: binary keys sort as the string ids did (a domain
// that is a prefix of another included, notices in timeline order), and
// read back to the same id; an id that does not parse keeps its text.
func TestKeysSortAsIDs(t *testing.T) {
	e1 := time.Date(2027, 6, 2, 11, 38, 20, 0, time.UTC)
	e2 := e1.AddDate(1, 0, 0)
	var ids []string
	for _, d := range []string{"ab.co", "ab.co.uk", "ab.co-x", "ab.com", "a", "xn--bcher-kva.example"} {
		for _, e := range []time.Time{e1, e2} {
			ids = append(ids, CycleKey(d, e))
			for _, n := range []scheduler.Notice{scheduler.Suspension, scheduler.Reminder1, scheduler.Reminder3, scheduler.Reminder2} {
				ids = append(ids, StepID(d, e, n))
			}
		}
	}
	byText := slices.Clone(ids)
	slices.Sort(byText)
	byKey := slices.Clone(ids)
	slices.SortFunc(byKey, func(a, b string) int { return bytes.Compare(idKey(a), idKey(b)) })
	if !slices.Equal(byText, byKey) {
		t.Errorf("keys sort as\n%s\nids as\n%s", strings.Join(byKey, "\n"), strings.Join(byText, "\n"))
	}
	for _, id := range append(ids, "no-slash", "a/not-a-time/reminder1", "a/20270602T113820Z/unknown") {
		k := idKey(id)
		if got, ok := keyID(k); !ok || got != id {
			t.Errorf("%q: key %x reads back as %q, %v", id, k, got, ok)
		}
	}
	if k := idKey(StepID("d1a2b3c4d.example", e1, scheduler.Reminder1)); len(k) != 27 {
		t.Errorf("step key is %d bytes, want 27", len(k))
	}
}

// TestStepsAfterPrefixes: a domain's prefix does not reach the domains it
// is a prefix of, a cycle's reaches its steps only, and a partial one
// filters by id.
func TestStepsAfterPrefixes(t *testing.T) {
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	db, err := Open(filepath.Join(t.TempDir(), "errpd.db"), Options{Now: func() time.Time { return now }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e1 := now.AddDate(0, 3, 0)
	err = db.Update(func(tx *Tx) error {
		for _, d := range []string{"ab.co", "ab.co.uk", "ab.com"} {
			for _, e := range []time.Time{e1, e1.AddDate(1, 0, 0)} {
				if _, err := tx.Upsert(Domain{Name: d, Mode: scheduler.ModeExpire, Expiry: e}, PlanOptions{Policy: scheduler.DefaultPolicy()}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		prefix string
		want   int
	}{
		{"", 24}, {"ab.co/", 8}, {"ab.co", 24}, {"ab.co.", 8}, {CycleKey("ab.co", e1) + "/", 4},
		{"ab.co/2028", 4}, {StepID("ab.co", e1, scheduler.Reminder2), 1}, {"zz/", 0},
	} {
		var got []string
		after := ""
		for {
			n := 0
			err := db.View(func(tx *Tx) error {
				var err error
				after, err = tx.StepsAfter(c.prefix, after, 3, func(s Step) error {
					n++
					got = append(got, s.ID)
					return nil
				})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if n < 3 {
				break
			}
		}
		if len(got) != c.want || !slices.IsSorted(got) {
			t.Errorf("prefix %q: %d steps %v, want %d in id order", c.prefix, len(got), got, c.want)
		}
		for _, id := range got {
			if !strings.HasPrefix(id, c.prefix) {
				t.Errorf("prefix %q: got %s", c.prefix, id)
			}
		}
	}
}
