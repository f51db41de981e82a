package peertext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCap(t *testing.T) {
	if got := Cap("550 no such user"); got != "550 no such user" {
		t.Errorf("short text changed: %q", got)
	}
	long := strings.Repeat("é", 3_000_000) // 6 MB, two bytes a rune
	got := Cap(long)
	if len(got) > Max+64 {
		t.Errorf("capped text is %d bytes", len(got))
	}
	if !utf8.ValidString(got) {
		t.Error("cut inside a rune")
	}
	if !strings.Contains(got, "[cut: 2048 of 6000000 bytes kept]") {
		t.Errorf("no cut marker: %q", got[len(got)-60:])
	}
	if got := Cap("a\xffb"); got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 kept: %q", got)
	}
}

func FuzzCap(f *testing.F) {
	f.Add("ok", 10)
	f.Add(strings.Repeat("ü", 100), 7)
	f.Add("\xff\xfe", 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		got := CapN(s, n)
		if !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		if len(s) <= n && got != strings.ToValidUTF8(s, "\uFFFD") {
			t.Fatalf("short text changed")
		}
	})
}
