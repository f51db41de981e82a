// Package admin lets errpd's commands work while `errpd serve` holds the
// store. bbolt allows one writing process, so the daemon listens on a unix
// socket beside the store file and runs the command for the client against
// its open store, streaming the output back. The socket is created with mode
// 0600: only the daemon's user (and root) may use it.
//
// Files travel with the command: the client streams the input files in
// the request, in chunks that the command reads as it goes (a calendar of
// millions of rows is never held whole on either side), and writes the
// output files from what the daemon streams back. The daemon never opens the operator's paths, which it may not see
// at all (systemd's ProtectHome and PrivateTmp), nor writes files as its
// own user where the operator asked for them.
//
// The wire: the request is one JSON line (request), then the input files
// as JSON lines of base64 chunks (chunk). The answer is a stream of frames
// (frame), each a JSON line. A frame that carries bytes (the command's
// stdout or stderr, or an output file's data) comes in one of two forms:
//
//   - raw, when the request asked for it (raw_frames) and the daemon
//     answers with Content-Type application/x-errpd-frames: the JSON line
//     says whose bytes they are ("stream":"out" or "err", or "file") and
//     how many ("n"), and exactly n bytes follow its newline as they are,
//     then the next frame's line. A frame without bytes is just its line.
//     No frame carries more than 16 MiB (maxPayload). Six bytes of stdout:
//     {"stream":"out","n":6}\nhello\n
//     then, say, {"exit":0}\n.
//   - base64, the older form, for a client that did not ask (an older
//     errpd, Content-Type application/x-ndjson): the bytes are JSON []byte
//     fields of the line (out, err, data).
//
// Raw frames spare both sides the base64 and JSON coding of every byte:
// an 80 MB report cost the client 0.7 s of CPU to decode, and the daemon
// its encoding on the cores its report workers need. An older daemon
// ignores raw_frames (encoding/json skips unknown fields) and answers in
// base64, which this client still reads.
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
	"syscall"
	"time"

	"github.com/errpd/errpd/internal/peertext"
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
	in             *inputStream
	fw             *frameWriter
}

// Input is a reader of a file the client streams for the command, and
// the file's size (-1 when the client could not tell, as for a pipe).
// Files arrive in the order the client sent them; asking for a later one
// skips what is left of the earlier ones, and each can be read once.
func (c *Call) Input(path string) (io.Reader, int64, error) {
	return c.in.open(path)
}

// Output is a writer for a file the client writes at path, with perm: into
// a temporary file that becomes path only if the command succeeds.
func (c *Call) Output(path string, perm fs.FileMode) io.Writer {
	// A first, empty frame: an output with no bytes is still a file (and
	// replaces an older one), as it would be written locally.
	fr := frame{File: path, Mode: uint32(perm)}
	c.fw.send(fr, nil)
	return c.fw.stream(fr)
}

// Progress is how far a forwarded command has got: Done of Total units
// (bytes, say; Total -1 when unknown). The client draws it as the command
// would locally.
type Progress struct {
	Label string `json:"label"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// Progress sends the client a progress frame.
func (c *Call) Progress(p Progress) error { return c.fw.send(frame{Progress: &p}, nil) }

// request is the first line of a forwarded command; the chunks of its
// input files follow, each file ending with an empty chunk marked EOF.
type request struct {
	Args   []string    `json:"args"`
	Inputs []inputFile `json:"inputs,omitempty"` // in the order they follow
	// RawFrames: the client reads raw frames (package doc).
	RawFrames bool `json:"raw_frames,omitempty"`
}

type inputFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"` // -1: unknown
}

// chunk is one line of an input file's stream.
type chunk struct {
	File string `json:"file"`
	Data []byte `json:"data,omitempty"`
	EOF  bool   `json:"eof,omitempty"`
}

// chunkSize is the most bytes of a file in one chunk; maxLine bounds a
// line of the request (a chunk is a third larger in base64, the first line
// holds the arguments).
const (
	chunkSize = 64 << 10
	maxLine   = 1 << 20
)

// maxErrorText is the most bytes of a command's error the exit frame
// carries: escaped in JSON (at most six bytes a byte), its line stays
// under maxLine, which a raw answer's lines must.
const maxErrorText = 64 << 10

