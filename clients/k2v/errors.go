package k2v

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Sentinels matched by *Error through errors.Is, one per K2V error code
// (k2v-api.md §12).
var (
	ErrInvalidRequest               = errors.New("k2v: invalid request")                // 400 InvalidRequest
	ErrInvalidCausalityToken        = errors.New("k2v: invalid causality token")        // 400 CausalityToken
	ErrAuthorizationHeaderMalformed = errors.New("k2v: authorization header malformed") // 400 AuthorizationHeaderMalformed
	ErrInvalidDigest                = errors.New("k2v: invalid digest")                 // 400 InvalidDigest
	ErrInvalidUTF8                  = errors.New("k2v: invalid UTF-8 string")           // 400 InvalidUtf8String
	ErrInvalidHeaderValue           = errors.New("k2v: invalid header value")           // 400 InvalidHeaderValue
	ErrAccessDenied                 = errors.New("k2v: access denied")                  // 403 AccessDenied
	ErrNoSuchBucket                 = errors.New("k2v: no such bucket")                 // 404 NoSuchBucket
	ErrNoSuchKey                    = errors.New("k2v: no such key")                    // 404 NoSuchKey
	ErrNotAcceptable                = errors.New("k2v: not acceptable")                 // 406 NotAcceptable
	ErrInternal                     = errors.New("k2v: internal error")                 // 500 InternalError
	ErrServiceUnavailable           = errors.New("k2v: service unavailable")            // 503 ServiceUnavailable
)

var (
	// ErrConflict matches a *ConflictError: a binary read (ReadValue) of an
	// item holding several values (HTTP 409).
	ErrConflict = errors.New("k2v: conflicting values")

	// ErrNotModified matches a 304 response. The poll methods never return
	// it: they report a poll timeout as changed == false. Another method
	// receiving a 304 (from a proxy, say) returns an *Error that matches it.
	ErrNotModified = errors.New("k2v: not modified")

	// ErrInvalidArgument is wrapped by errors about arguments rejected
	// before any request is sent (empty keys, invalid UTF-8, negative
	// limits).
	ErrInvalidArgument = errors.New("k2v: invalid argument")
)

var codeSentinels = map[string]error{
	"InvalidRequest":               ErrInvalidRequest,
	"CausalityToken":               ErrInvalidCausalityToken,
	"AuthorizationHeaderMalformed": ErrAuthorizationHeaderMalformed,
	"InvalidDigest":                ErrInvalidDigest,
	"InvalidUtf8String":            ErrInvalidUTF8,
	"InvalidHeaderValue":           ErrInvalidHeaderValue,
	"AccessDenied":                 ErrAccessDenied,
	"NoSuchBucket":                 ErrNoSuchBucket,
	"NoSuchKey":                    ErrNoSuchKey,
	"NotAcceptable":                ErrNotAcceptable,
	"InternalError":                ErrInternal,
	"ServiceUnavailable":           ErrServiceUnavailable,
}

// statusSentinels is the fallback when a response carries no code (an
// error body that is not K2V JSON, e.g. from a proxy). 404 is left out:
// it cannot tell a missing key from a missing bucket.
var statusSentinels = map[int]error{
	http.StatusNotModified:         ErrNotModified,
	http.StatusBadRequest:          ErrInvalidRequest,
	http.StatusForbidden:           ErrAccessDenied,
	http.StatusNotAcceptable:       ErrNotAcceptable,
	http.StatusConflict:            ErrConflict,
	http.StatusInternalServerError: ErrInternal,
	http.StatusServiceUnavailable:  ErrServiceUnavailable,
}

// Error is an error response of the server (k2v-api.md §12). It matches
// the sentinel of its Code with errors.Is (ErrNoSuchKey, ErrAccessDenied,
// ...); without a Code, the sentinel of its status when there is one.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the K2V error code, e.g. "NoSuchKey"; "" when the body was
	// not a K2V error body.
	Code string
	// Message is human-readable and not stable. Without a K2V body it is
	// the start of the body, or the HTTP status text.
	Message string
	// Region is the server's region ("" without a K2V body).
	Region string
	// Path is the request path the server reports (the request's path
	// when the body does not say).
	Path string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("k2v: ")
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	var details []string
	if e.Code != "" {
		details = append(details, fmt.Sprintf("HTTP %d", e.StatusCode))
	}
	if e.Path != "" {
		details = append(details, "path "+e.Path)
	}
	if len(details) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(details, ", "))
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's code or, without a
// code, of its status.
func (e *Error) Is(target error) bool {
	if e.Code != "" {
		if s, ok := codeSentinels[e.Code]; ok {
			return s == target
		}
		return false
	}
	s, ok := statusSentinels[e.StatusCode]
	return ok && s == target
}

// ConflictError is returned by ReadValue when the item holds several
// values (409): read it with ReadItem to see them all, or overwrite them
// all with a write carrying CausalityToken. It matches ErrConflict.
type ConflictError struct {
	CausalityToken CausalityToken
}

func (e *ConflictError) Error() string {
	return "k2v: conflicting values (read the item as JSON to see them)"
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// maxErrorBodyBytes caps how much of an error response is read: K2V error
// bodies are a few hundred bytes, anything longer is not one.
const maxErrorBodyBytes = 64 << 10

// maxMessageBytes caps Message when it is taken from a non-K2V body.
const maxMessageBytes = 512

// errorFromResponse builds the *Error of a response and consumes (a
// bounded prefix of) its body. path is the request path, used when the
// body does not name one.
func errorFromResponse(resp *http.Response, path string) *Error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	return parseErrorBody(resp.StatusCode, body, path)
}

// parseErrorBody parses a K2V error body, falling back to the status and
// the body's text when it is not one.
func parseErrorBody(status int, body []byte, path string) *Error {
	var wire struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Region  string `json:"region"`
		Path    string `json:"path"`
	}
	e := &Error{StatusCode: status, Path: path}
	if json.Unmarshal(body, &wire) == nil && wire.Code != "" {
		e.Code, e.Message, e.Region = wire.Code, wire.Message, wire.Region
		if wire.Path != "" {
			e.Path = wire.Path
		}
		return e
	}
	msg := bytes.TrimSpace(body)
	if len(msg) > maxMessageBytes {
		msg = msg[:maxMessageBytes]
		for len(msg) > 0 && !utf8.Valid(msg) {
			msg = msg[:len(msg)-1]
		}
	}
	if len(msg) > 0 && utf8.Valid(msg) {
		e.Message = string(msg)
	} else {
		e.Message = http.StatusText(status)
	}
	return e
}
