// Package sigv4 signs HTTP requests with AWS Signature Version 4
// (header-based authentication, "AWS4-HMAC-SHA256").
//
// It is the client half of the scheme: the server verifies signatures in
// k2v/sigv4, and the two share test vectors, not code, because clients must
// import no server package.
//
// The signer is on the hot path of every SDK request, so it is written to
// allocate once per signature (the returned strings) in the steady state:
// the canonical request and the string to sign are built in pooled buffers
// and hashed with sha256.Sum256, and the per-request HMAC uses the signing
// key's inner and outer pads, precomputed once per day.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// Algorithm is the SigV4 algorithm name used in the Authorization header.
	Algorithm = "AWS4-HMAC-SHA256"

	// EmptyPayloadHash is the hex SHA-256 of an empty body.
	EmptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// UnsignedPayload is the X-Amz-Content-Sha256 value that exempts the body
	// from verification.
	UnsignedPayload = "UNSIGNED-PAYLOAD"

	// AmzDateFormat is the layout of the X-Amz-Date header.
	AmzDateFormat = "20060102T150405Z"
)

// Header is one header to sign. Name must be lowercase; Value is trimmed of
// leading and trailing spaces when canonicalised (inner spaces are kept).
type Header struct {
	Name  string
	Value string
}

// Request describes what Sign covers.
type Request struct {
	// Method is the HTTP method, e.g. "GET".
	Method string
	// Path is the request path exactly as it is sent on the wire (already
	// percent-encoded). The signer URI-encodes it once more, keeping '/',
	// as AWS SDKs do for every service except S3. "" means "/".
	Path string
	// RawQuery is the query string exactly as sent, without '?'.
	RawQuery string
	// Headers are the headers to sign besides x-amz-date, which Sign adds.
	// They must include "host"; names must be lowercase and unique. Order
	// does not matter.
	Headers []Header
	// PayloadHash is the X-Amz-Content-Sha256 value: the hex SHA-256 of the
	// body (see PayloadHash), or UnsignedPayload.
	PayloadHash string
}

// Signer signs requests for one access key, region and service. It is safe
// for concurrent use.
type Signer struct {
	accessKeyID string
	secret      string
	region      string
	service     string

	// key caches the signing key of the most recent day. Region, service
	// and secret are fixed per Signer, so the cache is keyed by
	// (day, region, service, secret) although only the day is compared.
	// Requests signed around midnight may re-derive a few times; a lost
	// race only costs a derivation.
	key atomic.Pointer[signingKey]
}

// signingKey holds HMAC-SHA256 pads of a derived key so that each signature
// costs two sha256.Sum256 calls and no allocation.
type signingKey struct {
	day  [8]byte // yyyymmdd
	ipad [sha256.BlockSize]byte
	opad [sha256.BlockSize]byte
}

// New returns a Signer for the given credentials, region and service
// (e.g. "k2v").
func New(accessKeyID, secretAccessKey, region, service string) *Signer {
	return &Signer{
		accessKeyID: accessKeyID,
		secret:      secretAccessKey,
		region:      region,
		service:     service,
	}
}

// PayloadHash returns the lowercase hex SHA-256 of body, the value of
// X-Amz-Content-Sha256 for a signed payload.
func PayloadHash(body []byte) string {
	if len(body) == 0 {
		return EmptyPayloadHash
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Sign computes the Authorization header for r at time t, and the
// X-Amz-Date value (t in UTC, formatted as AmzDateFormat) that must be sent
// with it. Both strings share one allocation.
func (s *Signer) Sign(r *Request, t time.Time) (authorization, amzDate string) {
	var date [16]byte
	appendAmzDate(date[:0], t)
	key := s.signingKey(date[:8])

	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)

	var order [maxInlineHeaders]int
	idx := sortHeaders(order[:0], r.Headers)

	// Canonical request, hashed.
	buf := appendCanonicalRequest(sc.buf[:0], &sc.q, r, idx, date[:])
	creqHash := sha256.Sum256(buf)

	// String to sign, preceded by the inner pad so that the inner HMAC hash
	// is a single Sum256 over contiguous bytes.
	buf = append(buf[:0], key.ipad[:]...)
	buf = appendStringToSign(buf, date[:], s.region, s.service, creqHash[:])
	inner := sha256.Sum256(buf)
	var outerIn [sha256.BlockSize + sha256.Size]byte
	copy(outerIn[:], key.opad[:])
	copy(outerIn[sha256.BlockSize:], inner[:])
	sig := sha256.Sum256(outerIn[:])

	// Authorization header followed by the date, one string.
	buf = append(buf[:0], Algorithm+" Credential="...)
	buf = append(buf, s.accessKeyID...)
	buf = append(buf, '/')
	buf = appendScope(buf, date[:8], s.region, s.service)
	buf = append(buf, ", SignedHeaders="...)
	buf = appendSignedHeaders(buf, r.Headers, idx)
	buf = append(buf, ", Signature="...)
	buf = hex.AppendEncode(buf, sig[:])
	n := len(buf)
	buf = append(buf, date[:]...)
	out := string(buf)
	if cap(buf) <= maxPooledBytes { // do not keep a huge request's buffer
		sc.buf = buf
	}
	return out[:n], out[n:]
}

// signingKey returns the pads of the signing key for day (yyyymmdd),
// deriving and caching it when the cached one is for another day.
func (s *Signer) signingKey(day []byte) *signingKey {
	if k := s.key.Load(); k != nil && string(k.day[:]) == string(day) {
		return k
	}
	k := deriveKey(s.secret, day, s.region, s.service)
	s.key.Store(k)
	return k
}

// deriveKey runs the SigV4 key derivation chain:
// HMAC(HMAC(HMAC(HMAC("AWS4"+secret, day), region), service), "aws4_request").
func deriveKey(secret string, day []byte, region, service string) *signingKey {
	h := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	kDate := h([]byte("AWS4"+secret), string(day))
	kRegion := h(kDate, region)
	kService := h(kRegion, service)
	kSigning := h(kService, "aws4_request")

	k := &signingKey{}
	copy(k.day[:], day)
	// kSigning is 32 bytes, shorter than the block: zero-padded, never hashed.
	for i := range k.ipad {
		var b byte
		if i < len(kSigning) {
			b = kSigning[i]
		}
		k.ipad[i] = b ^ 0x36
		k.opad[i] = b ^ 0x5c
	}
	return k
}

// maxInlineHeaders bounds the header index array kept on the stack; more
// headers still work, with an allocation.
const maxInlineHeaders = 8

// maxPooledBytes bounds the buffers kept in scratchPool.
const maxPooledBytes = 16 << 10

type scratch struct {
	buf []byte
	q   queryScratch
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{buf: make([]byte, 0, 1024)}
}}

