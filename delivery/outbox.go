package delivery

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
)

// Outbox writes each message into a folder instead of sending it: for a
// first run with no relay, and for operators who hand messages on by other
// means. Each file holds exactly the bytes that would have been sent.
type Outbox struct {
	Dir string
}

// Send writes raw to DIR/NAME.eml atomically (a temporary file, synced,
// then renamed), NAME derived from the message's Message-ID: a resend of
// the same step replaces its file rather than adding a second one.
func (o Outbox) Send(ctx context.Context, envelopeFrom string, to []string, raw []byte) (Reply, error) {
	return o.SendGated(ctx, envelopeFrom, to, raw, nil)
}

// SendGated is Send with gate called before the rename that makes the
// file appear (see Sender).
func (o Outbox) SendGated(_ context.Context, _ string, _ []string, raw []byte, gate func() error) (Reply, error) {
	fail := func(err error) (Reply, error) {
		return Reply{}, &Error{Stage: StageOutbox, Text: err.Error(), Err: err}
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return fail(err)
	}
	name := FileName(raw)
	tmp, err := os.CreateTemp(o.Dir, ".tmp-*")
	if err != nil {
		return fail(err)
	}
	_, err = tmp.Write(raw)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && gate != nil {
		if gerr := gate(); gerr != nil {
			os.Remove(tmp.Name())
			return Reply{}, classify(StageGate, gerr)
		}
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(o.Dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fail(err)
	}
	// The rename is durable only once the folder itself is synced.
	if d, err := os.Open(o.Dir); err == nil {
		d.Sync()
		d.Close()
	}
	return Reply{Text: "written to outbox as " + name}, nil
}

// FileName is the outbox name of a message: its Message-ID made safe for
// a file name, or the SHA-256 of its bytes when it has none.
func FileName(raw []byte) string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...)))).ReadMIMEHeader()
	id := strings.Trim(strings.TrimSpace(h.Get("Message-Id")), "<>")
	if id == "" {
		sum := sha256.Sum256(raw)
		id = hex.EncodeToString(sum[:])
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == '@' {
			return r
		}
		return '_'
	}, id) + ".eml"
}
