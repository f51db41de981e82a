// Package peertext bounds text that errpd takes from a peer (an SMTP
// reply, an Ascio fault or Errors list, a callback parameter, a calendar
// field in an error) before it is stored or logged. A peer decides how
// long its text is; errpd decides how much of it to keep, as Postfix caps
// what it logs of a remote reply.
package peertext

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Max is the most bytes of one peer text errpd stores or logs.
const Max = 2048

// Cap returns s cut to at most Max bytes (on a rune boundary, invalid
// UTF-8 replaced), with a marker saying how much was cut. Text at or under
// the cap comes back unchanged apart from invalid UTF-8.
func Cap(s string) string { return CapN(s, Max) }

// CapN is Cap with a limit of n bytes for the kept text.
func CapN(s string, n int) string {
	// Short is measured before the replacement, which can make a text
	// longer (one byte becomes three): a text under the cap is kept whole.
	short := len(s) <= n
	s = strings.ToValidUTF8(s, "\uFFFD")
	if short || len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…[cut: %d of %d bytes kept]", s[:cut], cut, len(s))
}
