package admin

import (
	"context"
	"io"
	"slices"
	"testing"
)

// TestProgressFrames: what the command reports as progress reaches the
// client's callback, in order, among its output.
func TestProgressFrames(t *testing.T) {
	sent := []Progress{{"importing", 10, 100}, {"importing", 55, 100}, {"importing", 100, 100}}
	sock := serve(t, func(_ context.Context, c *Call) (int, error) {
		for _, p := range sent {
			c.Stdout.Write([]byte("line\n"))
			if err := c.Progress(p); err != nil {
				return 1, err
			}
		}
		return 0, nil
	})
	var got []Progress
	err := Forward(context.Background(), sock, []string{"import"}, nil, nil, io.Discard, io.Discard,
		WithProgressFrames(func(p Progress) { got = append(got, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, sent) {
		t.Errorf("progress frames: got %v, want %v", got, sent)
	}
	// Without WithProgressFrames the frames are dropped, not printed.
	if err := Forward(context.Background(), sock, []string{"import"}, nil, nil, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
}
