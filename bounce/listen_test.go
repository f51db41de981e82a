package bounce

import (
	"bytes"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"
)

func startListener(t *testing.T, su setup) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Recorder: su.rec, Domains: []string{"errp.example.net"}, Name: "errpd.test", Timeout: 5 * time.Second, Log: su.rec.Log}
	srv := l.Server()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

func TestListener(t *testing.T) {
	su := newSetup(t)
	addr := startListener(t, su)
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(""); err != nil {
		t.Fatal(err)
	}
	// Only the bounce domains: the listener is no open relay.
	if err := c.Rcpt("someone@elsewhere.example"); err == nil || !strings.HasPrefix(err.Error(), "550") {
		t.Errorf("RCPT outside the bounce domain: %v, want 550", err)
	}
	if err := c.Rcpt(strings.ToUpper(su.addr)); err != nil {
		t.Fatalf("RCPT %s: %v", su.addr, err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(readTestdata(t, "dsn-hard.eml", su.addr))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if s, d, audits := su.step(t); s.Bounce == nil || s.Bounce.Status != "5.1.1" || audits != 1 || d.Flag == nil {
		t.Errorf("after the listener took a DSN: %+v, %d audits, flag %+v", s.Bounce, audits, d.Flag)
	}

	// Over max_message_bytes: refused with 552, nothing recorded.
	su.rec.MaxBytes = 4096
	c2, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.Mail("")
	c2.Rcpt(su.addr)
	w, err = c2.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("x\r\n"), 10000))
	if err := w.Close(); err == nil || !strings.HasPrefix(err.Error(), "552") {
		t.Errorf("oversized message: %v, want 552", err)
	}
	if _, _, audits := su.step(t); audits != 1 {
		t.Errorf("%d audits after the oversized message", audits)
	}
}
