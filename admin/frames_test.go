package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// failWriter fails every write, as a full disk under a redirected stdout.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// A stdout that cannot be written ends the command with that error, as it
// would locally; before, the client dropped the bytes and said success.
func TestStdoutWriteErrorIsReported(t *testing.T) {
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		if _, err := io.WriteString(c.Stdout, "a.example\n"); err != nil {
			return 1, err
		}
		return 0, nil
	})
	err := Forward(context.Background(), sock, []string{"domains"}, nil, nil, failWriter{}, io.Discard)
	if err == nil || err.Error() != "no space left on device" {
		t.Errorf("error %v, want the write's own", err)
	}
}

// post sends body as a request of a client that speaks the wire itself.
func post(t *testing.T, sock, body string) *http.Response {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Post("http://errpd/run", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// wireAnswer is what a client read from an answer: the bytes of each
// stream and file, and the largest frame's.
type wireAnswer struct {
	streams map[string][]byte // "out", "err", or a file's path
	biggest int
	exit    int
}

// readRaw reads a raw answer as the package doc lays it out, on its own.
func readRaw(t *testing.T, r io.Reader) wireAnswer {
	t.Helper()
	br := bufio.NewReader(r)
	a := wireAnswer{streams: map[string][]byte{}}
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			t.Fatalf("the answer ends without an exit frame: %v", err)
		}
		var h map[string]any
		if err := json.Unmarshal(line, &h); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		for _, k := range []string{"out", "err", "data"} {
			if _, ok := h[k]; ok {
				t.Fatalf("a raw answer with base64 bytes: %q", line)
			}
		}
		n, _ := h["n"].(float64)
		b := make([]byte, int(n))
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatalf("after %q: %v", line, err)
		}
		a.biggest = max(a.biggest, len(b))
		name, _ := h["stream"].(string)
		if file, ok := h["file"].(string); ok {
			name = file
		}
		if name != "" {
			a.streams[name] = append(a.streams[name], b...)
		}
		if exit, ok := h["exit"].(float64); ok {
			a.exit = int(exit)
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Fatalf("%d bytes after the exit frame", len(rest))
			}
			return a
		}
	}
}

// oldFrame is a frame as errpd before raw frames knew it.
type oldFrame struct {
	Out   []byte `json:"out,omitempty"`
	Err   []byte `json:"err,omitempty"`
	File  string `json:"file,omitempty"`
	Mode  uint32 `json:"mode,omitempty"`
	Data  []byte `json:"data,omitempty"`
	Exit  *int   `json:"exit,omitempty"`
	Error string `json:"error,omitempty"`
}

// readBase64 reads an answer as a client before raw frames did.
func readBase64(t *testing.T, r io.Reader) wireAnswer {
	t.Helper()
	a := wireAnswer{streams: map[string][]byte{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var f oldFrame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("line %q: %v", sc.Bytes(), err)
		}
		a.streams["out"] = append(a.streams["out"], f.Out...)
		a.streams["err"] = append(a.streams["err"], f.Err...)
		if f.File != "" {
			a.streams[f.File] = append(a.streams[f.File], f.Data...)
		}
		a.biggest = max(a.biggest, len(f.Out), len(f.Err), len(f.Data))
		if f.Exit != nil {
			a.exit = *f.Exit
			return a
		}
	}
	t.Fatalf("the answer ends without an exit frame: %v", sc.Err())
	return a
}

// The daemon answers in raw frames a client that asks for them, and in
// base64 frames one that does not (an errpd from before them), with the
// same bytes; a write longer than a frame takes goes in several.
func TestDaemonAnswersInTheFormAsked(t *testing.T) {
	out := []byte("bücher.example\n\xff\x00{\"exit\":0}\n")
	file := bytes.Repeat([]byte("row,\xe2\x82\n"), maxPayload/7+3)[:maxPayload+5]
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		c.Stdout.Write(out)
		io.WriteString(c.Stderr, "warning\n")
		if _, err := c.Output("report.csv", 0o640).Write(file); err != nil {
			return 1, err
		}
		return 3, nil
	})
	for _, tc := range []struct {
		request, contentType string
		read                 func(*testing.T, io.Reader) wireAnswer
	}{
		{`{"args":["report"],"raw_frames":true}` + "\n", rawContentType, readRaw},
		{`{"args":["report"]}` + "\n", base64ContentType, readBase64},
	} {
		resp := post(t, sock, tc.request)
		if ct := resp.Header.Get("Content-Type"); ct != tc.contentType {
			t.Errorf("%s: Content-Type %q, want %q", tc.request, ct, tc.contentType)
		}
		a := tc.read(t, resp.Body)
		if !bytes.Equal(a.streams["out"], out) || string(a.streams["err"]) != "warning\n" || !bytes.Equal(a.streams["report.csv"], file) {
			t.Errorf("%s: out %q, err %q, file of %d bytes", tc.request, a.streams["out"], a.streams["err"], len(a.streams["report.csv"]))
		}
		if a.biggest != maxPayload || a.exit != 3 {
			t.Errorf("%s: biggest frame %d bytes (want %d), exit %d (want 3)", tc.request, a.biggest, maxPayload, a.exit)
		}
	}
}

