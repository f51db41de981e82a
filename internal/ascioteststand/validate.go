package ascioteststand

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/ascio/wsdl"
)

// ErrNoXMLLint is returned when xmllint (Debian: libxml2-utils) is not
// installed; tests skip on it.
var ErrNoXMLLint = errors.New("xmllint not found (install libxml2-utils): Ascio schema checks need it")

// Schemas is a folder holding Ascio's XSDs, written out from package
// ascio/wsdl for xmllint.
type Schemas struct{ dir string }

// WriteSchemas writes the XSDs into a new temporary folder. Remove it with
// Close.
func WriteSchemas() (*Schemas, error) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		return nil, ErrNoXMLLint
	}
	dir, err := os.MkdirTemp("", "ascio-xsd-")
	if err != nil {
		return nil, err
	}
	for _, name := range []string{wsdl.BodySchema, wsdl.HeaderSchema, "Serialization.xsd", "Arrays.xsd"} {
		b, err := fs.ReadFile(wsdl.Files, name)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return &Schemas{dir: dir}, nil
}

// Close removes the folder.
func (s *Schemas) Close() error { return os.RemoveAll(s.dir) }

// Body validates a SOAP body payload (e.g. <service:UploadMessage ...>)
// against AscioService.xsd.
func (s *Schemas) Body(payload []byte) error { return s.validate(wsdl.BodySchema, payload) }

// Header validates a SecurityHeaderDetails payload against
// ascio-2013-02.xsd.
func (s *Schemas) Header(payload []byte) error { return s.validate(wsdl.HeaderSchema, payload) }

// Envelope validates a whole request envelope as NOTES.md describes: the
// header's payload and the body's payload, each on its own. The header must
// be present, since every Ascio call carries SecurityHeaderDetails.
func (s *Schemas) Envelope(env []byte) error {
	h, err := Payload(env, "Header")
	if err != nil {
		return err
	}
	if err := s.Header(h); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	return s.Response(env)
}

// Response validates the body payload of an envelope (answers have no
// header).
func (s *Schemas) Response(env []byte) error {
	b, err := Payload(env, "Body")
	if err != nil {
		return err
	}
	if err := s.Body(b); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	return nil
}

func (s *Schemas) validate(xsd string, doc []byte) error {
	f, err := os.CreateTemp(s.dir, "doc-*.xml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(doc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", filepath.Join(s.dir, xsd), f.Name()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xmllint: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// Payload returns the bytes, as written, of the first element inside an
// envelope's Header or Body. The payload must declare its own namespaces to
// validate on its own, which is how errpd writes them.
func Payload(env []byte, part string) ([]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(env))
	depth, inside := 0, false
	var start int64
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("envelope has no %s payload: %v", part, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Space == ascio.NSSoap && t.Name.Local == part {
				inside = true
			} else if inside && depth == 3 {
				start = off
			}
		case xml.EndElement:
			if inside && depth == 3 {
				return env[start:d.InputOffset()], nil
			}
			if inside && depth == 2 {
				return nil, fmt.Errorf("envelope %s is empty", part)
			}
			depth--
		}
	}
}
