package delivery

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/failure"
)

// testPKI is a CA and a relay certificate for relay.test, made per test.
type testPKI struct {
	roots *x509.CertPool
	cert  tls.Certificate
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "errpd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay.test"}, DNSNames: []string{"relay.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return testPKI{roots: roots, cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
}

// startTLSRelay runs the recording relay with STARTTLS offered, or, with
// implicit set, behind TLS from the first byte.
func startTLSRelay(t *testing.T, r *relay, pki testPKI, implicit bool) *relay {
	t.Helper()
	srv := gosmtp.NewServer(r)
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pki.cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	if implicit {
		l = tls.NewListener(l, srv.TLSConfig)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

// sawTLS reports whether every connection the relay took is now under TLS.
func (r *relay) sawTLS() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		if _, ok := c.TLSConnectionState(); !ok {
			return false
		}
	}
	return len(r.conns) > 0
}

func TestTLSModes(t *testing.T) {
	pki := newPKI(t)
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			r := startTLSRelay(t, &relay{password: "right-pass"}, pki, mode == "tls")
			s := newSMTP(t, r.addr, Options{TLS: mode, Username: "errpd", Password: "right-pass",
				TLSConfig: &tls.Config{RootCAs: pki.roots, ServerName: "relay.test"}})
			raw := tricky(1)
			if _, err := s.Send(context.Background(), "b@errp.example.net", []string{"x@example.org"}, raw); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			got := r.got
			r.mu.Unlock()
			if len(got) != 1 || !bytes.Equal(got[0].data, raw) {
				t.Fatalf("relay got %d messages; want the bytes sent", len(got))
			}
			if !r.sawTLS() {
				t.Error("the message did not travel under TLS")
			}
		})
	}
}

// TestTLSRefusals: a certificate for another name is refused, STARTTLS
// required but not offered is refused, and a wrong password over TLS
// never shows; all are temporary, so that fixing the config lets the
// notices go.
func TestTLSRefusals(t *testing.T) {
	pki := newPKI(t)
	tlsRelay := startTLSRelay(t, &relay{password: "right-pass"}, pki, false)
	plainRelay := startRelay(t, &relay{})
	for _, c := range []struct {
		name, addr, server, password, want string
	}{
		{"wrong name", tlsRelay.addr, "other.test", "right-pass", "certificate"},
		{"no STARTTLS offered", plainRelay.addr, "relay.test", "", "STARTTLS"},
		{"wrong password", tlsRelay.addr, "relay.test", "wrong-Pa55word", "535"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := Options{TLS: "starttls", TLSConfig: &tls.Config{RootCAs: pki.roots, ServerName: c.server}}
			if c.password != "" {
				o.Username, o.Password = "errpd", config.Secret(c.password)
			}
			s := newSMTP(t, c.addr, o)
			_, err := s.Send(context.Background(), "b@errp.example.net", []string{"x@example.org"}, tricky(2))
			if err == nil {
				t.Fatal("sent")
			}
			if failure.IsPermanent(err) {
				t.Errorf("%v is permanent; a config mistake must not fail notices for good", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if c.password != "" && strings.Contains(err.Error(), c.password) {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}