// The answer's two forms (package doc), told apart by Content-Type.
const (
	rawContentType    = "application/x-errpd-frames"
	base64ContentType = "application/x-ndjson"
)

// maxPayload is the most bytes a raw frame carries: the daemon cuts a
// longer write into frames of this size, the client refuses a longer
// frame. maxBase64Line bounds a line of the base64 form, where the bytes
// are in the line (as the client of that form did).
const (
	maxPayload    = 16 << 20
	maxBase64Line = 64 << 20
)

// frame is one frame of the streamed answer: its JSON line.
type frame struct {
	// Out and Err are bytes, not strings: a write may end inside a
	// UTF-8 sequence, which a JSON string would replace with U+FFFD.
	// Base64 form only, as is Data.
	Out   []byte `json:"out,omitempty"`
	Err   []byte `json:"err,omitempty"`
	File  string `json:"file,omitempty"` // output file Data (or the raw bytes) belongs to
	Mode  uint32 `json:"mode,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`

	// Raw form: N bytes follow the line, of Stream ("out" or "err") or,
	// when File is set, of that file.
	Stream string `json:"stream,omitempty"`
	N      int    `json:"n,omitempty"`

	Progress *Progress `json:"progress,omitempty"`
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

func handler(run RunFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		// The command's output goes back while its input still comes in.
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		in := &inputStream{r: bufio.NewReaderSize(r.Body, maxLine)}
		var req request
		if err := in.line(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in.files = req.Inputs
		fw := &frameWriter{w: w, enc: json.NewEncoder(w), flush: http.NewResponseController(w).Flush, raw: req.RawFrames}
		w.Header().Set("Content-Type", base64ContentType)
		if fw.raw {
			w.Header().Set("Content-Type", rawContentType)
		}
		// One command a connection: the rest of an input the command did
		// not read is not worth reading to reuse it (and net/http, full
		// duplex, must not wait on it for a next request).
		w.Header().Set("Connection", "close")
		call := &Call{Args: req.Args, Stdout: fw.stream(frame{Stream: "out"}), Stderr: fw.stream(frame{Stream: "err"}), in: in, fw: fw}
		exit, err := run(r.Context(), call)
		last := frame{Exit: &exit}
		if err != nil {
			last.Error = peertext.CapN(err.Error(), maxErrorText)
		}
		fw.send(last, nil)
	})
	return mux
}

// inputStream reads the input files of a request, chunk by chunk.
type inputStream struct {
	r     *bufio.Reader
	files []inputFile  // announced and not yet begun, in order
	cur   *inputReader // the file streaming now, handed to the command
}

