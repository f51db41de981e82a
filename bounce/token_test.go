package bounce

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/errpd/errpd/store"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func TestToken(t *testing.T) {
	sg := NewSigner(testKey)
	id := "proved.com/20250301T000000Z/reminder1"
	addr, err := sg.Address("bounces@errp.example.net", id)
	if err != nil {
		t.Fatal(err)
	}
	local, domain, _ := strings.Cut(addr, "@")
	if domain != "errp.example.net" || !strings.HasPrefix(local, "bounces+") || len(local) != len("bounces+")+TokenLen {
		t.Fatalf("address %q", addr)
	}
	if addr != strings.ToLower(addr) {
		t.Errorf("address %q is not lower-case", addr)
	}
	for _, a := range []string{addr, strings.ToUpper(addr), "<" + addr + ">", " " + addr} {
		short, err := sg.Verify(a)
		if err != nil || !bytes.Equal(short, store.ShortID(id)) {
			t.Errorf("Verify(%q) = %x, %v", a, short, err)
		}
	}
	// The same step gets the same address; another step another one.
	if again, _ := sg.Address("bounces@errp.example.net", id); again != addr {
		t.Errorf("not stable: %q, %q", addr, again)
	}
	if other, _ := sg.Address("bounces@errp.example.net", id+"x"); other == addr {
		t.Error("two steps, one address")
	}
}

func TestTokenForged(t *testing.T) {
	sg := NewSigner(testKey)
	addr, _ := sg.Address("bounces@errp.example.net", "proved.com/20250301T000000Z/reminder1")
	at := strings.IndexByte(addr, '@')
	flip := []byte(addr)
	flip[at-1] = map[bool]byte{true: 'b', false: 'a'}[flip[at-1] == 'a'] // one MAC character changed
	other, _ := NewSigner(bytes.Repeat([]byte{8}, 32)).Address("bounces@errp.example.net", "proved.com/20250301T000000Z/reminder1")
	for _, a := range []string{string(flip), other, "bounces@errp.example.net", "bounces+@errp.example.net",
		"bounces+" + strings.Repeat("a", TokenLen) + "@errp.example.net", addr[:at-1] + "@errp.example.net", "", "@", "+"} {
		if short, err := sg.Verify(a); !errors.Is(err, ErrToken) {
			t.Errorf("Verify(%q) = %x, %v; want ErrToken", a, short, err)
		}
	}
	if _, err := NewSigner(nil).Verify(addr); !errors.Is(err, ErrToken) {
		t.Errorf("no key: %v", err)
	}
}

// RFC 5321 bounds a local part to 64 octets: the longest base allowed
// fits, one more is refused.
func TestTokenLocalPartLimit(t *testing.T) {
	sg := NewSigner(testKey)
	a, err := sg.Address(strings.Repeat("b", MaxBase)+"@x.example", "d.com/20250301T000000Z/reminder1")
	if err != nil || strings.IndexByte(a, '@') != MaxLocal {
		t.Errorf("base of %d: %q, %v", MaxBase, a, err)
	}
	if _, err := sg.Address(strings.Repeat("b", MaxBase+1)+"@x.example", "d.com/20250301T000000Z/reminder1"); err == nil {
		t.Errorf("base of %d accepted", MaxBase+1)
	}
	if MaxBase != 31 {
		t.Errorf("MaxBase %d: config's maxVERPBase (31) must follow", MaxBase)
	}
}

func FuzzVerify(f *testing.F) {
	sg := NewSigner(testKey)
	good, _ := sg.Address("bounces@errp.example.net", "proved.com/20250301T000000Z/reminder1")
	for _, s := range []string{good, strings.ToUpper(good), "bounces@errp.example.net", "a+b+c@d", "+" + strings.Repeat("z", TokenLen)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		short, err := sg.Verify(addr)
		if err != nil {
			if !errors.Is(err, ErrToken) || short != nil {
				t.Errorf("Verify(%q) = %x, %v", addr, short, err)
			}
			return
		}
		// A verified token is one this key made.
		if len(short) != shortLen {
			t.Errorf("short id of %d bytes", len(short))
		}
		tok := strings.ToLower(strings.Trim(strings.TrimSpace(addr), "<>"))
		if !strings.Contains(tok, enc.EncodeToString(append(append([]byte(nil), short...), sg.mac(short)...))) {
			t.Errorf("Verify(%q) accepted a token this key did not make", addr)
		}
	})
}
