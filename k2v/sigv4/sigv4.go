package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Errors returned by Verify, CheckPayload and ChunkedReader, always wrapped
// with details; match them with errors.Is. The HTTP layers map them to wire
// codes (see the package comment).
var (
	// ErrAnonymous: neither an Authorization header nor an X-Amz-Algorithm
	// query parameter.
	ErrAnonymous = errors.New("sigv4: request is not signed")
	// ErrMalformed: the signature parameters, a date, the payload hash value
	// or the signed-header set are unusable, or an aws-chunked body is badly
	// framed.
	ErrMalformed = errors.New("sigv4: malformed request")
	// ErrScopeMismatch: the credential scope names another day, region,
	// service or terminator than the request and the server accept.
	ErrScopeMismatch = errors.New("sigv4: credential scope mismatch")
	// ErrRequestTimeSkewed: X-Amz-Date is too far from the server's clock.
	ErrRequestTimeSkewed = errors.New("sigv4: request time too skewed")
	// ErrExpired: a presigned request used after X-Amz-Date + X-Amz-Expires.
	ErrExpired = errors.New("sigv4: presigned request expired")
	// ErrUnknownKey is what a Lookup wraps when the access key does not exist.
	ErrUnknownKey = errors.New("sigv4: unknown access key")
	// ErrSignatureMismatch: the request signature is not the one the secret
	// gives.
	ErrSignatureMismatch = errors.New("sigv4: signature mismatch")
	// ErrPayloadMismatch: the body does not match its signed SHA-256, or a
	// chunk or trailer signature of an aws-chunked body is wrong.
	ErrPayloadMismatch = errors.New("sigv4: payload does not match signature")
)

// errWrongMode reports a programming error of the caller: a body helper
// used in a payload mode it does not serve. It deliberately wraps no
// sentinel, so that it ends up as an internal error, not as a client error.
var errWrongMode = errors.New("sigv4: body helper used in the wrong payload mode")

// Header is one request header as received.
type Header struct{ Name, Value string }

// Request is what SigV4 covers in an HTTP request, as received on the wire.
//
// Verify reads the strings only during the call, but the returned Auth keeps
// substrings of them (access key, date, scope): they must be ordinary
// immutable Go strings, not unsafe views of a buffer that is reused.
type Request struct {
	Method   string
	RawPath  string   // request path still percent-encoded, without the query
	RawQuery string   // query string without '?', as received
	Headers  []Header // every header as received (including Host), any case, repeated names allowed
}

// Lookup returns the secret of an access key, or an error wrapping
// ErrUnknownKey. Verify calls it at most once, after every check that does
// not need the secret, and wraps what it returns.
type Lookup func(accessKeyID string) (secret string, err error)

// DefaultMaxSkew is the clock difference accepted when Config.MaxSkew is
// zero; it is the one S3 uses.
const DefaultMaxSkew = 15 * time.Minute

// MaxPresignExpires is the largest X-Amz-Expires accepted: seven days.
const MaxPresignExpires = 7 * 24 * time.Hour

