package admin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
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
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
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
		got, err := c.Input(in)
		if err != nil {
			return 1, err
		}
		if _, err := c.Input(filepath.Join(dir, "other.csv")); err == nil {
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