// line decodes the next line of the request into v.
func (s *inputStream) line(v any) error {
	b, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return fmt.Errorf("a line of the request is longer than %d bytes", maxLine)
	}
	if err == io.EOF && len(b) > 0 {
		err = io.ErrUnexpectedEOF // a line is whole only with its newline
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (s *inputStream) open(path string) (io.Reader, int64, error) {
	// What is left of the file handed out before, and the files sent
	// before path, go by unread.
	if s.cur != nil {
		if _, err := io.Copy(io.Discard, s.cur); err != nil {
			return nil, 0, err
		}
		s.cur = nil
	}
	i := slices.IndexFunc(s.files, func(f inputFile) bool { return f.Path == path })
	if i < 0 {
		return nil, 0, fmt.Errorf("%s: the client did not send this file, or it was read already", path)
	}
	for _, skip := range s.files[:i] {
		if _, err := io.Copy(io.Discard, &inputReader{s: s, path: skip.Path}); err != nil {
			return nil, 0, err
		}
	}
	f := s.files[i]
	s.files = s.files[i+1:]
	s.cur = &inputReader{s: s, path: path}
	return s.cur, f.Size, nil
}

// inputReader is one input file, read from its chunks.
type inputReader struct {
	s    *inputStream
	path string
	buf  []byte
	err  error
}

func (r *inputReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 && r.err == nil {
		var c chunk
		if err := r.s.line(&c); err != nil {
			r.err = fmt.Errorf("%s: reading it from the client: %w", r.path, err)
			break
		}
		if c.File != r.path {
			r.err = fmt.Errorf("%s: the client sent a chunk of %q instead", r.path, c.File)
			break
		}
		r.buf = c.Data
		if c.EOF {
			r.err = io.EOF
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

// frameWriter turns the command's output streams into frames, in the form
// the client asked for. The mutex keeps frames whole when the command
// writes from several goroutines; each frame is flushed at once, so that
// progress and output show as they come. Once the client is gone, every
// write fails, so that the command stops instead of producing a whole
// backup for nobody.
type frameWriter struct {
	mu    sync.Mutex
	w     io.Writer // the response
	enc   *json.Encoder
	flush func() error
	raw   bool // the client reads raw frames
	err   error
}

// send writes the frame fr, with p as the bytes of the stream or file fr
// names (at most maxPayload of them).
func (f *frameWriter) send(fr frame, p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if f.raw {
		f.err = f.sendRaw(fr, p)
	} else {
		f.err = f.enc.Encode(base64Frame(fr, p))
	}
	if f.err == nil {
		f.err = f.flush()
	}
	return f.err
}

// sendRaw writes fr's line and then p itself: no copy of p on the way
// (net/http passes a write larger than its buffer straight through).
func (f *frameWriter) sendRaw(fr frame, p []byte) error {
	fr.N = len(p)
	if err := f.enc.Encode(fr); err != nil || len(p) == 0 {
		return err
	}
	_, err := f.w.Write(p)
	return err
}

// base64Frame is fr of the raw form, with its bytes p, in the base64 form.
func base64Frame(fr frame, p []byte) frame {
	switch fr.Stream {
	case "out":
		fr.Out = p
	case "err":
		fr.Err = p
	default:
		fr.Data = p
	}
	fr.Stream = ""
	return fr
}

type streamFunc func([]byte) (int, error)

func (s streamFunc) Write(p []byte) (int, error) { return s(p) }

// stream is a writer whose bytes go in frames like fr, at most maxPayload
// bytes a frame.
func (f *frameWriter) stream(fr frame) io.Writer {
	return streamFunc(func(p []byte) (int, error) {
		n := 0
		for n < len(p) {
			part := p[n:min(len(p), n+maxPayload)]
			if err := f.send(fr, part); err != nil {
				return n, err
			}
			n += len(part)
		}
		return n, nil
	})
}

// Option changes how Forward sends a command.
type Option func(*options)

type options struct {
	progress func(size int64) io.Writer
	frames   func(Progress)
}

// WithProgress has Forward tell progress about the input files as it
// streams them to the daemon: once with each file's size (-1 unknown),
// then the bytes sent. The daemon reads them as it goes, so the bytes sent
// are the bytes it has consumed, give or take the buffers between.
// progress may return nil for no report.
func WithProgress(progress func(size int64) io.Writer) Option {
	return func(o *options) { o.progress = progress }
}

// WithProgressFrames has Forward pass each progress frame the command
// sends (Call.Progress: work done inside the daemon, such as a backup's
// or a report's bytes) to fn.
func WithProgressFrames(fn func(Progress)) Option {
	return func(o *options) { o.frames = fn }
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
// inputs are files the command reads: they are opened here and streamed
// along in chunks, as the daemon reads them.
// wants are the files it writes: they arrive in the answer and are
// written here, and the daemon can make this process write no other.
func Forward(ctx context.Context, socket string, args, inputs, wants []string, stdout, stderr io.Writer, opts ...Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := os.Stat(socket); errors.Is(err, fs.ErrNotExist) {
		return ErrNoDaemon
	} else if err != nil {
		return fmt.Errorf("admin socket %s: %w (run errpd as the user errpd serve runs as)", socket, err)
	}
	// See whether a daemon answers before reading the inputs: with none
	// the command runs here and reads them itself (a pipe can be read only
	// once). The request then goes on a connection of its own; its header
	// goes at once and a slow input streams in the body, which the daemon
	// waits for as long as the command reads it.
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
	body, err := sendInputs(args, inputs, o.progress)
	if err != nil {
		return err
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://errpd/run", body)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		if serr := body.err(); serr != nil {
			return serr // the input could not be read: say so, not the socket's broken pipe
		}
		return fmt.Errorf("admin socket %s: %w", socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("admin socket %s: %s: %s", socket, resp.Status, bytes.TrimSpace(msg))
	}
	outs := &outputs{files: map[string]*os.File{}, allowed: wants}
	defer outs.discard()
	ans := newAnswer(resp.Body, resp.Header.Get("Content-Type") == rawContentType)
	for {
		f, err := ans.next()
		if err != nil {
			return fmt.Errorf("admin socket %s: %w", socket, err)
		}
		if err := ans.deliver(f, stdout, stderr, outs); err != nil {
			if errors.Is(err, errEarlyEnd) || errors.Is(err, errRead) {
				return fmt.Errorf("admin socket %s: %w", socket, err)
			}
			return err // the output's own error, naming it
		}
		if f.Progress != nil && o.frames != nil {
			o.frames(*f.Progress)
		}
		if f.Exit != nil {
			if serr := body.err(); serr != nil {
				return serr // the command failed reading what this side could not send
			}
			if *f.Exit == 0 && f.Error == "" {
				return outs.keep()
			}
			return &RemoteError{Exit: *f.Exit, Msg: f.Error}
		}
	}
}

// requestBody is the request of a forwarded command, written as the daemon
// reads it: the first line, then each input file in chunks.
type requestBody struct {
	*io.PipeReader
	mu   sync.Mutex
	serr error // why sending stopped early, if it did
}

func (b *requestBody) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.serr
}

// sendInputs opens the inputs (so that a missing one is reported before
// anything is sent) and streams them.
func sendInputs(args, inputs []string, progress func(int64) io.Writer) (*requestBody, error) {
	req := request{Args: args, RawFrames: true}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, in := range inputs {
		f, err := os.Open(in)
		if err != nil {
			closeAll()
			return nil, err
		}
		files = append(files, f)
		size := int64(-1)
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		req.Inputs = append(req.Inputs, inputFile{Path: in, Size: size})
	}
	pr, pw := io.Pipe()
	body := &requestBody{PipeReader: pr}
	go func() {
		defer closeAll()
		err := writeRequest(pw, req, files, progress)
		var re readError
		if errors.As(err, &re) {
			body.mu.Lock()
			body.serr = re.error
			body.mu.Unlock()
		}
		pw.CloseWithError(err)
	}()
	return body, nil
}

// readError is an input that could not be read, as opposed to a daemon
// that stopped taking the request (whose answer says why).
type readError struct{ error }

func writeRequest(w io.Writer, req request, files []*os.File, progress func(int64) io.Writer) error {
	enc := json.NewEncoder(w)
	if err := enc.Encode(req); err != nil {
		return err
	}
	buf := make([]byte, chunkSize)
	for i, f := range files {
		path := req.Inputs[i].Path
		var r io.Reader = f
		if progress != nil {
			if p := progress(req.Inputs[i].Size); p != nil {
				r = io.TeeReader(f, p)
			}
		}
		for {
			// What a read gives goes at once: a pipe that yields slowly
			// is streamed as it yields.
			n, err := r.Read(buf)
			if n > 0 {
				if werr := enc.Encode(chunk{File: path, Data: buf[:n]}); werr != nil {
					return werr // the daemon is gone: its answer says why
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return readError{err} // an *fs.PathError naming the file
			}
		}
		if err := enc.Encode(chunk{File: path, EOF: true}); err != nil {
			return err
		}
	}
	return nil
}

// outputs are the files a forwarded command writes, each into path.tmp
// until the command has succeeded.
type outputs struct {
	files   map[string]*os.File
	allowed []string // the outputs the command was given
}

// open returns the file for path's bytes, created at its first frame.
func (o *outputs) open(path string, perm fs.FileMode) (*os.File, error) {
	f, ok := o.files[path]
	if ok {
		return f, nil
	}
	if !slices.Contains(o.allowed, path) {
		return nil, fmt.Errorf("admin socket: the daemon sent a file, %q, that the command did not ask for", path)
	}
	f, err := os.OpenFile(path+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm&0o666)
	if err != nil {
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			pe.Path = path // the operator named path, not our temporary file
		}
		return nil, err
	}
	o.files[path] = f
	return f, nil
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

// answer reads the daemon's answer frame by frame, in either form
// (package doc).
type answer struct {
	r       *bufio.Reader
	maxLine int    // the longest line taken
	long    []byte // a line longer than r's buffer, put together
}

// answerBuffer is the client's read buffer: the raw bytes of a frame go
// from it straight to their destination.
const answerBuffer = 256 << 10

// errEarlyEnd is an answer cut before its last frame, be it between
// frames, inside a line or inside a frame's bytes: never a short file.
// errRead marks the other failures to read the answer.
var (
	errEarlyEnd = errors.New("the daemon ended the answer early")
	errRead     = errors.New("reading the answer")
)

func newAnswer(r io.Reader, raw bool) *answer {
	a := &answer{r: bufio.NewReaderSize(r, answerBuffer), maxLine: maxBase64Line}
	if raw {
		a.maxLine = maxLine // the bytes are not in the line
	}
	return a
}

// next reads the next frame's line. Its raw bytes, if any, are still to
// be read (deliver).
func (a *answer) next() (frame, error) {
	line, err := a.line()
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(line, &f); err != nil {
		return frame{}, err
	}
	if f.N < 0 || f.N > maxPayload {
		return frame{}, fmt.Errorf("a frame of %d bytes, more than the %d a daemon sends", f.N, maxPayload)
	}
	return f, nil
}

// line reads one line, whole with its newline and at most maxLine bytes.
func (a *answer) line() ([]byte, error) {
	b, err := a.r.ReadSlice('\n')
	if err == nil {
		return b, nil // the usual line, left in r's buffer
	}
	a.long = append(a.long[:0], b...)
	for err == bufio.ErrBufferFull && len(a.long) <= a.maxLine {
		b, err = a.r.ReadSlice('\n')
		a.long = append(a.long, b...)
	}
	if len(a.long) > a.maxLine {
		return nil, fmt.Errorf("a line of the answer is longer than %d bytes", a.maxLine)
	}
	if err != nil {
		return nil, answerError(err) // a line is whole only with its newline
	}
	return a.long, nil
}

// answerError says why the answer could not be read further. An answer cut
// short ends in io.EOF, or in io.ErrUnexpectedEOF when the daemon died
// inside an HTTP chunk.
func answerError(err error) error {
	// A daemon that dies mid-answer closes the socket; with bytes of the
	// request still unread there, the kernel resets it instead, or the
	// client closes it on failing to send the rest of the request.
	if err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed) {
		return errEarlyEnd
	}
	return fmt.Errorf("%w: %w", errRead, err)
}

// deliver writes the bytes of f where they belong: those of its line
// (base64 form) and the N raw bytes that follow it. A write to stderr
// that fails is let go (the command goes on, as it would locally); any
// other ends the command.
func (a *answer) deliver(f frame, stdout, stderr io.Writer, outs *outputs) error {
	dst := io.Discard
	switch {
	case f.File != "":
		file, err := outs.open(f.File, fs.FileMode(f.Mode))
		if err != nil {
			return err
		}
		if len(f.Data) > 0 {
			if _, err := file.Write(f.Data); err != nil {
				return err
			}
		}
		dst = file
	case f.Stream == "out":
		dst = stdout
	case f.Stream == "err":
		dst = ignoreErrors{stderr}
	case f.N > 0:
		return fmt.Errorf("%w: %d bytes of no stream or file", errRead, f.N)
	}
	if len(f.Out) > 0 {
		if _, err := stdout.Write(f.Out); err != nil {
			return err
		}
	}
	if len(f.Err) > 0 {
		stderr.Write(f.Err)
	}
	return a.payload(dst, f.N)
}

// payload copies the n bytes that follow a frame's line to w, straight
// from the read buffer.
func (a *answer) payload(w io.Writer, n int) error {
	for n > 0 {
		if a.r.Buffered() == 0 {
			if _, err := a.r.Peek(1); err != nil {
				return answerError(err)
			}
		}
		b, _ := a.r.Peek(min(n, a.r.Buffered()))
		if _, err := w.Write(b); err != nil {
			return err
		}
		a.r.Discard(len(b))
		n -= len(b)
	}
	return nil
}

// ignoreErrors is a writer whose failures are let go.
type ignoreErrors struct{ w io.Writer }

func (i ignoreErrors) Write(p []byte) (int, error) {
	i.w.Write(p)
	return len(p), nil
}
