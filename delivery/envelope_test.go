package delivery

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/internal/peertext"
)

// scripted is a relay on loopback that speaks SMTP line by line as a test
// scripts it, so that the order of commands and replies on the wire can be
// checked, which a full SMTP server hides.
type scripted struct {
	addr  string
	lines chan string // every line the client sent, in order
	conns chan struct{}
}

// startScripted runs a relay. Its EHLO offers exts. In pipelining mode it
// answers nothing until DATA has arrived, so a client that waits for each
// reply before the next command deadlocks (and the test times out).
// replies maps a command's first word (and RCPT's address) to its reply;
// "." is the reply to the end of DATA, where "CLOSE" hangs up instead; a
// DATA reply starting with "~" comes a second after the others.
func startScripted(t *testing.T, exts []string, pipelining bool, replies map[string]string) *scripted {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	s := &scripted{addr: l.Addr().String(), lines: make(chan string, 1000), conns: make(chan struct{}, 10)}
	reply := func(line string) string {
		word, arg, _ := strings.Cut(line, ":")
		word = strings.Fields(word + " ")[0]
		if r, ok := replies[word+":"+arg]; ok {
			return r
		}
		if r, ok := replies[word]; ok {
			return r
		}
		switch word {
		case "DATA":
			return "354 go ahead"
		case "QUIT":
			return "221 bye"
		}
		return "250 ok"
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns <- struct{}{}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				r := bufio.NewReader(c)
				c.Write([]byte("220 scripted ESMTP\r\n"))
				var held []string // replies not yet sent (pipelining)
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						s.lines <- "EOF"
						return
					}
					line = strings.TrimRight(line, "\r\n")
					if inData {
						if line == "." {
							inData = false
							s.lines <- "."
							switch r := replies["."]; r {
							case "":
								c.Write([]byte("250 2.0.0 queued as SCRIPTED\r\n"))
							case "CLOSE": // hang up without an answer
								return
							default:
								c.Write([]byte(r + "\r\n"))
							}
						} else {
							s.lines <- "body:" + line
						}
						continue
					}
					s.lines <- line
					if strings.HasPrefix(line, "EHLO") {
						ext := "250-scripted\r\n"
						for _, e := range exts {
							ext += "250-" + e + "\r\n"
						}
						c.Write([]byte(ext + "250 HELP\r\n"))
						continue
					}
					rep := reply(line)
					if !pipelining || strings.HasPrefix(line, "RSET") || strings.HasPrefix(line, "QUIT") {
						c.Write([]byte(rep + "\r\n"))
						inData = strings.HasPrefix(line, "DATA") && strings.HasPrefix(rep, "354")
						continue
					}
					held = append(held, rep)
					if strings.HasPrefix(line, "DATA") {
						if strings.HasPrefix(rep, "~") { // DATA's reply comes a second late
							c.Write([]byte(strings.Join(held[:len(held)-1], "\r\n") + "\r\n"))
							time.Sleep(time.Second)
							held, rep = []string{rep[1:]}, rep[1:]
						}
						c.Write([]byte(strings.Join(held, "\r\n") + "\r\n"))
						held = nil
						inData = strings.HasPrefix(rep, "354")
					}
				}
			}()
		}
	}()
	return s
}

