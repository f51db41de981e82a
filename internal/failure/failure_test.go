package failure

import (
	"errors"
	"fmt"
	"testing"
)

type leaf struct{ k Kind }

func (l leaf) Error() string     { return "leaf" }
func (l leaf) FailureKind() Kind { return l.k }

func TestOf(t *testing.T) {
	plain := errors.New("plain")
	cases := []struct {
		name string
		err  error
		want Kind
	}{
		{"unclassified is temporary", plain, Temporary},
		{"leaf permanent", leaf{Permanent}, Permanent},
		{"leaf in doubt through %w", fmt.Errorf("send: %w", leaf{InDoubt}), InDoubt},
		{"outer With wins over inner", AsPermanent(leaf{Temporary}), Permanent},
		{"joined: first classified", errors.Join(plain, leaf{InDoubt}), InDoubt},
		{"AsTemporary", AsTemporary(leaf{Permanent}), Temporary},
	}
	for _, c := range cases {
		if got := Of(c.err); got != c.want {
			t.Errorf("%s: Of = %v, want %v", c.name, got, c.want)
		}
	}
	if With(nil, Permanent) != nil {
		t.Error("With(nil) is not nil")
	}
	if IsPermanent(nil) || IsInDoubt(nil) {
		t.Error("nil classified as a failure")
	}
	if !errors.Is(AsInDoubt(plain), plain) {
		t.Error("With does not unwrap to its error")
	}
}
