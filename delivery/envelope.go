package delivery

import (
	"errors"
	"io"
	"net/textproto"
	"strings"
)

// open starts a mail transaction on cn: MAIL FROM, a RCPT TO per
// recipient and DATA, and returns the writer for the message.
//
// When the relay offers PIPELINING (RFC 2920), the commands go out in one
// write and their replies are read after it: one round trip instead of two
// plus one per recipient. That is most of a notice's time over a relay a
// few milliseconds away, and on loopback it leaves errpd's commit, not the
// relay's replies, as what each message waits for. go-mail's client sends
// each command on its own, so the transaction is spoken here, over its
// connection; greeting, EHLO, STARTTLS, AUTH, RSET and QUIT stay go-mail's.
func (cn *conn) open(from string, to []string, deadline func() error) (io.WriteCloser, error) {
	cmds := []string{"MAIL FROM:<" + from + ">" + cn.mailParams()}
	for _, r := range to {
		cmds = append(cmds, "RCPT TO:<"+r+">")
	}
	cmds = append(cmds, "DATA")
	for _, c := range cmds {
		if strings.ContainsAny(c, "\r\n") {
			// An address with a line break would smuggle in commands.
			return nil, &Error{Stage: StageMail, Text: "an envelope address contains a line break", Permanent: true}
		}
	}
	stage := func(i int) Stage {
		switch i {
		case 0:
			return StageMail
		case len(cmds) - 1:
			return StageData
		}
		return StageRcpt
	}
	expect := func(i int) int {
		switch i {
		case 0:
			return 250
		case len(cmds) - 1:
			return 354
		}
		return 25 // 250 or 251
	}
	if err := deadline(); err != nil {
		return nil, classify(StageMail, err)
	}
	text := cn.c.Text
	if ok, _ := cn.c.Extension("PIPELINING"); !ok {
		for i, c := range cmds {
			if i > 0 {
				if err := deadline(); err != nil {
					return nil, classify(stage(i), err)
				}
			}
			if err := text.PrintfLine("%s", c); err != nil {
				return nil, classify(stage(i), err)
			}
			if _, _, err := text.ReadResponse(expect(i)); err != nil {
				return nil, classify(stage(i), err)
			}
		}
		return text.DotWriter(), nil
	}

	for _, c := range cmds {
		text.W.WriteString(c + "\r\n")
	}
	if err := text.W.Flush(); err != nil {
		return nil, classify(StageMail, err)
	}
	// Every reply is read, even after a refusal: they are on their way,
	// and the next transaction must not read this one's.
	var refused *Error
	for i := range cmds {
		_, _, err := text.ReadResponse(expect(i))
		var tp *textproto.Error
		switch {
		case err == nil && i == len(cmds)-1 && refused != nil:
			// The relay took DATA although a command before it was refused
			// (some recipients were): it waits for a message that must not
			// come. Only dropping the connection ends that without
			// delivering anything.
			cn.broken = true
			return nil, refused
		case err == nil:
		case !errors.As(err, &tp):
			// Gone or too slow: a reply that comes late would be read as
			// the next transaction's, so the connection is not reused.
			cn.broken = true
			if refused != nil {
				return nil, refused
			}
			return nil, classify(stage(i), err)
		case tp.Code == 421:
			return nil, classify(stage(i), err) // closing: nothing more will come
		case refused == nil:
			refused = classify(stage(i), err)
		}
	}
	if refused != nil {
		return nil, refused
	}
	return text.DotWriter(), nil
}

// mailParams are MAIL FROM's parameters, as go-mail would send them.
func (cn *conn) mailParams() string {
	var p string
	if ok, _ := cn.c.Extension("8BITMIME"); ok {
		p += " BODY=8BITMIME"
	}
	if ok, _ := cn.c.Extension("SMTPUTF8"); ok {
		p += " SMTPUTF8"
	}
	return p
}
