package ascioteststand

import (
	"time"

	"github.com/errpd/errpd/ascio"
)

// Ascio's own send, as the stand-in emulates it. When a notice's deadline
// passes and the partner has not uploaded that reminder, Ascio mails the
// registrant itself ("We won't send the same reminder again, if the
// partner uploaded it before"), and that copy is then held on the order:
// GetMessages lists it beside the partner's uploads, with the reminder's
// Type. That it is listed there is inferred (shared/reference/ascio/NOTES.md
// §3b, §4, marked [I]); docs/ascio.md says so. Test it on OTE.

// AscioFrom is the From of the copies the stand-in sends as Ascio.
const AscioFrom = "noreply@ascio.example"

// SendOwnCopy emulates Ascio's own send of a reminder at its deadline: it
// holds Ascio's copy on the order, unless the partner uploaded a message
// of that type before, and reports whether it sent.
func (s *Server) SendOwnCopy(orderID string, typ ascio.MessageType, to string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.uploads {
		if u.OrderID == orderID && u.Type == string(typ) {
			return false
		}
	}
	s.own = append(s.own, Upload{
		OrderID: orderID, Type: string(typ), From: AscioFrom, To: to,
		Subject: "Expiry reminder (" + string(typ) + ")",
		Body:    "Your domain is about to expire. This reminder was sent by Ascio on behalf of your registrar.",
		Created: at.UTC().Format("2006-01-02T15:04:05"),
	})
	return true
}

// OwnCopies returns the copies Ascio sent itself, oldest first.
func (s *Server) OwnCopies() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upload(nil), s.own...)
}

// heldLocked is what GetMessages lists for an order: the partner's uploads
// and Ascio's own copies. s.mu must be held.
func (s *Server) heldLocked(orderID string) []Upload {
	var held []Upload
	for _, list := range [][]Upload{s.uploads, s.own} {
		for _, u := range list {
			if u.OrderID == orderID {
				held = append(held, u)
			}
		}
	}
	return held
}