// until collects the lines sent up to and including the first one that
// satisfies stop.
func (s *scripted) until(t *testing.T, stop func(string) bool) []string {
	t.Helper()
	var got []string
	for {
		select {
		case l := <-s.lines:
			got = append(got, l)
			if stop(l) {
				return got
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("relay saw %q and then nothing", got)
		}
	}
}

func TestEnvelopeOnTheWire(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		name := "one command at a time"
		exts := []string{"8BITMIME"}
		if pipelining {
			name, exts = "pipelined", []string{"PIPELINING", "8BITMIME"}
		}
		t.Run(name, func(t *testing.T) {
			r := startScripted(t, exts, pipelining, nil)
			s := newSMTP(t, r.addr, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			reply, err := s.Send(ctx, "bounces@errp.example.net", []string{"b@example.org"}, tricky(1))
			if err != nil {
				t.Fatal(err)
			}
			if reply.String() != "250 2.0.0 queued as SCRIPTED" {
				t.Errorf("reply %q", reply)
			}
			var got []string
			for _, l := range r.until(t, func(l string) bool { return l == "." }) {
				if !strings.HasPrefix(l, "body:") {
					got = append(got, l)
				}
			}
			want := []string{"EHLO errpd.test", "MAIL FROM:<bounces@errp.example.net> BODY=8BITMIME", "RCPT TO:<b@example.org>", "DATA", "."}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("on the wire:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestPipelinedRefusals(t *testing.T) {
	tests := []struct {
		name    string
		to      []string
		replies map[string]string
		stage   Stage
		code    int
		dropped bool // the connection had to be closed
	}{
		{"MAIL refused", []string{"b@example.org"}, map[string]string{"MAIL": "553 5.1.8 bad sender", "RCPT": "503 5.5.1 need MAIL", "DATA": "503 5.5.1 need RCPT"}, StageMail, 553, false},
		{"the only RCPT refused", []string{"b@example.org"}, map[string]string{"RCPT": "550 5.1.1 no such user", "DATA": "554 5.5.1 no valid recipients"}, StageRcpt, 550, false},
		{"DATA refused", []string{"b@example.org"}, map[string]string{"DATA": "451 4.3.0 try later"}, StageData, 451, false},
		// One recipient refused, the other taken: the relay then takes
		// DATA and waits for a message errpd must not send it.
		{"one of two RCPTs refused", []string{"x@example.org", "b@example.org"}, map[string]string{"RCPT:<x@example.org>": "550 5.1.1 no such user"}, StageRcpt, 550, true},
		{"421 closes", []string{"b@example.org"}, map[string]string{"RCPT": "421 4.3.0 closing"}, StageRcpt, 421, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startScripted(t, []string{"PIPELINING"}, true, tc.replies)
			s := newSMTP(t, r.addr, Options{})
			_, err := s.Send(context.Background(), "bounces@errp.example.net", tc.to, tricky(1))
			var e *Error
			if !errors.As(err, &e) || e.Stage != tc.stage || e.Code != tc.code {
				t.Fatalf("error %v, want %d at %s", err, tc.code, tc.stage)
			}
			// What the relay saw after DATA: a RSET that keeps the
			// connection, or the connection dropped; never a message.
			got := r.until(t, func(l string) bool { return l == "RSET" || l == "EOF" || l == "." })
			last := got[len(got)-1]
			for _, l := range got {
				if strings.HasPrefix(l, "body:") || l == "." {
					t.Fatalf("message data sent after a refusal: %q", got)
				}
			}
			if dropped := last == "EOF"; dropped != tc.dropped {
				t.Errorf("connection dropped %v, want %v (%q)", dropped, tc.dropped, got)
			}
		})
	}
}

func TestLineBreakInAddressIsRefused(t *testing.T) {
	r := startScripted(t, []string{"PIPELINING"}, true, nil)
	s := newSMTP(t, r.addr, Options{})
	_, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"b@example.org>\r\nRCPT TO:<c@example.org"}, tricky(1))
	if !failure.IsPermanent(err) || !strings.Contains(err.Error(), "line break") {
		t.Fatalf("error %v, want a permanent refusal naming the line break", err)
	}
	got := r.until(t, func(l string) bool { return strings.HasPrefix(l, "EHLO") })
	select {
	case l := <-r.lines:
		if strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "RCPT") {
			t.Errorf("sent %q after %q", l, got)
		}
	case <-time.After(100 * time.Millisecond):
	}
}

// After the final dot only a reply is an answer: a relay that hangs up or
// says nothing may have queued the message, and resending it could deliver
// it twice.
func TestLostAfterTheDotIsUnknown(t *testing.T) {
	tests := []struct {
		name      string
		dot       string
		timeout   time.Duration
		unknown   bool
		permanent bool
	}{
		{"hang-up", "CLOSE", 0, true, false},
		{"no answer before the send's deadline", "SILENT", 300 * time.Millisecond, true, false},
		{"451", "451 4.3.0 queue write error", 0, false, false},
		{"554", "554 5.7.1 rejected", 0, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var addr string
			if tc.dot == "SILENT" {
				addr = startSilent(t)
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			} else {
				addr = startScripted(t, []string{"PIPELINING"}, true, map[string]string{".": tc.dot}).addr
			}
			s := newSMTP(t, addr, Options{})
			_, err := s.Send(ctx, "bounces@errp.example.net", []string{"b@example.org"}, tricky(1))
			if err == nil {
				t.Fatal("no error")
			}
			if failure.IsInDoubt(err) != tc.unknown || failure.IsPermanent(err) != tc.permanent {
				t.Errorf("%v: unknown %v permanent %v, want %v %v", err, failure.IsInDoubt(err), failure.IsPermanent(err), tc.unknown, tc.permanent)
			}
			if tc.unknown && !strings.Contains(err.Error(), "may have accepted") {
				t.Errorf("error %q does not say the message may have gone", err)
			}
		})
	}
}

