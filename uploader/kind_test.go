package uploader

import (
	"errors"
	"testing"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/failure"
)

// The uploader's judgement overrides Ascio's: 401 (errpd's credentials) is
// temporary for a proof, though Ascio calls it final.
func TestFailureKindOverridesAscio(t *testing.T) {
	_, err := failed(&ascio.Error{Op: "UploadMessage", Result: ascio.Result{Code: 401, Message: "Unauthorized"}})
	if k := failure.Of(err); k != failure.Temporary {
		t.Errorf("401: %v, want temporary", k)
	}
	_, err = failed(&ascio.Error{Op: "UploadMessage", Result: ascio.Result{Code: 405, Message: "Access denied"}})
	if k := failure.Of(err); k != failure.Permanent {
		t.Errorf("405: %v, want permanent", k)
	}
	if _, err = failed(errors.New("no endpoint")); !failure.IsPermanent(err) {
		t.Errorf("a local error: %v, want permanent", failure.Of(err))
	}
}
