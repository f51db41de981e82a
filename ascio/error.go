package ascio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/errpd/errpd/internal/failure"
)

// Result is the AbstractResponse part every answer carries.
type Result struct {
	Code    int      // ResultCode
	Message string   // ResultMessage
	Errors  []string // Errors, for the report
}

// OK reports whether Ascio accepted the call: 200, and 201 and 413 as
// Ascio's own clients accept them.
func (r Result) OK() bool { return r.Code == 200 || r.Code == 201 || r.Code == 413 }

// Error is a call that did not succeed: Ascio answered with a ResultCode
// other than success, with a SOAP fault, with an HTTP error, or the call did
// not get through. It never holds the request, so it never holds the
// password.
type Error struct {
	Op         string // operation, e.g. "UploadMessage"
	HTTPStatus int    // 0 when no answer arrived
	Result     Result // Ascio's answer, when there was one
	Fault      string // faultcode and faultstring of a SOAP fault
	Temporary  bool   // retrying later may succeed
	Err        error  // network or decoding error underneath, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ascio %s: ", e.Op)
	switch {
	case e.Fault != "":
		fmt.Fprintf(&b, "HTTP %d, SOAP fault %s", e.HTTPStatus, e.Fault)
	case e.Result.Code != 0:
		fmt.Fprintf(&b, "%d %s", e.Result.Code, e.Result.Message)
		if len(e.Result.Errors) > 0 {
			b.WriteString(": " + strings.Join(e.Result.Errors, "; "))
		}
	case e.Err != nil:
		if e.HTTPStatus != 0 {
			fmt.Fprintf(&b, "HTTP %d, ", e.HTTPStatus)
		}
		b.WriteString(e.Err.Error())
	default:
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// FailureKind says what the failure means for a retry: temporary when
// Temporary is set, permanent otherwise. No Ascio call is ever in doubt to
// errpd: an upload that may have arrived is checked with GetMessages
// before it is repeated.
func (e *Error) FailureKind() failure.Kind {
	if e.Temporary {
		return failure.Temporary
	}
	return failure.Permanent
}

// IsTemporary reports whether err is an Ascio call that may succeed later:
// ResultCode 554, an HTTP error or a WCF fault, a timeout or a network
// error, a redirect, or an answer errpd cannot use (ErrProtocol,
// ErrTooLarge). It is failure.Of restricted to Ascio's errors: an error
// that is not Ascio's is not called temporary here.
func IsTemporary(err error) bool {
	var e *Error
	return errors.As(err, &e) && failure.Of(e) == failure.Temporary
}

// IsNotFound reports whether Ascio said that the object asked for does not
// exist (ResultCode 404). A success without it is not "not found" but a
// temporary ErrProtocol.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Result.Code == 404
}

// classify turns a ResultCode into an error, or nil for success. 554 is
// Ascio's "try again later"; every other failure code (401 authorization,
// 405 access denied, 404 not found, ...) will not change by retrying.
func classify(op string, status int, r Result) error {
	if r.OK() {
		return nil
	}
	return &Error{Op: op, HTTPStatus: status, Result: r, Temporary: r.Code == 554}
}
