package evidence_test

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/errpd/errpd/evidence"
	"github.com/errpd/errpd/report"
	"github.com/errpd/errpd/report/reporttest"
	"github.com/errpd/errpd/store"
)

func keys(t *testing.T) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	privPEM, pubPEM, err := evidence.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"key": privPEM, "key.pub": pubPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	priv, err := evidence.LoadPrivateKey(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := evidence.LoadPublicKey(filepath.Join(dir, "key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func build(t *testing.T, db *store.DB, priv ed25519.PrivateKey, domains ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := evidence.Write(&buf, db, report.Filter{Domains: domains}, priv, time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rewrite copies a zip, letting edit change each member's name and body;
// a nil body drops the member. extra members are appended.
func rewrite(t testing.TB, in []byte, edit func(name string, body []byte) []byte, extra map[string][]byte) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(in), int64(len(in)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	put := func(name string, body []byte) {
		w, err := zw.Create(name)
		if err == nil {
			_, err = w.Write(body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if body = edit(f.Name, body); body != nil {
			put(f.Name, body)
		}
	}
	for name, body := range extra {
		put(name, body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func verify(zipped []byte, pub ed25519.PublicKey) (evidence.Manifest, error) {
	return evidence.Verify(bytes.NewReader(zipped), int64(len(zipped)), pub)
}

func TestRoundTrip(t *testing.T) {
	s := reporttest.Seed(t)
	priv, pub := keys(t)
	z := build(t, s.DB, priv, "proved.com", "failed.com")
	m, err := verify(z, pub)
	if err != nil {
		t.Fatalf("an untouched zip fails: %v", err)
	}
	// proved.com's two notices and failed.com's refused one have bytes,
	// plus the report.
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	want := "messages/proved.com_20250301T000000Z_reminder1.eml messages/proved.com_20250301T000000Z_reminder2.eml messages/failed.com_20250301T000000Z_reminder1.eml report.csv"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("files = %s, want %s", got, want)
	}
	if m.ChainHead.Seq == 0 || m.ChainHead.Hash == "" {
		t.Errorf("chain head %+v is empty", m.ChainHead)
	}
	// The eml is the message as stored.
	zr, _ := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	rc, err := zr.Open("messages/proved.com_20250301T000000Z_reminder1.eml")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if id := store.StepID("proved.com", reporttest.Expiry(), "reminder1"); !bytes.Equal(got, reporttest.Raw(id)) {
		t.Errorf("eml differs from the stored message")
	}
}

func TestTampered(t *testing.T) {
	s := reporttest.Seed(t)
	priv, pub := keys(t)
	_, otherPub := keys(t)
	z := build(t, s.DB, priv, "proved.com")
	flip := func(target string) func(string, []byte) []byte {
		return func(name string, body []byte) []byte {
			if name == target {
				body = bytes.Clone(body)
				body[len(body)/2] ^= 0x01
			}
			return body
		}
	}
	keep := func(_ string, body []byte) []byte { return body }
	cases := []struct {
		name    string
		zip     []byte
		key     ed25519.PublicKey
		problem string // file named by the *Problem; "" for a signature error
	}{
		{"eml byte flipped", rewrite(t, z, flip("messages/proved.com_20250301T000000Z_reminder2.eml"), nil), pub, "messages/proved.com_20250301T000000Z_reminder2.eml"},
		{"report edited", rewrite(t, z, func(name string, body []byte) []byte {
			if name == evidence.ReportName {
				return bytes.Replace(body, []byte("2025-01-25T09:00:00Z"), []byte("2025-01-24T09:00:00Z"), 1)
			}
			return body
		}, nil), pub, evidence.ReportName},
		{"manifest edited", rewrite(t, z, flip(evidence.ManifestName), nil), pub, ""},
		{"message removed", rewrite(t, z, func(name string, body []byte) []byte {
			if strings.HasSuffix(name, "reminder1.eml") {
				return nil
			}
			return body
		}, nil), pub, "messages/proved.com_20250301T000000Z_reminder1.eml"},
		{"file added", rewrite(t, z, keep, map[string][]byte{"messages/extra.eml": []byte("Subject: hi\r\n\r\n")}), pub, "messages/extra.eml"},
		{"another key", z, otherPub, ""},
	}
	for _, c := range cases {
		_, err := verify(c.zip, c.key)
		var p *evidence.Problem
		switch {
		case err == nil:
			t.Errorf("%s: verifies", c.name)
		case c.problem == "" && !errors.Is(err, evidence.ErrSignature):
			t.Errorf("%s: %v, want a signature error", c.name, err)
		case c.problem != "" && (!errors.As(err, &p) || p.File != c.problem):
			t.Errorf("%s: %v, want a problem with %s", c.name, err, c.problem)
		}
	}
	if _, err := verify(rewrite(t, z, keep, nil), pub); err != nil {
		t.Errorf("a zip copied unchanged fails: %v", err)
	}
}

func TestNeedsDomain(t *testing.T) {
	s := reporttest.Seed(t)
	priv, _ := keys(t)
	if _, err := evidence.Write(io.Discard, s.DB, report.Filter{}, priv, time.Now()); err == nil {
		t.Error("evidence of every domain at once was accepted")
	}
}
