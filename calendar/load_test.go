package calendar_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/calendar"
	"github.com/errpd/errpd/internal/boltdump"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
)

// loadNow is the clock of the bulk-load tests: some generated expiries
// are behind it (notices missed or owed after expiry), most ahead.
var loadNow = time.Date(2027, 3, 1, 9, 30, 0, 0, time.UTC)

// loadPlan are the plan options of the bulk-load tests: every branch of
// planning a new domain that an import can take (out of scope, a renewal
// check) is met by some row.
func loadPlan() store.PlanOptions {
	return store.PlanOptions{
		Policy:       scheduler.DefaultPolicy(),
		InScope:      func(d string) bool { return !strings.HasSuffix(d, ".uk") },
		RenewalCheck: 36 * time.Hour,
	}
}

// loadCalendar writes rows from..to of a varied calendar: four TLDs (one
// out of scope), both modes, every status, expiries from 40 days before
// loadNow to a year after, some rows with an order id or a brand. keep
// selects the rows written; the others are left as empty lines, so that
// every row keeps its line number in every file. tweak is appended to
// every registrant's name: other facts for the same domains.
func loadCalendar(t *testing.T, path string, n int, keep func(i int) bool, tweak string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand,status\n")
	tlds := []string{"example", "com", "org", "uk"}
	statuses := []string{"", "", "", "active", "expired", "renewed", "transferred", "deleted", "restored", ""}
	for i := range n {
		if !keep(i) {
			b.WriteString("\n")
			continue
		}
		h := uint32(i) * 2654435761
		mode := "expire"
		if i%3 == 0 {
			mode = "renew"
		}
		order := ""
		if i%4 == 0 {
			order = fmt.Sprintf("ORD-%d", i)
		}
		expiry := loadNow.Add(time.Duration(int(h%440)-40)*scheduler.Day + time.Duration(h%86400)*time.Second)
		fmt.Fprintf(&b, "d%08x.%s,%s,%s,Owner %d%s,owner%d@mail.example,en,%s,%s,%s\n", h, tlds[i%len(tlds)],
			expiry.Format(time.RFC3339), mode, i, tweak, i, order, []string{"", "b2"}[i%2], statuses[i%len(statuses)])
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func openLoadStore(t *testing.T, path string) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{Now: func() time.Time { return loadNow }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// readerOf reads the calendar at csv, named calendar.csv in errors; the
// file is closed when the test ends.
func readerOf(t *testing.T, csv string) *calendar.Reader {
	t.Helper()
	f, err := os.Open(csv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := calendar.NewReader(f, "calendar.csv")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// importFile imports the calendar at csv into the store at path, as
// `errpd import` does.
func importFile(t *testing.T, path, csv string) calendar.Stats {
	t.Helper()
	db := openLoadStore(t, path)
	defer db.Close()
	st, err := calendar.Import(readerOf(t, csv), db, loadPlan(), func(e *calendar.RowError) { t.Errorf("rejected: %v", e) })
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// bulkFile loads the calendar at csv into the store at path.
func bulkFile(t *testing.T, path, csv string, check func(store.Domain) error, reject func(*calendar.RowError)) (calendar.Stats, store.Loaded, error) {
	t.Helper()
	clock := func() time.Time { return loadNow }
	r := readerOf(t, csv)
	r.Check = check
	return calendar.Bulk(r, path, calendar.BulkOptions{
		Options: calendar.Options{Plan: loadPlan()},
		Open:    store.Options{Now: clock, NoSync: true, NoWait: true},
		Load:    store.LoadOptions{Now: clock, UpgradeOptions: store.UpgradeOptions{Chunk: 97, NoWait: true}},
	}, reject)
}

// sameStores holds every bucket, key, value and sequence of the file at
// got to those of the file at want.
func sameStores(t *testing.T, want, got string) {
	t.Helper()
	w, err := boltdump.File(want)
	if err != nil {
		t.Fatal(err)
	}
	g, err := boltdump.File(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range boltdump.Diff(w, g) {
		t.Error(d)
	}
}

func verifyStore(t *testing.T, path string) {
	t.Helper()
	db := openLoadStore(t, path)
	defer db.Close()
	if _, err := db.Verify(); err != nil {
		t.Errorf("verify after the bulk load: %v", err)
	}
}

// A bulk load into an empty store writes, record for record, the store an
// import of the same calendar writes.
//
// With windows of 64 rows, both read the file in 24 windows, each read
// into a window the last ones used.
func TestBulkEqualsImport(t *testing.T) {
	for _, rows := range []int{0, 64} {
		t.Run(fmt.Sprintf("window %d", rows), func(t *testing.T) {
			if rows > 0 {
				defer calendar.SetWindow(rows)()
			}
			bulkEqualsImport(t)
		})
	}
}

func bulkEqualsImport(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "calendar.csv")
	loadCalendar(t, csv, 1500, func(int) bool { return true }, "")
	want, got := filepath.Join(dir, "import.db"), filepath.Join(dir, "bulk.db")
	wst := importFile(t, want, csv)
	openLoadStore(t, got).Close()
	gst, loaded, err := bulkFile(t, got, csv, nil, func(e *calendar.RowError) { t.Errorf("rejected: %v", e) })
	if err != nil {
		t.Fatal(err)
	}
	if gst != wst {
		t.Errorf("bulk load counted %+v, the import %+v", gst, wst)
	}
	if loaded.Domains != 1500 || loaded.Added == 0 || wst.Added == 0 {
		t.Errorf("loaded %+v, want 1500 rows; the import added %d", loaded, wst.Added)
	}
	sameStores(t, want, got)
	verifyStore(t, got)
}

// Into a store that holds domains already, the new domains are loaded,
// then the rows naming stored ones imported as an import does: the same
// records as an import of the new ones, then of the stored ones.
func TestBulkOverStoredDomains(t *testing.T) {
	dir := t.TempDir()
	first, csv := filepath.Join(dir, "first.csv"), filepath.Join(dir, "calendar.csv")
	loadCalendar(t, first, 1200, func(i int) bool { return i%2 == 0 }, "")
	// The same domains with other facts (every row's name is a function
	// of its number), and as many new ones.
	loadCalendar(t, csv, 1200, func(int) bool { return true }, " II")
	stored, fresh := filepath.Join(dir, "stored.csv"), filepath.Join(dir, "fresh.csv")
	loadCalendar(t, stored, 1200, func(i int) bool { return i%2 == 0 }, " II")
	loadCalendar(t, fresh, 1200, func(i int) bool { return i%2 == 1 }, " II")
	want, got := filepath.Join(dir, "import.db"), filepath.Join(dir, "bulk.db")
	var fst calendar.Stats
	for _, p := range []string{want, got} {
		fst = importFile(t, p, first)
	}
	// The new domains are loaded first, then the stored ones imported.
	importFile(t, want, fresh)
	wst := importFile(t, want, stored)
	if wst.Updated == 0 {
		t.Fatalf("the second calendar updates no stored domain: %+v", wst)
	}
	st, loaded, err := bulkFile(t, got, csv, nil, func(e *calendar.RowError) { t.Errorf("rejected: %v", e) })
	if err != nil {
		t.Fatal(err)
	}
	// A row whose status closes a domain not stored stores nothing.
	if loaded.Domains != int64(1200-fst.Added) || st.Updated != wst.Updated {
		t.Errorf("loaded %d new domains, want %d; updated %d stored ones, want %d", loaded.Domains, 1200-fst.Added, st.Updated, wst.Updated)
	}
	sameStores(t, want, got)
	verifyStore(t, got)
}

// A row the check refuses is rejected with its line, and the rest load.
func TestBulkRejectsChecked(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "calendar.csv")
	loadCalendar(t, csv, 300, func(int) bool { return true }, "")
	path := filepath.Join(dir, "bulk.db")
	openLoadStore(t, path).Close()
	var rejected []string
	st, loaded, err := bulkFile(t, path, csv, func(d store.Domain) error {
		if strings.HasSuffix(d.Registrant.Email, "7@mail.example") {
			return errors.New("cannot be rendered")
		}
		return nil
	}, func(e *calendar.RowError) { rejected = append(rejected, e.Error()) })
	if err != nil {
		t.Fatal(err)
	}
	if len(rejected) != 30 || st.Rejected != 30 {
		t.Fatalf("rejected %d rows (counted %d), want 30: %q", len(rejected), st.Rejected, rejected)
	}
	if want := "calendar.csv:9: notice: cannot be rendered"; !strings.HasPrefix(rejected[0], want) {
		t.Errorf("first rejection %q, want it to start %q", rejected[0], want)
	}
	if loaded.Domains != 270 {
		t.Errorf("loaded %d rows, want 270", loaded.Domains)
	}
}

// A bulk load refuses a store another process holds, and leaves it as it
// was.
func TestBulkRefusesHeldStore(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "calendar.csv")
	loadCalendar(t, csv, 50, func(int) bool { return true }, "")
	path := filepath.Join(dir, "bulk.db")
	db := openLoadStore(t, path)
	defer db.Close()
	_, _, err := bulkFile(t, path, csv, nil, func(*calendar.RowError) {})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("bulk load of a held store: %v, want ErrLocked", err)
	}
}