// startSilent is a relay that takes a whole message and never answers its
// final dot.
func startSilent(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		c.Write([]byte("220 silent ESMTP\r\n"))
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case inData: // the final dot too: no answer, until the client hangs up
			case strings.HasPrefix(line, "EHLO"):
				c.Write([]byte("250-silent\r\n250 PIPELINING\r\n"))
			case line == "DATA":
				c.Write([]byte("354 go ahead\r\n"))
				inData = true
			default:
				c.Write([]byte("250 ok\r\n"))
			}
		}
	}()
	return l.Addr().String()
}

// A reply that comes after errpd stopped waiting must not be read as the
// next transaction's: the connection is dropped, not reused.
func TestLateReplyDropsTheConnection(t *testing.T) {
	r := startScripted(t, []string{"PIPELINING"}, true, map[string]string{
		"RCPT": "550 5.1.1 no such user", "DATA": "~503 5.5.1 no valid recipients"})
	s := newSMTP(t, r.addr, Options{Timeout: 300 * time.Millisecond})
	_, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"b@example.org"}, tricky(1))
	if !failure.IsPermanent(err) || !strings.Contains(err.Error(), "550") {
		t.Fatalf("error %v, want the RCPT's 550", err)
	}
	got := r.until(t, func(l string) bool { return l == "RSET" || l == "EOF" })
	if got[len(got)-1] != "EOF" {
		t.Errorf("connection kept after a late reply: %q", got)
	}
}

// A send whose time runs out while the gate holds it never writes the
// dot: the relay has nothing, so the outcome is known (temporary).
func TestTimeoutInTheGateIsNotUnknown(t *testing.T) {
	r := startScripted(t, []string{"PIPELINING"}, true, nil)
	s := newSMTP(t, r.addr, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.SendGated(ctx, "bounces@errp.example.net", []string{"b@example.org"}, tricky(1), func() error {
		<-ctx.Done() // a slow fsync
		return nil
	})
	if err == nil || failure.IsInDoubt(err) || failure.IsPermanent(err) {
		t.Fatalf("error %v: want a temporary failure of known outcome", err)
	}
	got := r.until(t, func(l string) bool { return l == "." || l == "EOF" })
	if got[len(got)-1] == "." {
		t.Errorf("the dot was sent after the send's time ran out: %q", got)
	}
}

// A relay's reply is the relay's to size: errpd keeps 2 KiB of it, marked
// as cut, in the error it stores and logs, for a refusal and an acceptance.
func TestLongRepliesAreCapped(t *testing.T) {
	long := strings.Repeat("y", 60_000)
	for _, dot := range []string{"550 5.7.1 " + long, "250 2.0.0 queued " + long} {
		addr := startScripted(t, []string{"PIPELINING"}, true, map[string]string{".": dot}).addr
		s := newSMTP(t, addr, Options{})
		reply, err := s.Send(context.Background(), "bounces@errp.example.net", []string{"b@example.org"}, tricky(1))
		text := reply.String()
		if err != nil {
			text = err.Error()
			if !failure.IsPermanent(err) {
				t.Errorf("550 is not permanent: %v", failure.Of(err))
			}
		}
		if len(text) > peertext.Max+200 || !strings.Contains(text, "[cut: ") {
			t.Errorf("reply %.40q... is %d bytes, want at most about %d and marked as cut", text, len(text), peertext.Max)
		}
	}
}
