// Package evidence packs what an auditor needs to check a domain's notices
// without trusting errpd: a zip of the raw messages as sent (.eml), the
// report rows (CSV) and a manifest with each file's SHA-256, the manifest
// signed with the partner's Ed25519 key. Verify checks such a zip offline
// with the public key alone.
//
// Keys are PEM files: the private key PKCS #8 ("PRIVATE KEY"), the public
// key PKIX ("PUBLIC KEY"), as `errpd keygen` writes them and as
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` do.
package evidence

import (
	"archive/zip"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/store"
)

// Format names the layout of the zip, for the auditor's tools.
const Format = "errpd-evidence/1"

// Names of the fixed members of the zip.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig" // base64 of the Ed25519 signature over manifest.json's bytes
	ReportName    = "report.csv"
)

// Manifest lists every file of the zip but itself and its signature.
type Manifest struct {
	Format    string     `json:"format"`
	Created   time.Time  `json:"created"`
	Domains   []string   `json:"domains"`
	From      time.Time  `json:"from,omitzero"`
	To        time.Time  `json:"to,omitzero"`
	ChainHead store.Head `json:"chain_head"` // the audit chain's head when the zip was made
	PublicKey string     `json:"public_key"` // hex SHA-256 of the signing key's raw public key, to tell keys apart
	Files     []File     `json:"files"`
	Missing   []Missing  `json:"missing,omitempty"` // notices sent whose bytes are no longer kept
}

// File is one member of the zip.
type File struct {
	Name   string `json:"name"`
	Step   string `json:"step,omitempty"` // for a message: its step
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Missing is a notice whose message is not in the zip, and why.
type Missing struct {
	Step   string `json:"step"`
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

// Write writes the evidence zip of the notices f matches (f must name
// domains) to w, signed with key, and returns its manifest. The zip is
// streamed: one message at a time, then the report.
func Write(w io.Writer, db *store.DB, f report.Filter, key ed25519.PrivateKey, created time.Time) (Manifest, error) {
	if len(f.Domains) == 0 {
		return Manifest{}, fmt.Errorf("evidence: name at least one domain")
	}
	m := Manifest{Format: Format, Created: created.UTC(), Domains: f.Domains, From: f.From, To: f.To,
		PublicKey: Fingerprint(key.Public().(ed25519.PublicKey))}
	if err := db.View(func(tx *store.Tx) error {
		var err error
		m.ChainHead, err = tx.ChainHead()
		return err
	}); err != nil {
		return m, err
	}
	// The sent notices of a few domains are few: list them first, then
	// read each message in its own transaction (never a read transaction
	// inside another, which can deadlock against a writer growing the file).
	var sent []report.Row
	err := report.Rows(db, f, func(r report.Row) error {
		if r.SHA256 != "" { // else never rendered: nothing was sent
			sent = append(sent, r)
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	zw := zip.NewWriter(w)
	for _, r := range sent {
		var raw []byte
		var purged bool
		err := db.View(func(tx *store.Tx) error {
			var ok bool
			var err error
			raw, _, ok, err = tx.Message(r.Step)
			purged = !ok && tx.Purged(r.Step)
			if err == nil && !ok && !purged {
				err = fmt.Errorf("evidence: the message of %s is missing from the store (run errpd verify)", r.Step)
			}
			return err
		})
		if err != nil {
			return m, err
		}
		if purged {
			m.Missing = append(m.Missing, Missing{Step: r.Step, SHA256: r.SHA256, Reason: "purged after the retention period"})
			continue
		}
		name := "messages/" + strings.ReplaceAll(r.Step, "/", "_") + ".eml"
		file, err := add(zw, name, created, func(w io.Writer) error { _, err := w.Write(raw); return err })
		if err != nil {
			return m, err
		}
		if file.SHA256 != r.SHA256 {
			return m, fmt.Errorf("evidence: the message of %s hashes to %s, not the %s recorded when it was sent", r.Step, file.SHA256, r.SHA256)
		}
		file.Step = r.Step
		m.Files = append(m.Files, file)
	}
	file, err := add(zw, ReportName, created, func(w io.Writer) error {
		_, err := report.Write(w, db, f, report.CSV, created)
		return err
	})
	if err != nil {
		return m, err
	}
	m.Files = append(m.Files, file)
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, err
	}
	manifest = append(manifest, '\n')
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(key, manifest))
	for _, member := range []struct {
		name string
		body []byte
	}{{ManifestName, manifest}, {SignatureName, []byte(sig + "\n")}} {
		if _, err := add(zw, member.name, created, func(w io.Writer) error { _, err := w.Write(member.body); return err }); err != nil {
			return m, err
		}
	}
	return m, zw.Close()
}

// add writes one member, hashing it on the way.
func add(zw *zip.Writer, name string, modified time.Time, fill func(io.Writer) error) (File, error) {
	w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modified.UTC()})
	if err != nil {
		return File{}, err
	}
	h := &hashingWriter{w: w, h: sha256.New()}
	if err := fill(h); err != nil {
		return File{}, fmt.Errorf("evidence: %s: %w", name, err)
	}
	return File{Name: name, Size: h.n, SHA256: hex.EncodeToString(h.h.Sum(nil))}, nil
}

type hashingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashingWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// Fingerprint is the hex SHA-256 of a raw public key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}
