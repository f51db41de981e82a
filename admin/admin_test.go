package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serve runs a daemon side on a socket in a temporary folder until the
// test ends.
func serve(t *testing.T, run RunFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "errpd.db.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ln, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- Serve(ctx, ln, nil, run) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	// The socket's file appears at bind, a moment before it listens:
	// wait until it answers.
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return sock
		}
		if time.Now().After(end) {
			t.Fatal("socket never appeared")
		}
	}
}

// The daemon gets the client's input files with the call and never reads
// the client's paths: here the file is gone before the command runs.
func TestInputTravelsWithTheCall(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "calendar.csv")
	want := []byte("domain,expiry\na.example,2027-01-01\n")
	os.WriteFile(in, want, 0o600)
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		os.Remove(in) // as if the daemon could not see the client's folder
		r, size, err := c.Input(in)
		if err != nil {
			return 1, err
		}
		got, err := io.ReadAll(r)
		if err != nil {
			return 1, err
		}
		if size != int64(len(want)) {
			return 1, fmt.Errorf("size %d, want %d", size, len(want))
		}
		if _, _, err := c.Input(filepath.Join(dir, "other.csv")); err == nil {
			return 1, errors.New("a file the client did not send was found")
		}
		c.Stdout.Write(got)
		io.WriteString(c.Stderr, "read "+in)
		return 0, nil
	})
	var out, errOut bytes.Buffer
	if err := Forward(context.Background(), sock, []string{"import", in}, []string{in}, nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) || errOut.String() != "read "+in {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestMissingInputIsNamed(t *testing.T) {
	sock := serve(t, func(context.Context, *Call) (int, error) { return 0, nil })
	missing := filepath.Join(t.TempDir(), "nope.csv")
	err := Forward(context.Background(), sock, []string{"import", missing}, []string{missing}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "nope.csv") {
		t.Fatalf("error %v, want one naming the file", err)
	}
}

// Output files are written by the client, with the mode asked for, and
// only once the command succeeded; a failed one leaves nothing behind.
func TestOutputIsWrittenByTheClient(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022)) // the modes below assume it
	dir := t.TempDir()
	ok := filepath.Join(dir, "report.csv")
	failed := filepath.Join(dir, "failed.csv")
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		path := c.Args[1]
		w := c.Output(path, 0o640)
		io.WriteString(w, "row 1\n")
		io.WriteString(w, "row 2\n")
		if _, err := os.Stat(path); err == nil {
			return 1, errors.New("the file is under its name before the command ended")
		}
		if c.Args[0] == "fail" {
			return 3, errors.New("report: disk full")
		}
		return 0, nil
	})
	if err := Forward(context.Background(), sock, []string{"report", ok}, nil, []string{ok}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ok)
	if err != nil || string(b) != "row 1\nrow 2\n" {
		t.Errorf("%s holds %q (%v)", ok, b, err)
	}
	if fi, err := os.Stat(ok); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v (%v), want 0640", fi.Mode().Perm(), err)
	}

	err = Forward(context.Background(), sock, []string{"fail", failed}, nil, []string{failed}, io.Discard, io.Discard)
	var re *RemoteError
	if !errors.As(err, &re) || re.Exit != 3 || re.Msg != "report: disk full" {
		t.Fatalf("error %v, want the command's own, exit 3", err)
	}
	for _, p := range []string{failed, failed + ".tmp"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind by a failed command", p)
		}
	}
}

func TestNoDaemon(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "errpd.db.sock")
	if err := Forward(context.Background(), sock, []string{"domains"}, nil, nil, io.Discard, io.Discard); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("no socket: %v, want ErrNoDaemon", err)
	}
	os.WriteFile(sock, nil, 0o600) // left by a crash: nobody listens
	if err := Forward(context.Background(), sock, []string{"domains"}, nil, nil, io.Discard, io.Discard); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("stale socket: %v, want ErrNoDaemon", err)
	}
}

// The daemon can make the client write only the files the command was
// given, and never with more than read and write permissions.
func TestClientWritesOnlyWhatItAskedFor(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022)) // the modes below assume it
	dir := t.TempDir()
	asked, other := filepath.Join(dir, "report.csv"), filepath.Join(dir, "authorized_keys")
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		io.WriteString(c.Output(c.Args[1], 0o4755), "data\n")
		return 0, nil
	})
	if err := Forward(context.Background(), sock, []string{"report", asked}, nil, []string{asked}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(asked); err != nil || fi.Mode() != 0o644 {
		t.Errorf("mode %v (%v), want 0644: no setuid, no execute", fi.Mode(), err)
	}
	err := Forward(context.Background(), sock, []string{"report", other}, nil, []string{asked}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "did not ask for") {
		t.Errorf("error %v, want a refusal of the file not asked for", err)
	}
	for _, p := range []string{other, other + ".tmp"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written although not asked for", p)
		}
	}
}

// An output the command leaves empty is still written, replacing an older
// file, as it would be without a daemon.
func TestEmptyOutputIsAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.csv")
	os.WriteFile(path, []byte("an older report\n"), 0o600)
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		c.Output(c.Args[1], 0o640)
		return 0, nil
	})
	if err := Forward(context.Background(), sock, []string{"report", path}, nil, []string{path}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || len(b) != 0 {
		t.Errorf("%s holds %q (%v), want an empty file", path, b, err)
	}
}

