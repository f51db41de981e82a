// Package admin lets errpd's commands work while `errpd serve` holds the
// store. bbolt allows one writing process, so the daemon listens on a unix
// socket beside the store file and runs the command for the client against
// its open store, streaming the output back. The socket is created with mode
// 0600: only the daemon's user (and root) may use it.
//
// Files travel with the command: the client reads the input files and
// sends them, and writes the output files from what the daemon streams
// back. The daemon never opens the operator's paths, which it may not see
// at all (systemd's ProtectHome and PrivateTmp), nor writes files as its
// own user where the operator asked for them.
package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

// SocketPath is where the daemon serving the store at storePath listens.
func SocketPath(storePath string) string { return storePath + ".sock" }

// RunFunc runs one command as the daemon would run it from its own
// command line, against the daemon's open store.
type RunFunc func(ctx context.Context, call *Call) (exit int, err error)

// Call is one forwarded command, as the daemon runs it.
type Call struct {
	Args           []string
	Stdout, Stderr io.Writer
	files          map[string][]byte
	fw             *frameWriter
}

// Input is the content of a file the client read for the command.
func (c *Call) Input(path string) ([]byte, error) {
	b, ok := c.files[path]
	if !ok {
		return nil, fmt.Errorf("%s: the client did not send this file", path)
	}
	return b, nil
}

