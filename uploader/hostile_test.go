package uploader_test

import (
	"context"
	"testing"

	"github.com/errpd/errpd/internal/ascioteststand"
	"github.com/errpd/errpd/internal/failure"
	"github.com/errpd/errpd/scheduler"
)

// An answer that is not Ascio's is no reason to give up on a proof: the
// step waits and tries again. Before, a 200 that was not a SOAP answer
// put the step in failed at once.
func TestHostileAnswersAreNotPermanent(t *testing.T) {
	t.Parallel()
	for _, a := range []ascioteststand.Answer{ascioteststand.Redirect, ascioteststand.Truncated, ascioteststand.HTML,
		ascioteststand.Empty, ascioteststand.WrongNamespace, ascioteststand.Missing, ascioteststand.HugeFault, ascioteststand.HugeResult} {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			s, c := start(t)
			s.Script(ascioteststand.OpUploadMessage, a)
			_, err := c.Upload(context.Background(), "O1", scheduler.Reminder1, sent, false)
			if err == nil || failure.IsPermanent(err) {
				t.Fatalf("err = %v, want a temporary failure", err)
			}
			// The retry asks first: a truncated answer's upload arrived and
			// is not made twice; the others' did not, and is made now.
			if _, err := c.Upload(context.Background(), "O1", scheduler.Reminder1, sent, true); err != nil {
				t.Fatal(err)
			}
			if n := len(s.Uploads()); n != 1 {
				t.Errorf("%d uploads after the retry, want 1", n)
			}
		})
	}
}
