package ascioteststand

import (
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func schemas(t *testing.T) *Schemas {
	t.Helper()
	s, err := WriteSchemas()
	if err == ErrNoXMLLint {
		t.Skip("skipping: xmllint not found; install libxml2-utils")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sample is one of Ascio's samples (shared/reference/ascio/samples).
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runs is how many xmllint runs a schema's documents took so far.
func (s *Schemas) runs(xsd string) int {
	s.mu.Lock()
	b := s.batches[xsd]
	s.mu.Unlock()
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runs
}

// TestBatchVerdictsAreEachDocuments: documents checked in one xmllint run
// each get their own verdict, with only their own errors.
func TestBatchVerdictsAreEachDocuments(t *testing.T) {
	s := schemas(t)
	good, bad := sample(t, "UploadMessage.body.xml"), sample(t, "invalid-bad-type.body.xml")
	docs := [][]byte{good, bad, good, []byte("not xml at all"), good}
	errs := make([]error, len(docs))
	var wg sync.WaitGroup
	for i, d := range docs {
		wg.Go(func() { errs[i] = s.Body(d) })
	}
	wg.Wait()
	for _, i := range []int{0, 2, 4} {
		if errs[i] != nil {
			t.Errorf("valid document %d: %v", i, errs[i])
		}
	}
	if errs[1] == nil || !strings.Contains(errs[1].Error(), "ExpiryReminder4") || strings.Contains(errs[1].Error(), "parser error") {
		t.Errorf("invalid document: %v; want its own enumeration error only", errs[1])
	}
	if errs[3] == nil || !strings.Contains(errs[3].Error(), "parser error") || strings.Contains(errs[3].Error(), "ExpiryReminder4") {
		t.Errorf("malformed document: %v; want its own parser error only", errs[3])
	}
	if n := s.runs("AscioService.xsd"); n >= len(docs) {
		t.Errorf("%d documents checked at once took %d xmllint runs, want them shared", len(docs), n)
	}
}

// TestBatchesShareRuns: many documents at once take few runs.
func TestBatchesShareRuns(t *testing.T) {
	s := schemas(t)
	good := sample(t, "UploadMessage.body.xml")
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for range 200 {
		wg.Go(func() {
			if err := s.Body(good); err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d valid documents failed, e.g. %v", len(failed), failed[0])
	}
	if n := s.runs("AscioService.xsd"); n > 50 {
		t.Errorf("200 documents took %d xmllint runs, want at most 50", n)
	}
	t.Logf("200 documents, %d xmllint runs", s.runs("AscioService.xsd"))
}

// TestCloseWaitsAndRefuses: Close lets the run under way finish; a check
// asked for afterwards fails instead of hanging.
func TestCloseWaitsAndRefuses(t *testing.T) {
	s := schemas(t)
	good := sample(t, "UploadMessage.body.xml")
	done := make(chan error)
	go func() { done <- s.Body(good) }()
	for s.runs("AscioService.xsd") == 0 {
		runtime.Gosched() // until the run has started
	}
	s.Close()
	if err := <-done; err != nil {
		t.Errorf("the document under way when Close came: %v", err)
	}
	if err := s.Body(good); err == nil {
		t.Error("a check after Close passed")
	}
}

func BenchmarkBodyParallel(b *testing.B) {
	s, err := WriteSchemas()
	if err != nil {
		b.Skip(err)
	}
	defer s.Close()
	good := sample(b, "UploadMessage.body.xml")
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Body(good); err != nil {
				b.Error(err)
			}
		}
	})
}