// Config configures a Verifier. A zero field means its default.
type Config struct {
	// Service is the service name of credential scopes: "k2v" or "s3". It
	// also selects the canonical URI rule: only "s3" uses the path as
	// received; every other service encodes it once more.
	Service string
	// Region is the cluster's region, e.g. "garage".
	Region string
	// AltRegions are also accepted in credential scopes; grange passes
	// {"us-east-1", "auto"} for clients that cannot be told the region.
	AltRegions []string
	// MaxSkew is the allowed difference between X-Amz-Date and the server's
	// clock, in both directions; zero or negative means DefaultMaxSkew.
	// (Garage's K2V endpoint only refuses dates more than 24 hours in the
	// past; MaxSkew of 24h comes closest, but still refuses dates more than
	// 24 hours ahead.)
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks SigV4 signatures for one service and region. It is safe
// for concurrent use.
//
// Service and Region should be non-empty: credential scopes with an empty
// component are malformed, so with an empty Service or Region every request
// fails with ErrScopeMismatch or ErrMalformed.
type Verifier struct {
	service    string
	regions    []string // Region first, then AltRegions
	maxSkew    time.Duration
	now        func() time.Time
	doubleEnc  bool // canonical URI is the raw path encoded once more (every service but s3)
	signingKey keyCache
}

// New returns a Verifier for cfg.
func New(cfg Config) *Verifier {
	v := &Verifier{
		service:   cfg.Service,
		regions:   append([]string{cfg.Region}, cfg.AltRegions...),
		maxSkew:   cfg.MaxSkew,
		now:       cfg.Now,
		doubleEnc: cfg.Service != "s3",
	}
	if v.maxSkew <= 0 {
		v.maxSkew = DefaultMaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// PayloadMode says how the request body is covered by the signature.
type PayloadMode int

const (
	// PayloadSHA256: X-Amz-Content-Sha256 is the hex SHA-256 of the body;
	// the caller must check the body with Auth.CheckPayload.
	PayloadSHA256 PayloadMode = iota + 1
	// PayloadUnsigned: "UNSIGNED-PAYLOAD", and every presigned request. The
	// body is not authenticated.
	PayloadUnsigned
	// PayloadStreamingSigned: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", an
	// aws-chunked body with one signature per chunk.
	PayloadStreamingSigned
	// PayloadStreamingSignedTrailer:
	// "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", signed chunks followed by
	// signed trailing headers.
	PayloadStreamingSignedTrailer
	// PayloadStreamingUnsignedTrailer: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
	// unsigned chunks followed by unsigned trailing headers (which usually
	// carry a checksum the caller must check).
	PayloadStreamingUnsignedTrailer
)

// Payload hash keywords, as sent in X-Amz-Content-Sha256.
const (
	unsignedPayload                 = "UNSIGNED-PAYLOAD"
	streamingSignedPayload          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailerPayload   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailerPayload = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// String returns the X-Amz-Content-Sha256 keyword of m, or "SHA256" for
// PayloadSHA256.
func (m PayloadMode) String() string {
	switch m {
	case PayloadSHA256:
		return "SHA256"
	case PayloadUnsigned:
		return unsignedPayload
	case PayloadStreamingSigned:
		return streamingSignedPayload
	case PayloadStreamingSignedTrailer:
		return streamingSignedTrailerPayload
	case PayloadStreamingUnsignedTrailer:
		return streamingUnsignedTrailerPayload
	}
	return fmt.Sprintf("PayloadMode(%d)", int(m))
}

// Streaming reports whether the body is aws-chunked and must be read with
// Auth.NewChunkedReader.
func (m PayloadMode) Streaming() bool {
	return m == PayloadStreamingSigned || m == PayloadStreamingSignedTrailer || m == PayloadStreamingUnsignedTrailer
}

// Auth is the outcome of a successful Verify: who signed, and what the
// signature says about the body.
type Auth struct {
	AccessKeyID string
	Mode        PayloadMode
	Presigned   bool
	Date        time.Time // X-Amz-Date

	payloadHash [32]byte // PayloadSHA256: the signed body hash
	seed        [32]byte // the request signature: first "previous signature" of a chunked body
	signingKey  [32]byte
	amzDate     string // yyyymmddThhmmssZ, as signed
	scope       string // yyyymmdd/region/service/aws4_request, as signed
}

// Verify checks the SigV4 signature of r, header-signed or presigned, and
// returns who signed it. The body is not read: see Auth.CheckPayload and
// Auth.NewChunkedReader.
//
// Errors wrap ErrAnonymous, ErrMalformed, ErrScopeMismatch,
// ErrRequestTimeSkewed, ErrExpired, ErrSignatureMismatch, or the error of
// lookup (normally wrapping ErrUnknownKey; anything else, e.g. a storage
// error, is returned wrapped as is). Checks run in that order: the request
// is parsed and its canonical form built before the scope, the dates and
// finally the secret are looked at, so lookup is never called for a request
// that is malformed, out of scope or out of time.
func (v *Verifier) Verify(r *Request, lookup Lookup) (*Auth, error) {
	s := getScratch()
	defer putScratch(s)

	var p params
	if err := v.parse(r, &p); err != nil {
		return nil, err
	}
	var err error
	s.buf, err = v.appendCanonicalRequest(s.buf[:0], r, &p, s, false)
	if err != nil {
		return nil, err
	}
	if err := v.checkScope(&p); err != nil {
		return nil, err
	}
	if err := v.checkTime(&p); err != nil {
		return nil, err
	}

	secret, err := lookup(p.accessKey)
	if err != nil {
		return nil, fmt.Errorf("sigv4: access key %q: %w", p.accessKey, err)
	}
	key := v.signingKey.get(secret, p.scopeDate, p.region, v.service)

	crHash := sha256.Sum256(s.buf)
	s.buf = appendStringToSign(s.buf[:0], p.amzDate, p.scope, crHash[:])
	want := hmacSHA256(&s.hmac, &key, s.buf)
	if !hmac.Equal(want[:], p.signature[:]) {
		// The reference keeps inner runs of spaces in header values; AWS
		// SDK signers collapse them. Accept either spelling, so that both
		// kinds of clients work: the second try only happens for requests
		// that have such a value.
		if !hasInnerRuns(r.Headers, p.signedHeaders) {
			return nil, fmt.Errorf("access key %q: %w", p.accessKey, ErrSignatureMismatch)
		}
		s.buf, _ = v.appendCanonicalRequest(s.buf[:0], r, &p, s, true)
		crHash = sha256.Sum256(s.buf)
		s.buf = appendStringToSign(s.buf[:0], p.amzDate, p.scope, crHash[:])
		want = hmacSHA256(&s.hmac, &key, s.buf)
		if !hmac.Equal(want[:], p.signature[:]) {
			return nil, fmt.Errorf("access key %q: %w", p.accessKey, ErrSignatureMismatch)
		}
	}

	return &Auth{
		AccessKeyID: p.accessKey,
		Mode:        p.mode,
		Presigned:   p.presigned,
		Date:        p.date,
		payloadHash: p.payloadHash,
		seed:        p.signature,
		signingKey:  key,
		amzDate:     p.amzDate,
		scope:       p.scope,
	}, nil
}

// checkScope compares the parsed credential scope with the request date and
// the Verifier's service and regions.
func (v *Verifier) checkScope(p *params) error {
	if p.scopeDate != p.amzDate[:8] {
		return fmt.Errorf("scope date %q is not the day of %q: %w", p.scopeDate, p.amzDate, ErrScopeMismatch)
	}
	region := ""
	for _, r := range v.regions {
		if r != "" && p.scopeRegion == r {
			region = r
			break
		}
	}
	if region == "" {
		return fmt.Errorf("scope region %q not accepted: %w", p.scopeRegion, ErrScopeMismatch)
	}
	// Keep the Verifier's copy: it outlives the request in the key cache.
	p.region = region
	if p.scopeService != v.service {
		return fmt.Errorf("scope service %q, want %q: %w", p.scopeService, v.service, ErrScopeMismatch)
	}
	if p.scopeTerm != scopeTerminator {
		return fmt.Errorf("scope terminator %q, want %q: %w", p.scopeTerm, scopeTerminator, ErrScopeMismatch)
	}
	return nil
}

// checkTime applies the clock rules: a header-signed request must be within
// maxSkew of now either way; a presigned one must not start more than maxSkew
// in the future and must not have expired.
func (v *Verifier) checkTime(p *params) error {
	now := v.now()
	if p.presigned {
		if now.Before(p.date.Add(-v.maxSkew)) {
			return fmt.Errorf("presigned date %s is in the future: %w", p.amzDate, ErrRequestTimeSkewed)
		}
		if now.After(p.date.Add(p.expires)) {
			return fmt.Errorf("presigned date %s + %s is past: %w", p.amzDate, p.expires, ErrExpired)
		}
		return nil
	}
	if d := now.Sub(p.date); d > v.maxSkew || d < -v.maxSkew {
		return fmt.Errorf("date %s is %s away from now: %w", p.amzDate, d.Round(time.Second), ErrRequestTimeSkewed)
	}
	return nil
}

// scratch holds the per-call buffers of Verify, so that the hot path does not
// allocate. Pooled.
type scratch struct {
	buf   []byte  // canonical request, then string to sign
	query []byte  // re-encoded query parameters
	pairs []qpair // index of query into name/value pairs
	hmac  hmacBuf
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxPooledBytes bounds what a pooled scratch keeps, so that one huge
// request does not pin memory forever.
const maxPooledBytes = 64 << 10

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.buf) > maxPooledBytes || cap(s.query) > maxPooledBytes || cap(s.pairs) > maxPooledBytes/16 {
		return
	}
	scratchPool.Put(s)
}

// FindHeader returns the first value of the header name (lowercase; matched
// ignoring ASCII case) in hs and how many times it appears. Package sigv2
// reads headers with it too.
func FindHeader(hs []Header, name string) (value string, n int) { return header(hs, name) }

// header returns the first value of the header name (lowercase) and how many
// times it appears.
func header(hs []Header, name string) (value string, n int) {
	for i := range hs {
		if EqualFoldASCII(hs[i].Name, name) {
			if n == 0 {
				value = hs[i].Value
			}
			n++
		}
	}
	return value, n
}

// EqualFoldASCII reports whether a and b are equal ignoring ASCII case.
// Header names are ASCII; unlike strings.EqualFold it does not fold
// non-ASCII letters such as the Kelvin sign into 'k'.
func EqualFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFoldASCII(s, prefix string) bool {
	return len(s) >= len(prefix) && EqualFoldASCII(s[:len(prefix)], prefix)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// TrimOWS trims ASCII whitespace at both ends. Inner whitespace is kept:
// the reference server does not collapse it in canonical header values.
func TrimOWS(s string) string {
	return strings.Trim(s, " \t\r\n\v\f")
}
