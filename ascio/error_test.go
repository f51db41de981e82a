package ascio

import (
	"fmt"
	"testing"

	"github.com/errpd/errpd/internal/failure"
)

// Ascio's errors answer failure.Kind themselves, through any wrapping.
func TestFailureKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want failure.Kind
	}{
		{classify("UploadMessage", 200, Result{Code: 554, Message: "Temporary error"}), failure.Temporary},
		{classify("UploadMessage", 200, Result{Code: 405, Message: "Access denied"}), failure.Permanent},
		{fmt.Errorf("upload: %w", &Error{Op: "GetMessages", Temporary: true}), failure.Temporary},
	} {
		if got := failure.Of(tc.err); got != tc.want {
			t.Errorf("failure.Of(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
