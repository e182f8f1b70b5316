package k2vhttp

import (
	"context"
	"errors"
	"fmt"

	"github.com/grangeio/grange/k2v"
	"github.com/grangeio/grange/k2v/sigv4"
)

// apiError is an error with its K2V code and HTTP status, produced by the
// parsing and checking code of this package.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: 400, code: "InvalidRequest", msg: fmt.Sprintf(format, args...)}
}

// k2vErrors maps the errors of the layers below to K2V codes
// (k2v-api.md §12). The first match wins; an error matching nothing is an
// InternalError whose details only go to the log.
var k2vErrors = []struct {
	target error
	code   string
	status int
}{
	{sigv4.ErrAnonymous, "AccessDenied", 403},
	{sigv4.ErrUnknownKey, "AccessDenied", 403},
	{sigv4.ErrSignatureMismatch, "AccessDenied", 403},
	{sigv4.ErrExpired, "AccessDenied", 403},
	{sigv4.ErrScopeMismatch, "AuthorizationHeaderMalformed", 400},
	{sigv4.ErrRequestTimeSkewed, "InvalidRequest", 400},
	{sigv4.ErrPayloadMismatch, "InvalidDigest", 400},
	{sigv4.ErrMalformed, "InvalidRequest", 400},
	{k2v.ErrNoSuchBucket, "NoSuchBucket", 404},
	{k2v.ErrBadRange, "InvalidRequest", 400},
	{k2v.ErrBadMarker, "InvalidRequest", 400},
	{k2v.ErrKeyTooLong, "InvalidRequest", 400},
	{context.DeadlineExceeded, "ServiceUnavailable", 503},
	{k2v.ErrClosed, "ServiceUnavailable", 503}, // shutting down
}

// classify returns the status, code and client-visible message of err;
// internal is true when the details must stay in the log.
func classify(err error) (status int, code, msg string, internal bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status, ae.code, ae.msg, false
	}
	for _, e := range k2vErrors {
		if errors.Is(err, e.target) {
			return e.status, e.code, publicMessage(err, e.target), false
		}
	}
	return 500, "InternalError", "Internal error", true
}

// publicMessage is the message shown to clients: the error text, except for
// the authentication errors whose details could help an attacker.
func publicMessage(err, target error) string {
	switch target {
	case sigv4.ErrUnknownKey:
		return "No such key"
	case sigv4.ErrSignatureMismatch:
		return "Invalid signature"
	case sigv4.ErrAnonymous:
		return "Anonymous access is not supported: sign the request with AWS Signature V4"
	}
	return err.Error()
}
