package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/errpd/errpd/bounce"
)

// errpd bounce on the store (no daemon): a message without a valid token
// is ignored with exit 0; one over bounces.max_message_bytes is refused
// with an error naming the key.
func TestBounceCommand(t *testing.T) {
	cfg := testConfig(t)
	f, _ := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("[bounces]\nmax_message_bytes = 2048\n")
	f.Close()
	dir := filepath.Dir(cfg)
	msg := filepath.Join(dir, "bounce.eml")
	os.WriteFile(msg, []byte("From: MAILER-DAEMON@mx.example\r\nTo: bounces+"+strings.Repeat("a", 32)+"@errp.example.net\r\nSubject: failure notice\r\n\r\n550 5.1.1 no such user\r\n"), 0o600)
	out, _, err := errpd(t, context.Background(), "bounce", "--config", cfg, msg)
	if err != nil || !strings.HasPrefix(out, "ignored: no valid bounce token") {
		t.Errorf("forged: %q, %v", out, err)
	}
	big := filepath.Join(dir, "big.eml")
	os.WriteFile(big, []byte(strings.Repeat("x", 4096)), 0o600)
	_, _, err = errpd(t, context.Background(), "bounce", "--config", cfg, big)
	if !errors.Is(err, bounce.ErrTooLarge) || !strings.Contains(err.Error(), "bounces.max_message_bytes") || exitCode(err) == 0 {
		t.Errorf("oversized: %v (exit %d)", err, exitCode(err))
	}
}
