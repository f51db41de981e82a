// Package bounce takes notices that came back: it gives each notice a
// signed VERP envelope sender (local+TOKEN@domain), reads the bounces
// that arrive for it (RFC 3464 delivery status notifications, or any
// mail to a valid token), and records them on their step.
package bounce

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"

	"github.com/errpd/errpd/store"
)

// The token is the step's short id (store.ShortID, 10 bytes) and a MAC of
// it (10 bytes, truncated HMAC-SHA256), in lower-case base32 without
// padding: 32 characters that survive MTAs which fold the case of local
// parts.
const (
	shortLen = 10
	macLen   = 10
	// TokenLen is the length of a token in characters.
	TokenLen = (shortLen + macLen) * 8 / 5
	// MaxLocal is the longest local part RFC 5321 (4.5.3.1.1) allows.
	MaxLocal = 64
)

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ErrToken is returned for an address whose token does not verify: none,
// malformed, or forged (its MAC is not ours).
var ErrToken = errors.New("no valid bounce token")

// Signer makes and checks VERP tokens with the store's key.
type Signer struct{ key []byte }

// NewSigner signs with key (store.Tx.VERPKey).
func NewSigner(key []byte) *Signer { return &Signer{key: key} }

func (s *Signer) mac(short []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("errpd-verp-v1\x00"))
	m.Write(short)
	return m.Sum(nil)[:macLen]
}

// Token is the signed token of a step.
func (s *Signer) Token(stepID string) string {
	short := store.ShortID(stepID)
	return enc.EncodeToString(append(short, s.mac(short)...))
}

// Address is envelope's VERP form for a step: local+TOKEN@domain, on the
// same domain, so SPF alignment with From holds as before.
func (s *Signer) Address(envelope, stepID string) (string, error) {
	at := strings.LastIndexByte(envelope, '@')
	if at < 1 {
		return "", fmt.Errorf("envelope sender %q has no local part and domain", envelope)
	}
	local := envelope[:at] + "+" + s.Token(stepID)
	if len(local) > MaxLocal {
		return "", fmt.Errorf("envelope sender %q: with its bounce token the local part is %d octets, over RFC 5321's %d", envelope, len(local), MaxLocal)
	}
	return local + envelope[at:], nil
}

// Verify returns the short id an address's token stands for, or ErrToken.
// The token is the local part's last "+" suffix, in any case.
func (s *Signer) Verify(addr string) ([]byte, error) {
	addr = strings.Trim(strings.TrimSpace(addr), "<>")
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		at = len(addr)
	}
	plus := strings.LastIndexByte(addr[:at], '+')
	if plus < 0 || len(s.key) == 0 {
		return nil, ErrToken
	}
	tok := strings.ToLower(addr[plus+1 : at])
	if len(tok) != TokenLen {
		return nil, ErrToken
	}
	raw, err := enc.DecodeString(tok)
	if err != nil || len(raw) != shortLen+macLen {
		return nil, ErrToken
	}
	short := raw[:shortLen]
	if !hmac.Equal(raw[shortLen:], s.mac(short)) {
		return nil, ErrToken
	}
	return short, nil
}

// MaxBase is the longest local part an envelope sender may have for its
// VERP form to fit RFC 5321's limit.
const MaxBase = MaxLocal - 1 - TokenLen
