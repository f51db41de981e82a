package ascioteststand

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/ascio/wsdl"
)

// ErrNoXMLLint is returned when xmllint (Debian: libxml2-utils) is not
// installed; tests skip on it.
var ErrNoXMLLint = errors.New("xmllint not found (install libxml2-utils): Ascio schema checks need it")

// Schemas is a folder holding Ascio's XSDs, written out from package
// ascio/wsdl for xmllint.
//
// xmllint compiles the schema on every run, which costs about 40 ms of CPU
// for AscioService.xsd, and an upload is checked three times (header, body,
// answer). So the documents checked at the same time against one schema
// share one run: while a run is going on, new documents queue, and the
// next run takes them all. A lone document is checked at once, as before.
type Schemas struct {
	dir string
	// Nice runs xmllint at the lowest CPU priority: for benchmarks, where
	// the stand-in shares the machine with errpd but Ascio would not.
	Nice atomic.Bool

	mu      sync.Mutex
	batches map[string]*batcher // by schema file
	closed  bool
}

// WriteSchemas writes the XSDs into a new temporary folder. Remove it with
// Close.
func WriteSchemas() (*Schemas, error) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		return nil, ErrNoXMLLint
	}
	dir, err := os.MkdirTemp("", "ascio-xsd-")
	if err != nil {
		return nil, err
	}
	for _, name := range []string{wsdl.BodySchema, wsdl.HeaderSchema, "Serialization.xsd", "Arrays.xsd"} {
		b, err := fs.ReadFile(wsdl.Files, name)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return &Schemas{dir: dir, batches: map[string]*batcher{}}, nil
}

// errClosed is returned for documents given after Close.
var errClosed = errors.New("schemas closed")

// Close waits for the runs under way, then removes the folder. Checks
// asked for afterwards fail.
func (s *Schemas) Close() error {
	s.mu.Lock()
	s.closed = true
	batches := s.batches
	s.mu.Unlock()
	for _, b := range batches {
		b.close()
	}
	return os.RemoveAll(s.dir)
}

// Body validates a SOAP body payload (e.g. <service:UploadMessage ...>)
// against AscioService.xsd.
func (s *Schemas) Body(payload []byte) error { return s.validate(wsdl.BodySchema, payload) }

// Header validates a SecurityHeaderDetails payload against
// ascio-2013-02.xsd.
func (s *Schemas) Header(payload []byte) error { return s.validate(wsdl.HeaderSchema, payload) }

// Envelope validates a whole request envelope as NOTES.md describes: the
// header's payload and the body's payload, each on its own. The header must
// be present, since every Ascio call carries SecurityHeaderDetails.
func (s *Schemas) Envelope(env []byte) error {
	h, err := Payload(env, "Header")
	if err != nil {
		return err
	}
	if err := s.Header(h); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	return s.Response(env)
}

// Response validates the body payload of an envelope (answers have no
// header).
func (s *Schemas) Response(env []byte) error {
	b, err := Payload(env, "Body")
	if err != nil {
		return err
	}
	if err := s.Body(b); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

func (s *Schemas) validate(xsd string, doc []byte) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	b := s.batches[xsd]
	if b == nil {
		b = &batcher{schema: filepath.Join(s.dir, xsd), dir: s.dir, nice: &s.Nice}
		b.idle = sync.NewCond(&b.mu)
		s.batches[xsd] = b
	}
	s.mu.Unlock()
	return b.validate(doc)
}

// maxBatch bounds one xmllint run's command line.
const maxBatch = 256

// batcher checks documents against one schema, many per xmllint run.
type batcher struct {
	schema, dir string
	nice        *atomic.Bool

	mu      sync.Mutex
	idle    *sync.Cond // signalled when a run ends with nothing queued
	queue   []*doc
	running bool
	closed  bool
	runs    int // xmllint runs made, for tests
}

type doc struct {
	raw  []byte
	done chan error
}

func (b *batcher) validate(raw []byte) error {
	d := &doc{raw: raw, done: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errClosed
	}
	b.queue = append(b.queue, d)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	return <-d.done
}

// run checks what is queued, run after run, until nothing is.
func (b *batcher) run() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.running = false
			b.idle.Broadcast()
			b.mu.Unlock()
			return
		}
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.runs++
		b.mu.Unlock()
		b.check(batch)
	}
}

func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	for b.running {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

// check runs xmllint once over the batch and gives each document the lines
// xmllint wrote about it.
func (b *batcher) check(batch []*doc) {
	fail := func(err error) {
		for _, d := range batch {
			d.done <- err
		}
	}
	dir, err := os.MkdirTemp(b.dir, "batch-")
	if err != nil {
		fail(err)
		return
	}
	defer os.RemoveAll(dir)
	args := []string{"--noout", "--schema", b.schema}
	names := make([]string, len(batch))
	for i, d := range batch {
		names[i] = filepath.Join(dir, fmt.Sprintf("doc%03d.xml", i))
		if err := os.WriteFile(names[i], d.raw, 0o644); err != nil {
			fail(err)
			return
		}
	}
	cmd := exec.Command("xmllint", append(args, names...)...)
	if b.nice.Load() {
		cmd = exec.Command("nice", append([]string{"-n", "19", "xmllint"}, cmd.Args[1:]...)...)
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && (!errors.As(err, &exit) || !exit.Exited()) {
		// Not a verdict (killed, not started): no document passes.
		fail(fmt.Errorf("xmllint: %v: %s", err, bytes.TrimSpace(out)))
		return
	}
	lines := map[string][]string{} // file -> what xmllint said of it
	valid := map[string]bool{}
	current := ""
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n+":") || strings.HasPrefix(line, n+" ") {
				current = n
				break
			}
		}
		if line == current+" validates" {
			valid[current] = true
			continue
		}
		// A parser error's context lines follow it without a file name.
		lines[current] = append(lines[current], strings.ReplaceAll(line, current, "document"))
	}
	for i, d := range batch {
		switch {
		case valid[names[i]]:
			d.done <- nil
		case len(lines[names[i]]) > 0:
			d.done <- fmt.Errorf("xmllint: %s", strings.Join(lines[names[i]], "\n"))
		default:
			d.done <- fmt.Errorf("xmllint said nothing of this document: %s", bytes.TrimSpace(out))
		}
	}
}

// Payload returns the bytes, as written, of the first element inside an
// envelope's Header or Body. The payload must declare its own namespaces to
// validate on its own, which is how errpd writes them.
func Payload(env []byte, part string) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(env))
	depth, inside := 0, false
	var start int64
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("envelope has no %s payload: %v", part, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Space == ascio.NSSoap && t.Name.Local == part {
				inside = true
			} else if inside && depth == 3 {
				start = off
			}
		case xml.EndElement:
			if inside && depth == 3 {
				return env[start:d.InputOffset()], nil
			}
			if inside && depth == 2 {
				return nil, fmt.Errorf("envelope %s is empty", part)
			}
			depth--
		}
	}
}
