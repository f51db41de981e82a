package delivery

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestGateHoldsTheHandOver: the relay has nothing while the gate runs, gets
// the message once it opens, and gets nothing when it refuses; the next
// message still goes through.
func TestGateHoldsTheHandOver(t *testing.T) {
	r := startRelay(t, &relay{})
	s := newSMTP(t, r.addr, Options{})
	count := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.got)
	}
	atGate := -1
	_, err := s.SendGated(context.Background(), "b@errp.example.net", []string{"x@example.org"}, tricky(1), func() error {
		atGate = count()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if atGate != 0 || count() != 1 {
		t.Fatalf("relay had %d messages at the gate and %d after; want 0 and 1", atGate, count())
	}

	refused := errors.New("intent not recorded")
	_, err = s.SendGated(context.Background(), "b@errp.example.net", []string{"x@example.org"}, tricky(2), func() error { return refused })
	var e *Error
	if !errors.As(err, &e) || e.Stage != StageGate || e.Permanent || !errors.Is(err, refused) {
		t.Fatalf("refused gate: got %v, want a temporary error at the gate wrapping the refusal", err)
	}
	if _, err := s.Send(context.Background(), "b@errp.example.net", []string{"x@example.org"}, tricky(3)); err != nil {
		t.Fatalf("send after a refused gate: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) != 2 || string(r.got[1].data) != string(tricky(3)) {
		t.Fatalf("relay got %d messages; the refused one must not be among them", len(r.got))
	}
}

func TestOutboxGate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o := Outbox{Dir: dir}
	refused := errors.New("intent not recorded")
	if _, err := o.SendGated(context.Background(), "", nil, tricky(4), func() error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("got %v, want the gate's refusal", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused message left %d files in the outbox", len(entries))
	}
	var files int
	if _, err := o.SendGated(context.Background(), "", nil, tricky(4), func() error {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if filepath.Ext(e.Name()) == ".eml" {
				files++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if files != 0 {
		t.Errorf("the message was visible in the outbox before the gate opened")
	}
	if _, err := os.Stat(filepath.Join(dir, "4@example.net.eml")); err != nil {
		t.Errorf("after the gate: %v", err)
	}
}
