package delivery

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/errpd/errpd/internal/failure"
)

func TestOutboxWritesExactBytesOnceEachStep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	o := Outbox{Dir: dir}
	raw := tricky(7)
	reply, err := o.Send(context.Background(), "a@example.net", []string{"b@example.org"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reply.String(), "7@example.net.eml") {
		t.Errorf("reply %q does not name the file", reply)
	}
	got, err := os.ReadFile(filepath.Join(dir, "7@example.net.eml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, raw) {
		t.Errorf("outbox file differs from the message:\n%q\n%q", got, raw)
	}
	// A resend of the same message replaces its file; nothing else is left.
	if _, err := o.Send(context.Background(), "a@example.net", []string{"b@example.org"}, raw); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the outbox, want 1", len(entries))
	}
}

func TestFileName(t *testing.T) {
	tests := map[string]string{
		"Message-ID: <abc@example.net>\r\n\r\nbody":       "abc@example.net.eml",
		"message-id:  <../../etc/passwd>\r\n\r\nbody":     ".._.._etc_passwd.eml",
		"Subject: no id\r\n\r\nMessage-ID: <in@body>\r\n": "", // hashed
	}
	for raw, want := range tests {
		got := FileName([]byte(raw))
		if want == "" {
			if len(got) != 64+4 || strings.Contains(got, "in@body") {
				t.Errorf("FileName(%q) = %q, want the hash", raw, got)
			}
			continue
		}
		if got != want {
			t.Errorf("FileName(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestOutboxFailureIsTemporary(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	_, err := Outbox{Dir: filepath.Join(file, "outbox")}.Send(context.Background(), "", nil, tricky(1))
	if err == nil || failure.IsPermanent(err) {
		t.Errorf("unwritable outbox: %v, want a temporary error", err)
	}
}
