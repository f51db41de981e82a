package evidence

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrSignature is returned when the manifest's signature does not verify
// with the key given: the manifest was altered or signed by another key.
var ErrSignature = errors.New("manifest signature does not verify with this key")

// Problem is a file of the zip that does not match its manifest.
type Problem struct {
	File string
	Why  string
}

func (p *Problem) Error() string { return p.File + ": " + p.Why }

// Verify checks an evidence zip with the signer's public key: the
// manifest's signature, then every file the manifest lists (present, same
// size and SHA-256), and that the zip holds no file the manifest does not
// list. It returns the manifest and the first problem found.
func Verify(r io.ReaderAt, size int64, pub ed25519.PublicKey) (Manifest, error) {
	var m Manifest
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return m, fmt.Errorf("not a zip: %w", err)
	}
	members := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := members[f.Name]; dup {
			return m, &Problem{File: f.Name, Why: "appears twice in the zip"}
		}
		members[f.Name] = f
	}
	manifest, err := readMember(members, ManifestName)
	if err != nil {
		return m, err
	}
	sigText, err := readMember(members, SignatureName)
	if err != nil {
		return m, err
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sigText)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return m, &Problem{File: SignatureName, Why: "not a base64 Ed25519 signature"}
	}
	if !ed25519.Verify(pub, manifest, sig) {
		return m, ErrSignature
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return m, &Problem{File: ManifestName, Why: err.Error()}
	}
	if m.Format != Format {
		return m, &Problem{File: ManifestName, Why: fmt.Sprintf("format %q is not %q", m.Format, Format)}
	}
	listed := map[string]bool{ManifestName: true, SignatureName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		zf, ok := members[f.Name]
		if !ok {
			return m, &Problem{File: f.Name, Why: "listed in the manifest, missing from the zip"}
		}
		rc, err := zf.Open()
		if err != nil {
			return m, &Problem{File: f.Name, Why: err.Error()}
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return m, &Problem{File: f.Name, Why: err.Error()}
		}
		if sum := hex.EncodeToString(h.Sum(nil)); n != f.Size || sum != f.SHA256 {
			return m, &Problem{File: f.Name, Why: fmt.Sprintf("is %d bytes with SHA-256 %s; the manifest says %d bytes, %s", n, sum, f.Size, f.SHA256)}
		}
	}
	for _, f := range zr.File {
		if !listed[f.Name] {
			return m, &Problem{File: f.Name, Why: "in the zip but not in the manifest"}
		}
	}
	return m, nil
}

func readMember(members map[string]*zip.File, name string) ([]byte, error) {
	f, ok := members[name]
	if !ok {
		return nil, &Problem{File: name, Why: "missing from the zip"}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, &Problem{File: name, Why: err.Error()}
	}
	defer rc.Close()
	// The manifest of one domain's notices is small; bound it all the same.
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return nil, &Problem{File: name, Why: err.Error()}
	}
	return b, nil
}