// Output is a writer for a file the client writes at path, with perm: into
// a temporary file that becomes path only if the command succeeds.
func (c *Call) Output(path string, perm fs.FileMode) io.Writer {
	// A first, empty frame: an output with no bytes is still a file (and
	// replaces an older one), as it would be written locally.
	c.fw.write(frame{File: path, Mode: uint32(perm)})
	return streamFunc(func(p []byte) (int, error) {
		if err := c.fw.write(frame{File: path, Mode: uint32(perm), Data: p}); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type request struct {
	Args  []string          `json:"args"`
	Files map[string][]byte `json:"files,omitempty"` // input files, by path
}

// frame is one line of the streamed answer.
type frame struct {
	// Out and Err are bytes, not strings: a write may end inside a
	// UTF-8 sequence, which a JSON string would replace with U+FFFD.
	Out   []byte `json:"out,omitempty"`
	Err   []byte `json:"err,omitempty"`
	File  string `json:"file,omitempty"` // output file Data belongs to
	Mode  uint32 `json:"mode,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// Listen opens the socket, mode 0600, in place of a stale one, so that
// the daemon can say it serves only once clients can reach it.
func Listen(socket string) (net.Listener, error) {
	os.Remove(socket) // a stale socket from a crash; the store lock proves no other daemon runs
	ln, err := net.Listen("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// Serve runs commands from the socket ln (from Listen) until ctx ends,
// then removes it. errorLog takes net/http's own complaints (nil: the log
// package's default logger).
func Serve(ctx context.Context, ln net.Listener, errorLog *log.Logger, run RunFunc) error {
	srv := &http.Server{Handler: handler(run), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errorLog}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	err := srv.Serve(ln)
	os.Remove(ln.Addr().String())
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// maxRequest bounds a forwarded command with its input files.
const maxRequest = 2 << 30

func handler(run RunFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var req request
		// Input files come in the request: a calendar of millions of
		// domains is a few hundred MB; beyond maxRequest is a mistake.
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequest)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		fw := &frameWriter{enc: json.NewEncoder(w), flush: w.(http.Flusher)}
		call := &Call{Args: req.Args, Stdout: fw.stream(false), Stderr: fw.stream(true), files: req.Files, fw: fw}
		exit, err := run(r.Context(), call)
		last := frame{Exit: &exit}
		if err != nil {
			last.Error = err.Error()
		}
		fw.write(last)
	})
	return mux
}

// frameWriter turns the command's output streams into frames. Once the
// client is gone, every write fails, so that the command stops instead of
// producing a whole backup for nobody.
type frameWriter struct {
	mu    sync.Mutex
	enc   *json.Encoder
	flush http.Flusher
	err   error
}

func (f *frameWriter) write(fr frame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.err = f.enc.Encode(fr); f.err == nil {
		f.flush.Flush()
	}
	return f.err
}

type streamFunc func([]byte) (int, error)

func (s streamFunc) Write(p []byte) (int, error) { return s(p) }

func (f *frameWriter) stream(isErr bool) io.Writer {
	return streamFunc(func(p []byte) (int, error) {
		fr := frame{Out: p}
		if isErr {
			fr = frame{Err: p}
		}
		if err := f.write(fr); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

// ErrNoDaemon means no daemon answers on the socket: run the command locally.
var ErrNoDaemon = errors.New("no errpd daemon on the admin socket")

// RemoteError is a command's failure as the daemon reported it.
type RemoteError struct {
	Exit int
	Msg  string
}

func (e *RemoteError) Error() string { return e.Msg }

// Forward runs args on the daemon listening at socket, copying its output
// to stdout and stderr. It returns ErrNoDaemon when none answers.
//
// inputs are files the command reads: they are read here and sent along.
// wants are the files it writes: they arrive in the answer and are
// written here, and the daemon can make this process write no other.
func Forward(ctx context.Context, socket string, args, inputs, wants []string, stdout, stderr io.Writer) error {
	if _, err := os.Stat(socket); errors.Is(err, fs.ErrNotExist) {
		return ErrNoDaemon
	} else if err != nil {
		return fmt.Errorf("admin socket %s: %w (run errpd as the user errpd serve runs as)", socket, err)
	}
	// See whether a daemon answers before reading the inputs: with none
	// the command runs here and reads them itself (a pipe can be read only
	// once). The request then goes on a connection of its own, as reading
	// a slow input may take longer than the daemon waits for a request.
	var d net.Dialer
	probe, err := d.DialContext(ctx, "unix", socket)
	if errors.Is(err, fs.ErrPermission) {
		// A daemon may well be there; this user may not talk to it.
		return fmt.Errorf("admin socket %s: %w (run errpd as the user errpd serve runs as)", socket, err)
	} else if err != nil {
		return ErrNoDaemon // a stale socket left by a crash
	}
	probe.Close()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
	}}
	defer client.CloseIdleConnections()
	call := request{Args: args, Files: map[string][]byte{}}
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		call.Files[in] = b
	}
	body, err := json.Marshal(call)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://errpd/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("admin socket %s: %s: %s", socket, resp.Status, bytes.TrimSpace(msg))
	}
	outs := &outputs{files: map[string]*os.File{}, allowed: wants}
	defer outs.discard()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var f frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return fmt.Errorf("admin socket %s: %w", socket, err)
		}
		stdout.Write(f.Out)
		stderr.Write(f.Err)
		if f.File != "" {
			if err := outs.write(f.File, fs.FileMode(f.Mode), f.Data); err != nil {
				return err
			}
		}
		if f.Exit != nil {
			if *f.Exit == 0 && f.Error == "" {
				return outs.keep()
			}
			return &RemoteError{Exit: *f.Exit, Msg: f.Error}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("admin socket %s: %w", socket, err)
	}
	return fmt.Errorf("admin socket %s: the daemon ended the answer early", socket)
}

// outputs are the files a forwarded command writes, each into path.tmp
// until the command has succeeded.
type outputs struct {
	files   map[string]*os.File
	allowed []string // the outputs the command was given
}

func (o *outputs) write(path string, perm fs.FileMode, data []byte) error {
	f, ok := o.files[path]
	if !ok {
		if !slices.Contains(o.allowed, path) {
			return fmt.Errorf("admin socket: the daemon sent a file, %q, that the command did not ask for", path)
		}
		var err error
		if f, err = os.OpenFile(path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm&0o666); err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				pe.Path = path // the operator named path, not our temporary file
			}
			return err
		}
		o.files[path] = f
	}
	_, err := f.Write(data)
	return err
}

// keep syncs the files and renames each to its path.
func (o *outputs) keep() error {
	for path, f := range o.files {
		err := f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(path+".tmp", path)
		}
		if err != nil {
			return err
		}
		delete(o.files, path)
	}
	return nil
}

// discard removes what keep did not keep.
func (o *outputs) discard() {
	for path, f := range o.files {
		f.Close()
		os.Remove(path + ".tmp")
	}
}
