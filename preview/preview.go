// Package preview finds what a notice of a stored domain would be built
// from, and shows a built message as an operator reads it. `errpd preview`
// and the console both use it; the daemon's renderer uses StepInput.
package preview

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"slices"

	"github.com/errpd/errpd/message"
	"github.com/errpd/errpd/scheduler"
	"github.com/errpd/errpd/store"
	"github.com/errpd/errpd/templates"
)

// Input finds what a notice of a stored domain would be built from:
// the current cycle's registrant snapshot and brand when there is one,
// else the domain's.
func Input(tx *store.Tx, name string, n scheduler.Notice) (message.Input, error) {
	d, ok, err := tx.Domain(name)
	if err != nil {
		return message.Input{}, err
	}
	if !ok {
		return message.Input{}, fmt.Errorf("domain %s is not in the store (errpd import, or errpd domains to list them)", name)
	}
	cyc := store.Cycle{Domain: d.Name, Expiry: d.Expiry, Mode: d.Mode, Registrant: d.Registrant, Brand: d.Brand}
	if d.Cycle != "" {
		if got, ok, err := tx.Cycle(d.Cycle); err != nil {
			return message.Input{}, err
		} else if ok {
			cyc = got
		}
	}
	step := store.Step{ID: store.StepID(cyc.Domain, cyc.Expiry, n), Domain: cyc.Domain, Expiry: cyc.Expiry, Notice: n}
	in := StepInput(step, cyc)
	if !slices.Contains(templates.Kinds, string(cyc.Mode)+"-"+string(n)) {
		return in, fmt.Errorf("%s is in mode %s, which sends no %s", name, cyc.Mode, n)
	}
	return in, nil
}

// StepInput is the builder's input for a step of a cycle.
func StepInput(s store.Step, c store.Cycle) message.Input {
	return message.Input{
		StepID: s.ID, Domain: s.Domain, Expiry: s.Expiry, Mode: string(c.Mode), Notice: string(s.Notice),
		Brand:      c.Brand,
		Registrant: message.Registrant{Name: c.Registrant.Name, Email: c.Registrant.Email, Language: c.Registrant.Language},
	}
}

// Text writes the header block as it will be sent, then the plain text
// alternative decoded.
func Text(w io.Writer, m message.Message) error {
	head, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
	var out bytes.Buffer
	out.Write(bytes.ReplaceAll(head, []byte("\r\n"), []byte("\n")))
	out.WriteString("\n\n")
	pm, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	_, params, err := mime.ParseMediaType(pm.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	mr := multipart.NewReader(pm.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return errors.New("the message has no text/plain part")
		}
		if err != nil {
			return err
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			body, err := io.ReadAll(p)
			if err != nil {
				return err
			}
			out.Write(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")))
			lang := "language " + m.Language
			if m.LanguageFallback != "" {
				lang += ", no template in the registrant's " + m.LanguageFallback
			}
			fmt.Fprintf(&out, "\n(templates: %s; %s; %d bytes as sent; --raw prints them)\n", m.Source, lang, len(m.Raw))
			_, err = w.Write(out.Bytes())
			return err
		}
	}
}
