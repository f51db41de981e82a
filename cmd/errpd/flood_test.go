package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// floodNoFile is the daemon's file descriptor limit in the flood test: low
// enough that a bounded flood from loopback reaches it, high enough for the
// store, the admin socket and the Go runtime.
const floodNoFile = 256

// TestHelperServe is not a test: TestIdleFloodLeavesHealthAndAdmin runs the
// test binary again with ERRPD_HELPER_SERVE set, and then this runs
// `errpd serve` under a low file descriptor limit, as a process of its own.
func TestHelperServe(t *testing.T) {
	cfg := os.Getenv("ERRPD_HELPER_SERVE")
	if cfg == "" {
		t.Skip("helper process for TestIdleFloodLeavesHealthAndAdmin")
	}
	lim := &syscall.Rlimit{Cur: floodNoFile, Max: floodNoFile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(3)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	err := run(ctx, []string{"serve", "--config", cfg}, os.Stdout, os.Stderr)
	stop()
	os.Exit(finish(err, os.Stderr))
}

// floodDaemon is `errpd serve` in a process of its own.
type floodDaemon struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	listen string // http.listen as bound
	ops    string // where /healthz and /metrics are
	done   chan error
}

func startFloodDaemon(t *testing.T, cfg string) *floodDaemon {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &floodDaemon{stderr: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(exe, "-test.run=^TestHelperServe$")
	d.cmd.Env = append(os.Environ(), "ERRPD_HELPER_SERVE="+cfg)
	d.cmd.Stdout, d.cmd.Stderr = io.Discard, d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
		}
	})
	waitFor(t, "serve to start", func() bool {
		for _, line := range strings.Split(d.stderr.String(), "\n") {
			var rec struct {
				Msg, Listen   string
				MetricsListen string `json:"metrics_listen"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "errpd serving" {
				d.listen, d.ops = rec.Listen, rec.MetricsListen
				return true
			}
		}
		select {
		case err := <-d.done:
			t.Fatalf("serve ended: %v\n%s", err, d.stderr)
		default:
		}
		return false
	})
	return d
}

// get asks for path on addr over a connection of its own, within a bound.
func get(addr, path string, within time.Duration) (string, error) {
	c := &http.Client{Timeout: within, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

// flood opens up to max connections to addr, each asking for /healthz once
// and then staying open and idle (keep-alive), as the attack did. It stops
// at the first connection not answered within a bound, the sign that the
// server takes no more, and returns the connections answered; the test's
// end closes them all.
func flood(t *testing.T, addr string, max int) []net.Conn {
	t.Helper()
	var idle []net.Conn
	for range max {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Logf("dial %d: %v", len(idle)+1, err)
			break
		}
		t.Cleanup(func() { conn.Close() })
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: errpd\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			conn.Close()
			break
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.SetDeadline(time.Time{})
		idle = append(idle, conn)
	}
	return idle
}

// TestIdleFloodLeavesHealthAndAdmin: idle keep-alive connections to the
// HTTP listener once took every file descriptor the daemon had, and then
// /healthz, the callbacks and the admin socket all stopped answering. The
// daemon runs here under a limit of 256 descriptors and takes a flood of
// idle connections from loopback, more than it has descriptors. (Before
// http.max_connections: 244 connections were answered, then accept failed
// with EMFILE, the admin socket timed out and net/http wrote plain-text
// "http: Accept error" lines among the JSON.)
func TestIdleFloodLeavesHealthAndAdmin(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errpd.toml")
	const maxConns = 64
	os.WriteFile(cfg, fmt.Appendf(nil, `[store]
path = "errpd.db"
[http]
listen = "127.0.0.1:0"
metrics_listen = "127.0.0.1:0"
max_connections = %d
[smtp]
outbox_dir = "outbox"
[log]
format = "json"
`, maxConns), 0o600)
	d := startFloodDaemon(t, cfg)
	if d.ops == d.listen {
		t.Fatalf("metrics_listen %s is http.listen", d.ops)
	}

	idle := flood(t, d.listen, floodNoFile+64)
	if len(idle) != maxConns {
		t.Errorf("flood: %d idle connections answered, want http.max_connections = %d", len(idle), maxConns)
	}

	// The admin socket answers a forwarded command.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, _, err := errpd(t, ctx, "steps", "--config", cfg); err != nil {
		t.Errorf("admin socket under the flood: %v %s", err, out)
	}
	// /healthz and /metrics answer on their own listener.
	if got, err := get(d.ops, "/healthz", 10*time.Second); err != nil || !strings.HasPrefix(got, "200") {
		t.Errorf("/healthz on metrics_listen under the flood: %q %v", got, err)
	}
	got, err := get(d.ops, "/metrics", 10*time.Second)
	if want := `errpd_http_open_connections{listener="http"} ` + strconv.Itoa(maxConns); err != nil || !strings.Contains(got, want) {
		t.Errorf("/metrics under the flood lacks %q (%v)", want, err)
	}
	// Once the flood ends, http.listen answers again (404: with
	// metrics_listen set, /healthz is served there only).
	for _, c := range idle {
		c.Close()
	}
	if got, err := get(d.listen, "/healthz", 10*time.Second); err != nil || !strings.HasPrefix(got, "404") {
		t.Errorf("http.listen after the flood: %q %v", got, err)
	}
	logs := d.stderr.String()
	if !strings.Contains(logs, "http.max_connections reached") {
		t.Errorf("the operator is not told that the cap was reached:\n%s", logs)
	}
	if strings.Contains(logs, "Accept error") || strings.Contains(logs, "too many open files") {
		t.Errorf("the daemon ran out of descriptors:\n%s", logs)
	}
	// Every line the daemon wrote to stderr is JSON.
	for i, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("stderr line %d is not JSON: %s", i+1, line)
			break
		}
	}
}