// answerWith serves a fake daemon that reads the request line with read
// and answers body with Content-Type ct.
func answerWith(t *testing.T, ct string, read func(*inputStream) error, body string) string {
	t.Helper()
	return serveFake(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {
		if err := read(&inputStream{r: bufio.NewReaderSize(r.Body, maxLine)}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", ct)
		io.WriteString(w, body)
	})
}

// serveFake serves h as a fake daemon on a socket in dir until the test
// ends.
func serveFake(t *testing.T, dir string, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(dir, "errpd.db.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// A daemon from before raw frames reads the new request as its own (its
// encoding/json decoding skips raw_frames) and answers in base64 frames,
// which the client writes as they were meant.
func TestOldDaemonAnswersInBase64(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.csv")
	var old struct { // the request as errpd before raw frames knew it
		Args   []string    `json:"args"`
		Inputs []inputFile `json:"inputs,omitempty"`
	}
	pathJSON, _ := json.Marshal(path)
	body := `{"out":"YsM="}` + "\n" + `{"out":"vGNoZXIK"}` + "\n" + // "bücher\n", cut inside the ü
		`{"file":` + string(pathJSON) + `,"mode":416}` + "\n" +
		`{"file":` + string(pathJSON) + `,"mode":416,"data":"cm93IDEK/w=="}` + "\n" + // "row 1\n\xff"
		`{"err":"d2FybmluZwo="}` + "\n" + `{"progress":{"label":"report","done":5,"total":9}}` + "\n" +
		`{"exit":0}` + "\n"
	sock := answerWith(t, base64ContentType, func(in *inputStream) error { return in.line(&old) }, body)
	var stdout, stderr bytes.Buffer
	var progress []Progress
	err := Forward(context.Background(), sock, []string{"report", path}, nil, []string{path}, &stdout, &stderr,
		WithProgressFrames(func(p Progress) { progress = append(progress, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(old.Args, []string{"report", path}) {
		t.Errorf("the old daemon read args %q", old.Args)
	}
	got, err := os.ReadFile(path)
	if stdout.String() != "bücher\n" || stderr.String() != "warning\n" || string(got) != "row 1\n\xff" || err != nil {
		t.Errorf("stdout %q, stderr %q, file %q (%v)", stdout.String(), stderr.String(), got, err)
	}
	if !slices.Equal(progress, []Progress{{"report", 5, 9}}) {
		t.Errorf("progress %v", progress)
	}
}

// A raw answer that is cut, claims too much or is no answer at all is
// refused naming the socket, and leaves no output file, not even a short
// one; a whole one is written.
func TestBadRawAnswersAreRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.csv")
	pathJSON, _ := json.Marshal(path)
	file := `{"file":` + string(pathJSON) + `,"mode":416`
	for _, tc := range []struct{ body, want string }{
		{file + `,"n":10}` + "\nrow 1\n", "the daemon ended the answer early"},
		{file + `,"n":4}` + "\nrow\n", "the daemon ended the answer early"},
		{file + `,"n":4}` + "\nrow\n" + `{"exit"`, "the daemon ended the answer early"},
		{file + `,"n":99999999999}` + "\n", "more than the 16777216 a daemon sends"},
		{file + `,"n":-1}` + "\n", "a frame of -1 bytes"},
		{`{"error":"` + strings.Repeat("x", maxLine) + `"}` + "\n", "longer than 1048576 bytes"},
		{`{"n":3}` + "\nabc" + `{"exit":0}` + "\n", "3 bytes of no stream or file"},
		{"garbage\n", "invalid character"},
		{file + `,"n":4}` + "\nrow\n" + `{"exit":0}` + "\n", ""},
	} {
		os.Remove(path)
		sock := answerWith(t, rawContentType, func(in *inputStream) error { return in.line(&request{}) }, tc.body)
		err := Forward(context.Background(), sock, []string{"report", path}, nil, []string{path}, io.Discard, io.Discard)
		got, ferr := os.ReadFile(path)
		if tc.want == "" {
			if err != nil || string(got) != "row\n" {
				t.Errorf("%.60q: error %v, file %q (%v)", tc.body, err, got, ferr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), sock) {
			t.Errorf("%.60q: error %v, want one naming %s and saying %q", tc.body, err, sock, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%.60q: %s left behind", tc.body, entries[0].Name())
		}
	}
}

// FuzzAnswer reads any bytes as an answer of either form. Properties: no
// panic; every frame's n is within [0, maxPayload] and a raw line within
// maxLine; a frame's bytes are the very bytes that follow its line, and
// are all there or the read fails with errEarlyEnd; the reader stays in
// step (the next line starts right after them).
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{
		`{"stream":"out","n":6}` + "\nhello\n" + `{"exit":0}` + "\n",
		`{"file":"r.csv","mode":416}` + "\n" + `{"file":"r.csv","mode":416,"n":4}` + "\nrow\n" +
			`{"stream":"err","n":2}` + "\n\xff\n" + `{"progress":{"label":"report","done":4,"total":-1}}` + "\n" + `{"exit":0}` + "\n",
		`{"stream":"out","n":3}` + "\n{\"exit\":0}\n" + `{"exit":3,"error":"report: disk full"}` + "\n",
		`{"stream":"out","n":10}` + "\nshort",
		`{"stream":"out","n":99999999999}` + "\n",
		`{"stream":"out","n":-5}` + "\n",
		`{"stream":"out","n":1e3}` + "\n",
		`{"n":2}` + "\nxx",
		"garbage\x00\n",
		"",
	} {
		f.Add([]byte(s), true)
	}
	for _, s := range []string{ // the base64 form of errpd before raw frames
		`{"out":"aGVsbG8K"}` + "\n" + `{"file":"r.csv","mode":416,"data":"cm93Cg=="}` + "\n" + `{"exit":0}` + "\n",
		`{"out":"eA=="`,
		`{"out":"eA==","n":1}` + "\nx",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, raw bool) {
		in := bytes.NewReader(data)
		a := newAnswer(in, raw)
		pos := func() int { return len(data) - in.Len() - a.r.Buffered() } // bytes read of data
		for {
			before := pos()
			fr, err := a.next()
			if err != nil {
				return
			}
			if raw && pos()-before > maxLine {
				t.Fatalf("a line of %d bytes taken", pos()-before)
			}
			if fr.N < 0 || fr.N > maxPayload {
				t.Fatalf("a frame of %d bytes taken", fr.N)
			}
			start := pos()
			var got bytes.Buffer
			err = a.payload(&got, fr.N)
			if want := data[start:min(len(data), start+fr.N)]; !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("the frame's bytes %q, want %q", got.Bytes(), want)
			}
			if err != nil {
				if !errors.Is(err, errEarlyEnd) || start+fr.N <= len(data) {
					t.Fatalf("payload of %d bytes at %d of %d: %v", fr.N, start, len(data), err)
				}
				return
			}
			if pos() != start+fr.N {
				t.Fatalf("after a frame of %d bytes at %d the reader is at %d", fr.N, start, pos())
			}
		}
	})
}

// A daemon that dies inside a frame's bytes (its HTTP chunk cut short)
// has ended the answer early, said so, and left no file behind.
func TestDaemonDiesInsideAFrame(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.csv")
	pathJSON, _ := json.Marshal(path)
	sock := serveFake(t, dir, func(w http.ResponseWriter, r *http.Request) {
		// The whole request read first: a daemon that dies with it unread
		// fails the client's send instead (broken pipe), another test.
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		chunk := `{"file":` + string(pathJSON) + `,"n":100}` + "\nrow 1\n"
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s", rawContentType, 200, chunk)
	})
	err := Forward(context.Background(), sock, []string{"report", path}, nil, []string{path}, io.Discard, io.Discard)
	if err == nil || err.Error() != "admin socket "+sock+": the daemon ended the answer early" {
		t.Errorf("error %v, want the daemon ended the answer early", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the folder holds %d entries, want only the socket", len(entries))
	}
}

// cancelWriter cancels the forwarded command at its first bytes, as an
// operator's Ctrl-C would.
type cancelWriter struct{ cancel context.CancelFunc }

func (c cancelWriter) Write(p []byte) (int, error) { c.cancel(); return len(p), nil }

// Once the client is gone, every write of the command fails, so that it
// stops instead of writing for nobody; the frames do not pile up in the
// daemon.
func TestWritesFailOnceTheClientIsGone(t *testing.T) {
	result := make(chan error, 1)
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		block := bytes.Repeat([]byte("row\n"), 16<<10)
		for range 1 << 12 { // 256 MiB, far more than the socket holds
			if _, err := c.Stdout.Write(block); err != nil {
				result <- err
				return 1, err
			}
		}
		result <- nil
		return 0, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Forward(ctx, sock, []string{"domains"}, nil, nil, cancelWriter{cancel}, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Forward: %v, want context.Canceled", err)
	}
	if err := <-result; err == nil {
		t.Error("the command wrote 256 MiB to a client that was gone")
	}
}
