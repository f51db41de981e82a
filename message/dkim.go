package message

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// DKIM is a signing key for one domain and selector.
type DKIM struct {
	Domain   string // the d= tag: the From domain
	Selector string // the s= tag
	key      crypto.Signer
}

// LoadDKIM reads a PEM private key (PKCS#1 RSA, or PKCS#8 RSA or Ed25519)
// from path. Errors name the path, never the key.
func LoadDKIM(domain, selector, path string) (*DKIM, error) {
	if selector == "" {
		return nil, fmt.Errorf("dkim key %s has no selector", path)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dkim key: %w", err)
	}
	key, err := gomail.PrivKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("dkim key %s: %w", path, err)
	}
	return &DKIM{Domain: domain, Selector: selector, key: key}, nil
}

// signer makes a go-mail signer for one message. A fresh one each time:
// go-mail's signer records its algorithm on first use, so sharing one
// between goroutines would race. now stamps the t= tag.
func (k *DKIM) signer(now func() time.Time) *gomail.DKIMSigner {
	s := gomail.NewDKIMSigner(k.Domain, k.Selector, k.key)
	s.NowFunc = now
	return s
}

// RecordName is where the public key is published:
// SELECTOR._domainkey.DOMAIN.
func (k *DKIM) RecordName() string { return k.Selector + "._domainkey." + k.Domain }

// Record is the TXT record that publishes the public key.
func (k *DKIM) Record() string {
	switch k.key.Public().(type) {
	case *rsa.PublicKey:
		return "v=DKIM1; k=rsa; p=" + k.PublicKey()
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + k.PublicKey()
	}
	return ""
}

// PublicKey is the base64 p= value of the key's record.
func (k *DKIM) PublicKey() string {
	switch pub := k.key.Public().(type) {
	case *rsa.PublicKey:
		der, _ := x509.MarshalPKIXPublicKey(pub)
		return base64.StdEncoding.EncodeToString(der)
	case ed25519.PublicKey:
		return base64.StdEncoding.EncodeToString(pub)
	}
	return ""
}
