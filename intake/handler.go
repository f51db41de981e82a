package intake

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/internal/peertext"
)

// Handler serves Ascio's callbacks: GET ?OrderId=&MessageId=&OrderStatus=
// [&Object=]. Nothing in the URL is believed: the source address must be
// allowed, the token must match when one is set, and the message is read
// from Ascio (GetQueueMessage, then GetOrder and GetDomain) and must agree
// with the URL's OrderId and Object before anything is stored.
type Handler struct {
	Intake *Intake
	// Token, when set, must be given as ?token=.
	Token config.Secret
	// Allow lists the source networks allowed to call back; empty allows
	// any. The peer address of the connection is checked, not a header:
	// a proxy in front must be allowed itself.
	Allow []netip.Prefix
	// Timeout bounds the Ascio calls of one callback; zero means 20s.
	Timeout time.Duration

	// sem bounds the callbacks worked on at once; others get 503 and the
	// message stays in Ascio's queue for the poller. Nil: no bound.
	sem chan struct{}
}

// NewHandler returns a handler that works on at most limit callbacks at
// once (8 when limit is not positive).
func NewHandler(in *Intake, token config.Secret, allow []netip.Prefix, limit int) *Handler {
	if limit <= 0 {
		limit = 8
	}
	return &Handler{Intake: in, Token: token, Allow: allow, sem: make(chan struct{}, limit)}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := h.Intake.Log
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	if !h.allowed(r.RemoteAddr) {
		log.Warn("ascio callback from an address not allowed", "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	q := r.URL.Query()
	if h.Token.Set() && subtle.ConstantTimeCompare([]byte(q.Get("token")), []byte(h.Token.Reveal())) != 1 {
		log.Warn("ascio callback with a wrong token", "remote", r.RemoteAddr)
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	id, err := strconv.Atoi(q.Get("MessageId"))
	// The caller's text: cut before it is logged. Ascio's order ids are
	// short, so a cut one only fails to match.
	orderID := peertext.Cap(strings.TrimSpace(q.Get("OrderId")))
	if err != nil || id <= 0 || orderID == "" {
		http.Error(w, "MessageId and OrderId are required", http.StatusBadRequest)
		return
	}
	// Anyone may call with any URL: what is logged of it is bounded.
	loggedOrder := peertext.Cap(orderID)
	if h.sem != nil {
		select {
		case h.sem <- struct{}{}:
			defer func() { <-h.sem }()
		default:
			http.Error(w, "busy; the message stays queued", http.StatusServiceUnavailable)
			return
		}
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	m, err := h.Intake.Ascio.GetQueueMessage(ctx, id)
	switch {
	case ascio.IsNotFound(err):
		// Forged, or acknowledged already (a replay): nothing to do.
		log.Warn("ascio callback for a message Ascio does not hold", "message_id", id, "order_id", loggedOrder, "remote", r.RemoteAddr)
		http.Error(w, "unknown message", http.StatusNotFound)
		return
	case err != nil:
		log.Error("ascio callback: reading the message", "message_id", id, "err", err)
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	if m.ID != id || m.OrderID != orderID || !sameObject(q.Get("Object"), m.ObjectName) {
		log.Warn("ascio callback does not match the message Ascio holds", "message_id", id,
			"order_id", loggedOrder, "ascio_order_id", m.OrderID, "remote", r.RemoteAddr)
		http.Error(w, "unknown message", http.StatusNotFound)
		return
	}
	out, err := h.Intake.Take(ctx, m)
	if err != nil {
		log.Error("ascio callback", "message_id", id, "err", err)
		status := http.StatusServiceUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		http.Error(w, "try again", status)
		return
	}
	if !out.Applied {
		w.Write([]byte("ok (already applied)\n"))
		return
	}
	w.Write([]byte("ok\n"))
}

func (h *Handler) allowed(remote string) bool {
	if len(h.Allow) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range h.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func sameObject(claimed, actual string) bool {
	if claimed == "" {
		return true
	}
	a, err1 := aLabel(claimed)
	b, err2 := aLabel(actual)
	return err1 == nil && err2 == nil && a == b
}
