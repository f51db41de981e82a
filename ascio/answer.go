package ascio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/errpd/errpd/internal/peertext"
)

const (
	// maxAnswer bounds what is read of an answer. Ascio's are a few
	// kilobytes; GetMessages without attachment contents stays far below.
	// An endpoint that streams more is not Ascio.
	maxAnswer = 16 << 20
	// maxErrors bounds the ErrorCodes kept of one queue message.
	maxErrors = 16
	// excerptMax bounds the part of an unusable answer an error quotes.
	excerptMax = 512
)

// readAnswer reads a whole answer of at most maxAnswer bytes. A longer one
// is an error rather than silently cut, which would read as malformed.
func readAnswer(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if len(data) > maxAnswer {
		return nil, fmt.Errorf("%w: more than %d MiB, stopped reading", ErrTooLarge, maxAnswer>>20)
	}
	return data, nil
}

// result is an operation's decoded Result element; each one embeds
// wireResult.
type result interface{ wire() *wireResult }

func (w *wireResult) wire() *wireResult { return w }

type soapFault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
}

var (
	nameEnvelope = xml.Name{Space: NSSoap, Local: "Envelope"}
	nameBody     = xml.Name{Space: NSSoap, Local: "Body"}
	nameFault    = xml.Name{Space: NSSoap, Local: "Fault"}
)

// decode reads a SOAP 1.1 answer to op: an Envelope whose Body holds
// either a Fault, returned as such, or op's Response wrapper with op's
// Result in it, decoded into out. Names are matched with their namespaces
// (prefixes do not matter), and the document is read to its end, so that
// an answer cut short is not taken for a whole one.
func decode(data []byte, op string, out result) (*soapFault, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	root, err := nextElement(d)
	if err != nil {
		return nil, fmt.Errorf("not XML: %w", err)
	}
	if root.Name != nameEnvelope {
		return nil, fmt.Errorf("answer is %s, not a SOAP 1.1 Envelope", describe(root.Name))
	}
	if _, err := child(d, nameBody); err != nil {
		return nil, err
	}
	first, err := nextElement(d)
	if err != nil {
		return nil, fmt.Errorf("SOAP Body: %w", err)
	}
	var fault *soapFault
	switch first.Name {
	case nameFault:
		fault = new(soapFault)
		if err := d.DecodeElement(fault, &first); err != nil {
			return nil, fmt.Errorf("SOAP Fault: %w", err)
		}
	case xml.Name{Space: NSService, Local: op + "Response"}:
		res, err := child(d, xml.Name{Space: NSService, Local: op + "Result"})
		if err != nil {
			return nil, err
		}
		if isNil(res) {
			return nil, fmt.Errorf("%sResult is nil", op)
		}
		if err := d.DecodeElement(out, &res); err != nil {
			return nil, fmt.Errorf("%sResult: %w", op, err)
		}
	default:
		return nil, fmt.Errorf("SOAP Body holds %s, not %sResponse", describe(first.Name), op)
	}
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			return fault, nil
		} else if err != nil {
			return nil, fmt.Errorf("answer cut short or malformed: %w", err)
		}
	}
}

// nextElement returns the next start element, skipping text, comments
// and processing instructions; an end element first means there is none.
func nextElement(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return xml.StartElement{}, errors.New("empty answer")
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("no element inside %s", describe(t.Name))
		}
	}
}

// child finds the element named name among the children of the element
// being read, skipping the others (the SOAP Header).
func child(d *xml.Decoder, name xml.Name) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("looking for %s: %w", describe(name), err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name == name {
				return t, nil
			}
			if err := d.Skip(); err != nil {
				return xml.StartElement{}, fmt.Errorf("looking for %s: %w", describe(name), err)
			}
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("no %s in %s", describe(name), describe(t.Name))
		}
	}
}

func isNil(e xml.StartElement) bool {
	for _, a := range e.Attr {
		if a.Name == (xml.Name{Space: NSInstance, Local: "nil"}) && a.Value == "true" {
			return true
		}
	}
	return false
}

// describe names an element with its namespace, capped: both come from
// the peer.
func describe(n xml.Name) string {
	if n.Space == "" {
		return fmt.Sprintf("<%s>", peertext.CapN(n.Local, 128))
	}
	return fmt.Sprintf("<%s> in %q", peertext.CapN(n.Local, 128), peertext.CapN(n.Space, 128))
}

// capped is peertext.Cap, for every text an answer hands to errpd.
func capped(s string) string { return peertext.Cap(s) }
