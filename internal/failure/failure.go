// Package failure is errpd's one vocabulary for what a failed operation
// means for the step that ran it: try again later (temporary), do not try
// again until an operator acts (permanent), or it may have happened and
// must not be repeated on its own (in doubt).
//
// Leaf packages (delivery, ascio, uploader, store) make their errors answer
// Kind; the dispatcher asks with Of, which looks through wrapping the way
// errors.As does. Nothing in between translates one package's meaning into
// another's. An error that says nothing is temporary: Postfix's rule, defer
// what you do not understand.
package failure

import "errors"

// Kind is what a failure means for a retry.
type Kind int

const (
	// Temporary: a later attempt may succeed (4xx, network, timeout,
	// Ascio 554, a store write that failed).
	Temporary Kind = iota
	// Permanent: retrying the same thing cannot succeed (5xx to a
	// message, Ascio 405, a notice that cannot be rendered).
	Permanent
	// InDoubt: the operation may have taken effect (a reply lost after
	// the final dot); repeating it could do it twice.
	InDoubt
)

func (k Kind) String() string {
	switch k {
	case Permanent:
		return "permanent"
	case InDoubt:
		return "in doubt"
	default:
		return "temporary"
	}
}

// Classified is an error that knows its Kind.
type Classified interface {
	error
	FailureKind() Kind
}

// Of returns the Kind of the first error in err's tree that knows one, and
// Temporary when none does. Of(nil) is Temporary too; callers test for
// nil first.
func Of(err error) Kind {
	var c Classified
	if errors.As(err, &c) {
		return c.FailureKind()
	}
	return Temporary
}

// IsPermanent reports whether Of(err) is Permanent.
func IsPermanent(err error) bool { return err != nil && Of(err) == Permanent }

// IsInDoubt reports whether Of(err) is InDoubt.
func IsInDoubt(err error) bool { return err != nil && Of(err) == InDoubt }

// kinded gives err a Kind of its own, for callers that know better than
// the error they hold (a render error is permanent for the step).
type kinded struct {
	err  error
	kind Kind
}

func (e *kinded) Error() string     { return e.err.Error() }
func (e *kinded) Unwrap() error     { return e.err }
func (e *kinded) FailureKind() Kind { return e.kind }

// With wraps err so that Of reports kind for it. With(nil, k) is nil.
func With(err error, kind Kind) error {
	if err == nil {
		return nil
	}
	return &kinded{err: err, kind: kind}
}

// AsPermanent, AsTemporary and AsInDoubt are With for each Kind.
func AsPermanent(err error) error { return With(err, Permanent) }
func AsTemporary(err error) error { return With(err, Temporary) }
func AsInDoubt(err error) error   { return With(err, InDoubt) }
