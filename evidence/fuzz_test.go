package evidence_test

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/errpd/errpd/evidence"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/report/reporttest"
)

// members reads every member of a zip by name; ok is false when the zip
// or a member cannot be read or a name repeats.
func members(z []byte) (map[string][]byte, bool) {
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return nil, false
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, false
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		rc.Close()
		if _, dup := out[f.Name]; err != nil || dup {
			return nil, false
		}
		out[f.Name] = b
	}
	return out, true
}

// FuzzVerify checks any bytes as an evidence zip against a fixed key with
// which only one bundle was ever signed, the one the evidence package's
// own helpers build here (it is the first seed). Property: Verify accepts
// only a zip whose members, read back, are that bundle's, name for name
// and byte for byte (manifest.sig: the signature it holds): an edit to a message, the report, the manifest or
// the signature, a member added, dropped or renamed, is refused. Bytes of
// the zip's own structure (timestamps, compression) may differ.
func FuzzVerify(f *testing.F) {
	s := reporttest.Seed(f)
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	var buf bytes.Buffer
	if _, err := evidence.Write(&buf, s.DB, report.Filter{Domains: []string{"proved.com"}}, priv, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		f.Fatal(err)
	}
	signed := buf.Bytes()
	want, ok := members(signed)
	if !ok {
		f.Fatal("the signed bundle does not read back")
	}
	f.Add(signed)
	f.Add(rewrite(f, signed, func(_ string, b []byte) []byte { return b }, nil)) // copied by another writer: verifies
	f.Add(rewrite(f, signed, func(name string, b []byte) []byte {
		if name == evidence.ReportName {
			return bytes.Replace(b, []byte("2025-01-25"), []byte("2025-01-24"), 1)
		}
		return b
	}, nil))
	f.Add(rewrite(f, signed, func(name string, b []byte) []byte {
		if name == evidence.SignatureName {
			return append([]byte(" "), b...) // still the same signature once trimmed
		}
		return b
	}, nil))
	f.Add(rewrite(f, signed, func(_ string, b []byte) []byte { return b }, map[string][]byte{"messages/extra.eml": []byte("Subject: hi\r\n\r\n")}))
	f.Add(signed[:len(signed)/2])
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, z []byte) {
		m, err := evidence.Verify(bytes.NewReader(z), int64(len(z)), pub)
		if err != nil {
			return
		}
		got, ok := members(z)
		if !ok {
			t.Fatalf("Verify accepted a zip whose members do not read back (manifest %+v)", m)
		}
		// The signature is not itself signed: Verify reads it trimmed,
		// so only the signature it holds must be the same.
		if sig, ok := got[evidence.SignatureName]; ok && bytes.Equal(signature(sig), signature(want[evidence.SignatureName])) {
			got[evidence.SignatureName] = want[evidence.SignatureName]
		}
		if !maps.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("Verify accepted a changed bundle: members %q, signed %q", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
		}
	})
}

// signature decodes manifest.sig as Verify does.
func signature(b []byte) []byte {
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil {
		return nil
	}
	return sig
}
