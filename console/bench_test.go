package console_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/errpd/errpd/console"
	"github.com/errpd/errpd/internal/benchtest"
	"github.com/errpd/errpd/store"
)

// TestBenchPages times the overview (which starts its scan in the
// background), the scan itself, and searches on the store
// report's TestBenchSeed builds at $ERRPD_BENCH_DB:
//
//	ERRPD_BENCH_DB=/tmp/b.db ERRPD_BENCH_ROWS=200000 go test ./report -run TestBenchSeed
//	ERRPD_BENCH_DB=/tmp/b.db go test ./console -run TestBenchPages -v
func TestBenchPages(t *testing.T) {
	db := benchtest.Store(t, store.Options{ReadOnly: true}, "see the comment")
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	h, err := console.New(console.Options{DB: db, Users: map[string]string{"bench": string(hash)}, SessionTTL: time.Hour, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.PostForm(srv.URL+"/login", url.Values{"user": {"bench"}, "password": {"pw"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		cookie = c
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	for _, p := range []string{"/", "/", "/domains?q=no-such-name", "/domains?q=0"} {
		req, _ := http.NewRequest("GET", srv.URL+p, nil)
		req.AddCookie(cookie)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Logf("GET %s: %s, %d bytes in %v", p, resp.Status, n, time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	if err := h.Refresh(); err != nil {
		t.Fatal(err)
	}
	t.Logf("overview scan: %v", time.Since(start).Round(time.Millisecond))
}
