package admin

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestLongErrorReachesRawClient: a command that fails with an error
// longer than a raw answer's line limit (1 MiB) is reported with its exit
// status and the start of its message, cut with a marker: the exit frame
// carries at most maxErrorText bytes of it. Before the cut the raw client
// refused the exit frame's line, and the exit status was lost (found in
// review).
func TestLongErrorReachesRawClient(t *testing.T) {
	msg := "import: " + strings.Repeat("x", maxLine)
	sock := serve(t, func(context.Context, *Call) (int, error) { return 2, errors.New(msg) })
	err := Forward(context.Background(), sock, []string{"import"}, nil, nil, io.Discard, io.Discard)
	var re *RemoteError
	if !errors.As(err, &re) || re.Exit != 2 {
		t.Fatalf("Forward: %.120v, want the command's exit 2 and its error", err)
	}
	if got := re.Error(); !strings.Contains(got, "import: xxx") || len(got) > maxErrorText+200 {
		t.Errorf("the error reached the client as %d bytes starting %.40q, want its start, at most about %d bytes", len(got), got, maxErrorText)
	}
}
