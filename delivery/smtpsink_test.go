package delivery

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// smtpSink is Postfix's smtp-sink (Debian package postfix; .ci/run
// installs it).
const smtpSink = "/usr/sbin/smtp-sink"

// startSink runs smtp-sink on a free loopback port, dumping each message
// into dumpDir when it is not empty, and returns its address.
func startSink(t *testing.T, dumpDir string) string {
	t.Helper()
	if _, err := os.Stat(smtpSink); err != nil {
		t.Skipf("%s is missing (apt-get install postfix): %v", smtpSink, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"-m", "64"}
	if os.Getuid() == 0 {
		args = append(args, "-u", "nobody") // smtp-sink refuses to run as root
	}
	if dumpDir != "" {
		args = append(args, "-d", dumpDir+"/msg.")
	}
	args = append(args, addr, "64")
	cmd := exec.Command(smtpSink, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// smtp-sink has no readiness signal; poll until it accepts.
	for start := time.Now(); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("smtp-sink did not start: %v %s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notice is a message about the size of a real notice.
func notice(i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Example <renewals@example.net>\r\nTo: <r%d@example.org>\r\nSubject: notice %d\r\n"+
		"Message-ID: <%032x@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n", i, i, i)
	for j := range 60 {
		fmt.Fprintf(&b, "line %02d of notice %d: your domain expires; renew it at https://example.net/renew\r\n", j, i)
	}
	b.WriteString(".a line starting with a dot\r\n.\r\nend\r\n")
	return b.Bytes()
}

// TestSmtpSink1000 sends 1,000 notices to smtp-sink over at most four
// reused connections and reports the rate.
func TestSmtpSink1000(t *testing.T) {
	addr := startSink(t, "")
	var dials atomic.Int32
	s := newSMTP(t, addr, Options{MaxConnections: 4, Dial: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}})
	const n = 1000
	msgs := make([][]byte, n)
	size := 0
	for i := range msgs {
		msgs[i] = notice(i)
		size += len(msgs[i])
	}
	next := atomic.Int32{}
	var wg sync.WaitGroup
	var failed atomic.Int32
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				reply, err := s.Send(context.Background(), "bounces@errp.example.net", []string{fmt.Sprintf("r%d@example.org", i)}, msgs[i])
				if err != nil || reply.Code != 250 {
					failed.Add(1)
					t.Errorf("message %d: %v %v", i, reply, err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if failed.Load() > 0 {
		t.Fatalf("%d of %d messages failed", failed.Load(), n)
	}
	if d := dials.Load(); d > 4 {
		t.Errorf("%d connections for %d messages, want at most 4 reused", d, n)
	}
	t.Logf("smtp-sink: %d messages (%d KiB) in %s over %d connections: %.0f messages/s",
		n, size/1024, elapsed.Round(time.Millisecond), dials.Load(), float64(n)/elapsed.Seconds())
}

// TestSmtpSinkReceivesExactBytes reads back what smtp-sink dumped: the
// message as sent, with only SMTP's transport changes undone (smtp-sink
// writes lines with LF, and removes the dot-stuffing).
func TestSmtpSinkReceivesExactBytes(t *testing.T) {
	// Not t.TempDir: its parent is private, and smtp-sink writes as nobody.
	dir, err := os.MkdirTemp("", "errpd-smtp-sink-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	addr := startSink(t, dir)
	s := newSMTP(t, addr, Options{MaxConnections: 1})
	want := map[string]bool{}
	for i := range 5 {
		raw := notice(i)
		if _, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"r@example.org"}, raw); err != nil {
			t.Fatal(err)
		}
		want[strings.ReplaceAll(string(raw), "\r\n", "\n")] = true
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "msg.*"))
	if len(files) != 5 {
		t.Fatalf("smtp-sink dumped %d files, want 5", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// smtp-sink's own headers end with its three-line Received header:
		// "Received: from ...", "\tby smtp-sink ...;", "\tDATE".
		_, body, ok := strings.Cut(string(b), "\n\tby smtp-sink")
		for range 2 {
			if ok {
				_, body, ok = strings.Cut(body, "\n")
			}
		}
		body = strings.TrimSuffix(body, "\n") // the empty line closing each dump
		if !ok || !want[body] {
			t.Errorf("%s does not hold a message as sent:\n%s", f, b)
		}
		delete(want, body)
	}
}