// amzDateHeader is the position of x-amz-date in a sorted index list: it is
// not in Request.Headers, Sign adds it.
const amzDateHeader = -1

// sortHeaders returns the indexes of hs plus amzDateHeader, ordered by
// header name (insertion sort: there are a handful of headers).
func sortHeaders(dst []int, hs []Header) []int {
	dst = append(dst, amzDateHeader)
	for i := range hs {
		dst = append(dst, i)
	}
	name := func(i int) string {
		if i == amzDateHeader {
			return "x-amz-date"
		}
		return hs[i].Name
	}
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && name(dst[j]) < name(dst[j-1]); j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}

func appendSignedHeaders(dst []byte, hs []Header, idx []int) []byte {
	for n, i := range idx {
		if n > 0 {
			dst = append(dst, ';')
		}
		if i == amzDateHeader {
			dst = append(dst, "x-amz-date"...)
		} else {
			dst = append(dst, hs[i].Name...)
		}
	}
	return dst
}

// appendCanonicalRequest appends the SigV4 canonical request:
// method, canonical URI, canonical query, canonical headers, signed headers
// and payload hash, separated by newlines.
func appendCanonicalRequest(dst []byte, q *queryScratch, r *Request, idx []int, amzDate []byte) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	if r.Path == "" {
		dst = append(dst, '/')
	} else {
		dst = appendURIEncode(dst, r.Path, true)
	}
	dst = append(dst, '\n')
	dst = q.appendCanonicalQuery(dst, r.RawQuery)
	dst = append(dst, '\n')
	for _, i := range idx {
		if i == amzDateHeader {
			dst = append(dst, "x-amz-date:"...)
			dst = append(dst, amzDate...)
		} else {
			dst = append(dst, r.Headers[i].Name...)
			dst = append(dst, ':')
			dst = append(dst, trimSpace(r.Headers[i].Value)...)
		}
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = appendSignedHeaders(dst, r.Headers, idx)
	dst = append(dst, '\n')
	dst = append(dst, r.PayloadHash...)
	return dst
}

func appendScope(dst, day []byte, region, service string) []byte {
	dst = append(dst, day...)
	dst = append(dst, '/')
	dst = append(dst, region...)
	dst = append(dst, '/')
	dst = append(dst, service...)
	dst = append(dst, "/aws4_request"...)
	return dst
}

func appendStringToSign(dst, amzDate []byte, region, service string, creqHash []byte) []byte {
	dst = append(dst, Algorithm+"\n"...)
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = appendScope(dst, amzDate[:8], region, service)
	dst = append(dst, '\n')
	dst = hex.AppendEncode(dst, creqHash)
	return dst
}

// appendAmzDate appends t in UTC as yyyymmddThhmmssZ without going through
// time.Format's allocation.
func appendAmzDate(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	dst = appendDigits(dst, y, 4)
	dst = appendDigits(dst, int(mo), 2)
	dst = appendDigits(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, h, 2)
	dst = appendDigits(dst, mi, 2)
	dst = appendDigits(dst, s, 2)
	return append(dst, 'Z')
}

func appendDigits(dst []byte, v, width int) []byte {
	var b [4]byte
	for i := width - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
