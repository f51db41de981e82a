package store_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// The VERP key is made once, kept across opens, and not made by a reader.
func TestVERPKey(t *testing.T) {
	s := reporttest.Open(t, false)
	var k1, k2 []byte
	s.DB.Update(func(tx *store.Tx) (err error) { k1, err = tx.VERPKey(); return err })
	s.DB.Close()
	ro, err := store.Open(s.Path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	ro.View(func(tx *store.Tx) (err error) { k2, err = tx.VERPKey(); return err })
	ro.Close()
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Errorf("key %x, after reopening %x", k1, k2)
	}
	fresh := reporttest.Open(t, false)
	fresh.DB.Close()
	ro, _ = store.Open(fresh.Path, store.Options{ReadOnly: true})
	defer ro.Close()
	ro.View(func(tx *store.Tx) (err error) { k2, err = tx.VERPKey(); return err })
	if k2 != nil {
		t.Errorf("a read-only transaction made a key")
	}
}

// The contact flag concerns the address that bounced: not set when the
// registrant has another address by now, and not shown once they do.
func TestBounceFlagFollowsTheAddress(t *testing.T) {
	s := reporttest.Seed(t)
	id := store.StepID("proved.com", reporttest.Expiry(), scheduler.Reminder1)
	opts := store.PlanOptions{Policy: scheduler.DefaultPolicy(), InScope: func(string) bool { return true }}
	setEmail := func(email string) {
		err := s.DB.Update(func(tx *store.Tx) error {
			old, _, _ := tx.Domain("proved.com")
			d := store.Domain{Name: old.Name, Mode: old.Mode, Expiry: old.Expiry, OrderID: old.OrderID, Registrant: old.Registrant}
			d.Registrant.Email = email
			_, err := tx.Upsert(d, opts)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	record := func(k store.BounceKind) (store.Step, store.Domain) {
		var st store.Step
		var d store.Domain
		err := s.DB.Update(func(tx *store.Tx) (err error) {
			if st, err = tx.RecordBounce(id, store.Bounce{Kind: k, Status: "5.1.1", At: time.Now()}); err != nil {
				return err
			}
			d, _, err = tx.Domain("proved.com")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return st, d
	}
	setEmail("new@proved.com")
	if st, d := record(store.BounceHard); st.Bounce == nil || d.Flag != nil {
		t.Errorf("bounce of an old address: step %+v, flag %+v", st.Bounce, d.Flag)
	}
	setEmail("holder@proved.com")
	if _, d := record(store.BounceHard); d.ContactFailed() == nil {
		t.Errorf("bounce of the current address: no flag")
	}
	// A renewal (new expiry, same registrant) keeps the flag: the address
	// still failed.
	err := s.DB.Update(func(tx *store.Tx) error {
		old, _, _ := tx.Domain("proved.com")
		// As an import gives it: the calendar's facts only.
		d := store.Domain{Name: old.Name, Mode: old.Mode, Expiry: old.Expiry.AddDate(1, 0, 0), OrderID: old.OrderID, Registrant: old.Registrant}
		_, err := tx.Upsert(d, opts)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var d store.Domain
	s.DB.View(func(tx *store.Tx) (err error) { d, _, err = tx.Domain("proved.com"); return err })
	if d.ContactFailed() == nil {
		t.Errorf("flag lost by a renewal: %+v", d.Flag)
	}
	setEmail("other@proved.com")
	s.DB.View(func(tx *store.Tx) (err error) { d, _, err = tx.Domain("proved.com"); return err })
	if d.ContactFailed() != nil {
		t.Errorf("flag shown after the address changed: %+v", d.Flag)
	}
	if err := s.DB.Update(func(tx *store.Tx) error { _, err := tx.RecordBounce(id, store.Bounce{Kind: "bogus"}); return err }); err == nil {
		t.Error("a bounce of kind bogus was recorded")
	}
}
