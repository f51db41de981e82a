package e2e

import (
	"testing"

	"github.com/errpd/errpd/internal/fakeascio"
)

type ascio struct {
	endpoint string
	srv      *fakeascio.Server
}

type upload struct{ raw []byte }

// startAscio runs the Ascio stand-in; errpd reaches it over loopback.
func startAscio(t *testing.T) *ascio {
	t.Helper()
	srv := fakeascio.Start()
	t.Cleanup(srv.Close)
	return &ascio{endpoint: srv.URL, srv: srv}
}

func (a *ascio) uploads(t *testing.T) []upload {
	t.Helper()
	if bad := a.srv.Invalid(); len(bad) > 0 {
		t.Errorf("requests that do not validate against Ascio's schema: %v", bad)
	}
	var out []upload
	for _, u := range a.srv.Uploads() {
		out = append(out, upload{raw: u.Raw})
	}
	return out
}
