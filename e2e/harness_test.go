// Package e2e runs errpd as a process against real peers: Postfix's
// smtp-sink as the relay and the Ascio stand-in on loopback.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// errpdBinary builds cmd/errpd once per test run.
func errpdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "errpd-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "errpd")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/errpd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// sink is a running smtp-sink that dumps every message into a folder.
type sink struct {
	addr string
	dir  string
	cmd  *exec.Cmd
}

const sinkPath = "/usr/sbin/smtp-sink"

// startSink starts Postfix's smtp-sink on a free loopback port. extra are
// further smtp-sink options (e.g. fault injection).
// endToEnd is what most end-to-end tests start from: the built errpd,
// smtp-sink as its relay, the Ascio stand-in, a folder and a config for
// them with workers SMTP connections. errpd itself is not started, so that
// a test may add to the config first. It skips under -short.
func endToEnd(t *testing.T, workers int) (bin string, sk *sink, asc *ascio, dir, cfg string) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	bin = errpdBinary(t)
	sk = startSink(t)
	asc = startAscio(t)
	dir = t.TempDir()
	cfg = writeConfig(t, dir, sk.addr, asc.endpoint, workers)
	return bin, sk, asc, dir, cfg
}

func startSink(t *testing.T, extra ...string) *sink {
	t.Helper()
	// smtp-sink drops to the -u user before it writes, so its folder must
	// not sit below t.TempDir's private (0700) parent.
	dir, err := os.MkdirTemp("", "errpd-sink-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	if os.Getenv("ERRPD_E2E_DEBUG") == "" {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return startSinkAt(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir, extra...)
}

// startSinkAt starts smtp-sink on addr, dumping into dir: a relay can be
// replaced by one that behaves otherwise, on the same address.
func startSinkAt(t *testing.T, addr, dir string, extra ...string) *sink {
	t.Helper()
	if _, err := os.Stat(sinkPath); err != nil {
		t.Skip("smtp-sink not installed (Debian package postfix); .ci/run installs it")
	}
	args := append([]string{"-u", "nobody", "-d", dir + "/%Y%m%d%H%M%S."}, extra...)
	args = append(args, addr, "256")
	cmd := exec.Command(sinkPath, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, addr)
	return &sink{addr: addr, dir: dir, cmd: cmd}
}

// replace stops this relay and starts one with other options in its place.
func (s *sink) replace(t *testing.T, extra ...string) *sink {
	t.Helper()
	s.cmd.Process.Kill()
	s.cmd.Wait()
	return startSinkAt(t, s.addr, s.dir, extra...)
}

func waitPort(t *testing.T, addr string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s", addr)
}

// dumped is one message as smtp-sink stored it.
type dumped struct {
	file      string
	mailFrom  string
	rcpt      string
	messageID string
	body      []byte // the message as received, LF line ends, without smtp-sink's own headers
}

// messages reads every dump. smtp-sink writes LF line ends and prepends
// X-Client-*, X-Helo-Args, X-Mail-Args, X-Rcpt-Args and a Received header.
func (s *sink) messages(t *testing.T) []dumped {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []dumped
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d := dumped{file: f}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		off := 0
		inReceived := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "X-Mail-Args: "):
				d.mailFrom = angle(strings.TrimPrefix(line, "X-Mail-Args: "))
			case strings.HasPrefix(line, "X-Rcpt-Args: "):
				d.rcpt = angle(strings.TrimPrefix(line, "X-Rcpt-Args: "))
			case strings.HasPrefix(line, "X-Client-"), strings.HasPrefix(line, "X-Helo-Args: "):
			case strings.HasPrefix(line, "Received: ") && !inReceived && d.rcpt != "":
				inReceived = true
			case inReceived && (strings.HasPrefix(line, "\t") || strings.HasPrefix(line, " ")):
			default:
				d.body = raw[off:]
			}
			if d.body != nil {
				break
			}
			off += len(line) + 1
		}
		// smtp-sink ends each dump with one newline of its own.
		d.body = bytes.TrimSuffix(d.body, []byte("\n"))
		for _, line := range strings.Split(string(d.body), "\n") {
			if line == "" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Message-ID: "); ok {
				d.messageID = strings.TrimSpace(v)
			}
		}
		out = append(out, d)
	}
	return out
}

// normalize turns a message's CRLF line ends into the LF smtp-sink writes.
func normalize(raw []byte) []byte { return bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")) }

// daemon is a running `errpd serve`.
type daemon struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

func startErrpd(t *testing.T, bin, cfg string) *daemon {
	t.Helper()
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	for end := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "errpd serving"); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-d.done:
			t.Fatalf("errpd serve exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("errpd serve did not start:\n%s", logs)
		}
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	d.logs = logs
	return d
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("errpd serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("errpd serve did not stop on SIGTERM")
	}
}

// kill ends the daemon at once, as a crash would.
func (d *daemon) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// errpdCmd runs a one-shot errpd command and returns its stdout.
func errpdCmd(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("errpd %v: %v\n%s", args, err, errb.String())
	}
	return out.String(), err
}

// angle returns the address inside <> of an SMTP command's arguments.
func angle(args string) string {
	_, rest, ok := strings.Cut(args, "<")
	if !ok {
		addr, _, _ := strings.Cut(args, " ")
		return addr
	}
	addr, _, _ := strings.Cut(rest, ">")
	return addr
}