// An output into a folder that does not exist is refused naming the file
// the operator gave, not errpd's temporary one.
func TestOutputErrorNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodir", "report.csv")
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		io.WriteString(c.Output(c.Args[1], 0o640), "row\n")
		return 0, nil
	})
	err := Forward(context.Background(), sock, []string{"report", path}, nil, []string{path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+":") || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("error %v, want one naming %s", err, path)
	}
}

// An input streams through: the command reads its first lines while the
// client has not read the rest. Before, the client read the whole file
// into one request (and the daemon held it whole), so a calendar could not
// be bigger than memory on either side, and this test waited in vain.
func TestInputIsStreamed(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "calendar.csv")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		r, size, err := c.Input(fifo)
		if err != nil {
			return 1, err
		}
		if size != -1 {
			return 1, fmt.Errorf("a pipe's size is %d, want -1 (unknown)", size)
		}
		_, err = io.Copy(c.Stdout, r) // echoes each chunk as it comes
		return 0, err
	})
	seen := make(chan struct{})
	out := &watchWriter{want: "first\n", seen: seen}
	writerDone := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			writerDone <- err
			return
		}
		defer f.Close()
		io.WriteString(f, "first\n")
		select {
		case <-seen:
		case <-time.After(10 * time.Second):
			writerDone <- errors.New("the command saw nothing of the input before it was complete")
			return
		}
		io.WriteString(f, "second\n")
		writerDone <- nil
	}()
	if err := Forward(context.Background(), sock, []string{"import", fifo}, []string{fifo}, nil, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "first\nsecond\n" {
		t.Errorf("the command read %q", got)
	}
}

// watchWriter closes seen once what was written holds want.
type watchWriter struct {
	b    bytes.Buffer // not embedded: its WriteString would bypass Write
	want string
	seen chan struct{}
	done bool
}

func (w *watchWriter) String() string { return w.b.String() }

func (w *watchWriter) Write(p []byte) (int, error) {
	n, err := w.b.Write(p)
	if !w.done && strings.Contains(w.String(), w.want) {
		w.done = true
		close(w.seen)
	}
	return n, err
}

// A big input goes through in chunks, whole and in order, with progress
// told on the client's side; several inputs arrive in the order asked for,
// and a file the command does not read is skipped.
func TestInputsInChunksWithProgress(t *testing.T) {
	dir := t.TempDir()
	big, small, skipped := filepath.Join(dir, "big.csv"), filepath.Join(dir, "small.csv"), filepath.Join(dir, "skipped.csv")
	want := bytes.Repeat([]byte("0123456789abcdef"), 3*chunkSize/16+5) // three chunks and a bit
	os.WriteFile(big, want, 0o600)
	os.WriteFile(skipped, []byte("not read\n"), 0o600)
	os.WriteFile(small, []byte("small\n"), 0o600)
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		for _, p := range []string{big, small} { // skipped.csv comes between them
			r, _, err := c.Input(p)
			if err != nil {
				return 1, err
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return 1, err
			}
			fmt.Fprintf(c.Stdout, "%s:%d:%x\n", filepath.Base(p), len(b), sha256.Sum256(b))
		}
		if _, _, err := c.Input(big); err == nil {
			return 1, errors.New("an input was read twice")
		}
		return 0, nil
	})
	var out bytes.Buffer
	var sizes []int64
	var sent countWriter
	progress := WithProgress(func(size int64) io.Writer { sizes = append(sizes, size); return &sent })
	if err := Forward(context.Background(), sock, []string{"import"}, []string{big, skipped, small}, nil, &out, io.Discard, progress); err != nil {
		t.Fatal(err)
	}
	wantOut := fmt.Sprintf("big.csv:%d:%x\nsmall.csv:6:%x\n", len(want), sha256.Sum256(want), sha256.Sum256([]byte("small\n")))
	if out.String() != wantOut {
		t.Errorf("the command read\n%s, want\n%s", out.String(), wantOut)
	}
	if !slices.Equal(sizes, []int64{int64(len(want)), 9, 6}) || int(sent) != len(want)+9+6 {
		t.Errorf("progress told sizes %v and %d bytes", sizes, sent)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

// An input that fails to read on the client's side is reported as that,
// naming the file, not as the daemon's failure to read the request.
func TestUnreadableInputIsNamed(t *testing.T) {
	dir := t.TempDir() // a folder opens, but does not read
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		r, _, err := c.Input(dir)
		if err != nil {
			return 1, err
		}
		_, err = io.Copy(io.Discard, r)
		return 1, err
	})
	err := Forward(context.Background(), sock, []string{"import", dir}, []string{dir}, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("error %v, want the read error naming %s", err, dir)
	}
}

// A command that ends without reading all of its input (a calendar with a
// bad header, say) answers with its own error, not a broken connection.
func TestCommandEndsBeforeItsInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(path, bytes.Repeat([]byte("x,y\n"), 1<<20), 0o600) // 4 MiB
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		r, _, err := c.Input(path)
		if err != nil {
			return 1, err
		}
		io.CopyN(io.Discard, r, 10)
		return 2, errors.New("calendar.csv:1: header lacks column domain")
	})
	for range 3 { // and the daemon goes on serving
		err := Forward(context.Background(), sock, []string{"import", path}, []string{path}, nil, io.Discard, io.Discard)
		var re *RemoteError
		if !errors.As(err, &re) || re.Exit != 2 || !strings.Contains(re.Msg, "header lacks") {
			t.Fatalf("error %v, want the command's own", err)
		}
	}
}
