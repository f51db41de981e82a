package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// servingAddrs reads, from serve's JSON log, where it listens.
func servingAddrs(t *testing.T, logs string) (listen, metrics string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		var rec struct {
			Msg, Listen   string
			MetricsListen string `json:"metrics_listen"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "errpd serving" {
			return rec.Listen, rec.MetricsListen
		}
	}
	t.Fatalf("no serving line in:\n%s", logs)
	return "", ""
}

// writeServeConfig writes a config for serve with a store in a temp dir,
// JSON logs and http.listen on a free loopback port; more is appended
// (keys of [http], then other tables).
func writeServeConfig(t *testing.T, more string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "errpd.toml")
	err := os.WriteFile(cfg, []byte(`[store]
path = "errpd.db"
open_timeout = "200ms"
[log]
format = "json"
[http]
listen = "127.0.0.1:0"
`+more), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAllowFromCoversMetrics: allow_from closes connections from other
// addresses to the whole listener, /metrics and /healthz included, and
// counts them on the metrics listener. (Before, allow_from guarded the
// callbacks only and /metrics answered anyone.)
func TestAllowFromCoversMetrics(t *testing.T) {
	cfg := writeServeConfig(t, "allow_from = [\"192.0.2.0/24\"]\nmetrics_listen = \"127.0.0.1:0\"\n")
	logs := serveInProcess(t, cfg)
	listen, metrics := servingAddrs(t, logs.String())
	cfg2 := writeServeConfig(t, "allow_from = [\"192.0.2.0/24\"]\n")
	logs2 := serveInProcess(t, cfg2)
	listen2, _ := servingAddrs(t, logs2.String())

	if got, err := get(listen, "/healthz", 5*time.Second); err == nil {
		t.Errorf("http.listen answered %q to an address outside allow_from", got)
	}
	if got, err := get(listen2, "/metrics", 5*time.Second); err == nil {
		t.Errorf("/metrics on http.listen answered an address outside allow_from: %.80q", got)
	}
	got, err := get(metrics, "/metrics", 5*time.Second)
	if want := `errpd_http_refused_connections_total{listener="http"} 1`; err != nil || !strings.Contains(got, want) {
		t.Errorf("metrics_listen's /metrics lacks %q (%v)", want, err)
	}
	if !strings.Contains(logs.String(), "not in http.allow_from") {
		t.Errorf("the refusal is not logged:\n%s", logs)
	}

	// An allowed address gets its answer.
	cfg3 := writeServeConfig(t, "allow_from = [\"127.0.0.0/8\"]\n")
	listen3, _ := servingAddrs(t, serveInProcess(t, cfg3).String())
	if got, err := get(listen3, "/healthz", 5*time.Second); err != nil || !strings.HasPrefix(got, "200") {
		t.Errorf("/healthz from an allowed address: %q %v", got, err)
	}
}

// TestHTTPBounds: an idle keep-alive connection is closed after
// http.idle_timeout, a silent one after http.read_timeout, and a header
// over http.max_header_bytes gets 431. (Before, the server set only a
// 10s header timeout: an idle keep-alive connection stayed open for good.)
func TestHTTPBounds(t *testing.T) {
	cfg := writeServeConfig(t, "idle_timeout = \"200ms\"\nread_timeout = \"300ms\"\nmax_header_bytes = 4096\n")
	listen, _ := servingAddrs(t, serveInProcess(t, cfg).String())

	// closedWithin tells whether the server closes conn within d: a read
	// returns EOF (or a reset) rather than time out.
	closedWithin := func(conn net.Conn, r *bufio.Reader, d time.Duration) bool {
		conn.SetReadDeadline(time.Now().Add(d))
		_, err := r.ReadByte()
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}

	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: errpd\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !closedWithin(conn, r, 5*time.Second) {
		t.Errorf("an idle keep-alive connection is still open 5s after idle_timeout = 200ms")
	}

	silent, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if !closedWithin(silent, bufio.NewReader(silent), 5*time.Second) {
		t.Errorf("a connection that never speaks is still open 5s after read_timeout = 300ms")
	}

	req, _ := http.NewRequest("GET", "http://"+listen+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 8192))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("an 8 KiB header over max_header_bytes = 4096: %s, want 431", resp.Status)
	}
}

// TestFileLimitWarning: serve tells the operator at start when the
// descriptor limit cannot hold http.max_connections beside the rest.
func TestFileLimitWarning(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	over := writeServeConfig(t, fmt.Sprintf("max_connections = %d\n", lim.Cur))
	if logs := serveInProcess(t, over).String(); !strings.Contains(logs, "file descriptor limit is too low") {
		t.Errorf("no warning with max_connections = the limit (%d):\n%s", lim.Cur, logs)
	}
	if logs := serveInProcess(t, writeServeConfig(t, "")).String(); strings.Contains(logs, "file descriptor limit") {
		t.Errorf("a warning with the default max_connections under a limit of %d:\n%s", lim.Cur, logs)
	}
}
