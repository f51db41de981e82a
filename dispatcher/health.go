package dispatcher

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/errpd/errpd/store"
)

// Health is what /healthz answers: each part "ok" or what is wrong with
// it, and the status, "ok" only when every part is.
type Health struct {
	Status     string `json:"status"`     // ok or unavailable
	Store      string `json:"store"`      // writable?
	Dispatcher string `json:"dispatcher"` // is the send loop going round?
	Relay      string `json:"relay"`      // does the relay take messages?
}

// OK reports whether every part is healthy.
func (h Health) OK() bool { return h.Status == "ok" }

// Health limits: a loop whose last round is older than staleAfter plus the
// send timeout is stuck; relayFailing temporary failures in a row say the
// relay is unwell; under minFree bytes the store's disk is full.
const (
	staleAfter   = 3 * time.Minute
	relayFailing = 3
	minFree      = 1 << 20
)

// Health reports the store, the loop and the relay as the dispatcher sees
// them.
func (d *Dispatcher) Health() Health {
	now := d.Now()
	d.mu.Lock()
	storeErr, retryAt := d.storeErr, d.storeRetryAt
	beat, relayFails, relayErr := d.lastBeat, d.relayFails, d.relayErr
	d.mu.Unlock()

	h := Health{Status: "ok", Store: "ok", Dispatcher: "ok", Relay: "ok"}
	switch {
	case storeErr != nil:
		h.Store = fmt.Sprintf("write failed: %v; dispatcher paused until %s", storeErr, retryAt.UTC().Format(time.RFC3339))
	default:
		h.Store = storeSpace(d.DB)
	}
	switch {
	case beat.IsZero():
		h.Dispatcher = "not running"
	case now.Sub(beat) > staleAfter+d.SendTimeout:
		h.Dispatcher = fmt.Sprintf("no round since %s", beat.UTC().Format(time.RFC3339))
	}
	if relayFails >= relayFailing {
		h.Relay = fmt.Sprintf("%d failures in a row, last: %s", relayFails, relayErr)
	}
	if h.Store != "ok" || h.Dispatcher != "ok" || h.Relay != "ok" {
		h.Status = "unavailable"
	}
	return h
}

// storeSpace checks that the store's file system has room to write.
func storeSpace(db *store.DB) string {
	if db == nil {
		return "not open"
	}
	free, err := freeBytes(filepath.Dir(db.Path()))
	if err != nil {
		return "cannot check free space: " + err.Error()
	}
	if free < minFree {
		return fmt.Sprintf("no space left: %d bytes free beside %s", free, db.Path())
	}
	return "ok"
}

// HealthHandler answers /healthz: 200 when healthy, 503 naming the cause,
// with Health as a short JSON body.
func (d *Dispatcher) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := d.Health()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !h.OK() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
}
