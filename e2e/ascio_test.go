package e2e

import (
	"testing"

	"github.com/errpd/errpd/internal/ascioteststand"
)

type ascio struct {
	endpoint string
	srv      *ascioteststand.Server
}

type upload struct {
	orderID string
	raw     []byte
}

// startAscio runs the Ascio stand-in, which validates every request and
// answer against Ascio's schemas; errpd reaches it over loopback.
func startAscio(t *testing.T) *ascio {
	t.Helper()
	srv, url := ascioteststand.Start(t)
	return &ascio{endpoint: url, srv: srv}
}

func (a *ascio) uploads(t *testing.T) []upload {
	t.Helper()
	if bad := a.srv.Invalid(); len(bad) > 0 {
		t.Errorf("requests or answers that do not validate against Ascio's schema: %v", bad)
	}
	var out []upload
	for _, u := range a.srv.Uploads() {
		if len(u.Attachments) > 0 {
			out = append(out, upload{orderID: u.OrderID, raw: u.Attachments[0].Content})
		}
	}
	return out
}
