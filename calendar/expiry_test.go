package calendar_test

import "testing"

// Found by FuzzParseExpiry: an expiry near year 9999 (or before year 1)
// was accepted, and its plan's dates, past what encoding/json writes,
// made the store refuse the whole batch: one such row stopped the import
// of up to 2000 good rows. It must be a row error like any other.
func TestImportSurvivesFarExpiry(t *testing.T) {
	b := setup(t)
	st, rej := b.importString(t, "far.csv", "domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"+
		"far.example,9999-12-31,expire,A,a@b.example,,,\n"+
		"early.example,0000-01-10,expire,A,a@b.example,,,\n"+
		"ok.example,2027-01-01,renew,A,a@b.example,,,\n")
	if st.Added != 1 || len(rej) != 2 || rej[0].Field != "expiry" || rej[1].Field != "expiry" {
		t.Errorf("stats %+v, rejected %+v; want ok.example added and both far expiries rejected", st, rej)
	}
}
