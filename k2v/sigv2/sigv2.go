package sigv2

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grangeio/grange/k2v/sigv4"
)

// The request description, the key lookup and the error values are those of
// package sigv4, so that the S3 layer builds one Request for both signature
// versions and maps errors with one table.
type (
	// Request is sigv4.Request: method, raw path, raw query, headers as
	// received.
	Request = sigv4.Request
	// Header is sigv4.Header.
	Header = sigv4.Header
	// Lookup is sigv4.Lookup: the secret of an access key, or an error
	// wrapping ErrUnknownKey.
	Lookup = sigv4.Lookup
)

// Errors returned by Verify, always wrapped with details; match them with
// errors.Is. They are the values of package sigv4.
var (
	// ErrAnonymous: neither an Authorization header nor an AWSAccessKeyId,
	// Signature or Expires query parameter.
	ErrAnonymous = sigv4.ErrAnonymous
	// ErrMalformed: the Authorization header, the query parameters, a date
	// or a header that must appear at most once are unusable, or a
	// presigned URL expires more than MaxPresignExpires (+ MaxSkew) from now.
	ErrMalformed = sigv4.ErrMalformed
	// ErrRequestTimeSkewed: the request date (x-amz-date or Date) is more
	// than MaxSkew from the server's clock.
	ErrRequestTimeSkewed = sigv4.ErrRequestTimeSkewed
	// ErrExpired: a presigned request used after its Expires.
	ErrExpired = sigv4.ErrExpired
	// ErrUnknownKey is what a Lookup wraps when the access key does not exist.
	ErrUnknownKey = sigv4.ErrUnknownKey
	// ErrSignatureMismatch: the request signature is not the one the secret
	// gives.
	ErrSignatureMismatch = sigv4.ErrSignatureMismatch
)

// DefaultMaxSkew is the clock difference accepted when Config.MaxSkew is
// zero; it is the one S3 uses.
const DefaultMaxSkew = sigv4.DefaultMaxSkew

// MaxPresignExpires is how far in the future (plus MaxSkew) the Expires of a
// presigned URL may be: seven days, the limit SigV4 puts on X-Amz-Expires.
const MaxPresignExpires = sigv4.MaxPresignExpires

// Config configures a Verifier. A zero field means its default.
type Config struct {
	// MaxSkew is the allowed difference between the request date and the
	// server's clock, in both directions; zero or negative means
	// DefaultMaxSkew.
	MaxSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks SigV2 signatures. It is safe for concurrent use.
type Verifier struct {
	maxSkew time.Duration
	now     func() time.Time
}

// New returns a Verifier for cfg.
func New(cfg Config) *Verifier {
	v := &Verifier{maxSkew: cfg.MaxSkew, now: cfg.Now}
	if v.maxSkew <= 0 {
		v.maxSkew = DefaultMaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// Auth is the outcome of a successful Verify: who signed.
type Auth struct {
	AccessKeyID string
	Presigned   bool
	// Date is the request time (x-amz-date, else Date) of a header-signed
	// request, and the Expires time of a presigned one.
	Date time.Time
}

// Names of the query-string authentication parameters.
const (
	qAccessKey = "AWSAccessKeyId"
	qExpires   = "Expires"
	qSignature = "Signature"
)

// authScheme starts a SigV2 Authorization header.
const authScheme = "AWS "

// Is reports whether r carries SigV2 credentials: an Authorization header
// of the "AWS " scheme, or an AWSAccessKeyId or Signature query parameter
// without X-Amz-Algorithm (the SigV4 presigned form). The S3 layer uses it
// to pick sigv2 or sigv4; Verify itself does not need it.
func Is(r *Request) bool {
	for _, h := range r.Headers {
		if sigv4.EqualFoldASCII(h.Name, "authorization") {
			return strings.HasPrefix(sigv4.TrimOWS(h.Value), authScheme)
		}
	}
	v4 := false
	v2 := false
	for rest := r.RawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		name, _, _ := strings.Cut(seg, "=")
		switch name {
		case "X-Amz-Algorithm":
			v4 = true
		case qAccessKey, qSignature:
			v2 = true
		}
	}
	return v2 && !v4
}

// params is what Verify extracts from a request before computing anything.
type params struct {
	presigned bool
	accessKey string
	signature [sha1.Size]byte
	date      time.Time // header form: request time; presigned: Expires
	dateLine  string    // the Date line of the string to sign
	extra     []Header  // presigned: x-amz-* query parameters, signed as headers
	md5, ctyp string    // Content-MD5 and Content-Type lines
}

// Verify checks the SigV2 signature of r, header-signed or presigned, and
// returns who signed it. The body is not read.
//
// bucket is the bucket name of a virtual-hosted-style request, taken by the
// caller from the Host header ("johnsmith" for johnsmith.s3.example.com, the
// whole host for a CNAME); it is prefixed to the path as "/"+bucket in the
// CanonicalizedResource. For a path-style request (bucket in the path), and
// for requests on the service ("GET /" listing buckets), bucket is "".
//
// Errors wrap ErrAnonymous, ErrMalformed, ErrRequestTimeSkewed, ErrExpired,
// ErrSignatureMismatch, or the error of lookup (normally wrapping
// ErrUnknownKey). lookup is called only for a well-formed request within its
// time limits.
func (v *Verifier) Verify(r *Request, bucket string, lookup Lookup) (*Auth, error) {
	var p params
	if err := v.parse(r, &p); err != nil {
		return nil, err
	}
	sts := appendStringToSign(nil, r, bucket, &p)
	if err := v.checkTime(&p); err != nil {
		return nil, err
	}
	secret, err := lookup(p.accessKey)
	if err != nil {
		return nil, fmt.Errorf("sigv2: access key %q: %w", p.accessKey, err)
	}
	m := hmac.New(sha1.New, []byte(secret))
	m.Write(sts)
	if !hmac.Equal(m.Sum(nil), p.signature[:]) {
		return nil, fmt.Errorf("sigv2: access key %q: %w", p.accessKey, ErrSignatureMismatch)
	}
	return &Auth{AccessKeyID: p.accessKey, Presigned: p.presigned, Date: p.date}, nil
}

// parse fills p from r. Everything it rejects is ErrAnonymous or
// ErrMalformed.
func (v *Verifier) parse(r *Request, p *params) error {
	authz, nAuthz := sigv4.FindHeader(r.Headers, "authorization")
	q, err := parseAuthQuery(r.RawQuery)
	if err != nil {
		return err
	}
	switch {
	case nAuthz == 0 && !q.any:
		return ErrAnonymous
	case nAuthz > 0 && q.any:
		return fmt.Errorf("sigv2: both an Authorization header and query authentication: %w", ErrMalformed)
	case nAuthz > 1:
		return fmt.Errorf("sigv2: %d Authorization headers: %w", nAuthz, ErrMalformed)
	}

	md5, err := singleHeader(r.Headers, "content-md5")
	if err != nil {
		return err
	}
	ctyp, err := singleHeader(r.Headers, "content-type")
	if err != nil {
		return err
	}
	p.md5, p.ctyp = md5, ctyp

	if q.any {
		return parsePresigned(q, p)
	}

	if err := parseAuthorization(authz, p); err != nil {
		return err
	}
	amzDate, err := singleHeader(r.Headers, "x-amz-date")
	if err != nil {
		return err
	}
	date, err := singleHeader(r.Headers, "date")
	if err != nil {
		return err
	}
	when := date
	p.dateLine = date
	if _, n := sigv4.FindHeader(r.Headers, "x-amz-date"); n > 0 {
		// x-amz-date is signed among the x-amz-* headers; the Date line
		// is then empty.
		when = amzDate
		p.dateLine = ""
	}
	if when == "" {
		return fmt.Errorf("sigv2: no Date or x-amz-date header: %w", ErrMalformed)
	}
	t, ok := parseHTTPDate(when)
	if !ok {
		return fmt.Errorf("sigv2: unparsable request date %q: %w", when, ErrMalformed)
	}
	p.date = t
	return nil
}

// parseAuthorization parses "AWS <AccessKeyId>:<base64 Signature>".
func parseAuthorization(s string, p *params) error {
	rest, ok := strings.CutPrefix(sigv4.TrimOWS(s), authScheme)
	if !ok {
		scheme, _, _ := strings.Cut(sigv4.TrimOWS(s), " ")
		return fmt.Errorf("sigv2: unsupported authorization scheme %q: %w", scheme, ErrMalformed)
	}
	rest = sigv4.TrimOWS(rest)
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return fmt.Errorf("sigv2: authorization is not AWS AccessKeyId:Signature: %w", ErrMalformed)
	}
	p.accessKey = rest[:i]
	if strings.ContainsAny(p.accessKey, " \t:") {
		return fmt.Errorf("sigv2: bad access key in authorization: %w", ErrMalformed)
	}
	return decodeSignature(rest[i+1:], p)
}

// decodeSignature reads a standard base64 HMAC-SHA1.
func decodeSignature(s string, p *params) error {
	if len(s) != base64.StdEncoding.EncodedLen(sha1.Size) {
		return fmt.Errorf("sigv2: signature is not 28 base64 characters: %w", ErrMalformed)
	}
	var buf [sha1.Size + 2]byte
	n, err := base64.StdEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != sha1.Size {
		return fmt.Errorf("sigv2: signature is not base64 HMAC-SHA1: %w", ErrMalformed)
	}
	copy(p.signature[:], buf[:n])
	return nil
}

// authQuery holds the query-string authentication parameters.
type authQuery struct {
	any                           bool // one of them is present
	accessKey, expires, signature string
	haveKey, haveExp, haveSig     bool
	extra                         []Header // x-amz-*, content-md5, content-type parameters
}

// parseAuthQuery reads AWSAccessKeyId, Expires and Signature (names matched
// exactly, values percent-decoded), and the parameters that a presigning
// client may have moved from the headers to the query. Expires alone is not
// query authentication (it is also an ordinary parameter name).
func parseAuthQuery(rawQuery string) (authQuery, error) {
	var q authQuery
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		name, value, _ := strings.Cut(seg, "=")
		var dst *string
		var have *bool
		switch name {
		case qAccessKey:
			dst, have = &q.accessKey, &q.haveKey
		case qExpires:
			dst, have = &q.expires, &q.haveExp
		case qSignature:
			dst, have = &q.signature, &q.haveSig
		default:
			lname := lowerASCII(unquote(name))
			if strings.HasPrefix(lname, "x-amz-") || lname == "content-md5" || lname == "content-type" {
				q.extra = append(q.extra, Header{Name: lname, Value: unquote(value)})
			}
			continue
		}
		if *have {
			return q, fmt.Errorf("sigv2: repeated %s query parameter: %w", name, ErrMalformed)
		}
		*dst, *have = unquote(value), true
	}
	q.any = q.haveKey || q.haveSig
	return q, nil
}

// parsePresigned fills p from the query-string authentication parameters.
// Content-MD5 and Content-Type given in the query replace the headers, and
// x-amz-* query parameters are signed as headers, as botocore's SigV2
// presigner puts them there.
func parsePresigned(q authQuery, p *params) error {
	switch {
	case !q.haveKey:
		return fmt.Errorf("sigv2: presigned request without %s: %w", qAccessKey, ErrMalformed)
	case !q.haveSig:
		return fmt.Errorf("sigv2: presigned request without %s: %w", qSignature, ErrMalformed)
	case !q.haveExp:
		return fmt.Errorf("sigv2: presigned request without %s: %w", qExpires, ErrMalformed)
	case q.accessKey == "":
		return fmt.Errorf("sigv2: empty %s: %w", qAccessKey, ErrMalformed)
	}
	p.presigned = true
	p.accessKey = q.accessKey
	if err := decodeSignature(q.signature, p); err != nil {
		return err
	}
	if q.expires == "" || strings.TrimLeft(q.expires, "0123456789") != "" {
		return fmt.Errorf("sigv2: %s %q is not a Unix time: %w", qExpires, q.expires, ErrMalformed)
	}
	secs, err := strconv.ParseInt(q.expires, 10, 64)
	if err != nil || secs > 1<<40 {
		return fmt.Errorf("sigv2: %s %q out of range: %w", qExpires, q.expires, ErrMalformed)
	}
	p.date = time.Unix(secs, 0).UTC()
	p.dateLine = q.expires
	for _, h := range q.extra {
		switch h.Name {
		case "content-md5":
			p.md5 = sigv4.TrimOWS(h.Value)
		case "content-type":
			p.ctyp = sigv4.TrimOWS(h.Value)
		default:
			p.extra = append(p.extra, h)
		}
	}
	return nil
}

// checkTime applies the clock rules: a header-signed request within maxSkew
// of now either way; a presigned one not expired and not expiring more than
// MaxPresignExpires + maxSkew from now.
func (v *Verifier) checkTime(p *params) error {
	now := v.now()
	if p.presigned {
		if now.After(p.date) {
			return fmt.Errorf("sigv2: presigned request expired at %s: %w", p.date.Format(time.RFC3339), ErrExpired)
		}
		if p.date.Sub(now) > MaxPresignExpires+v.maxSkew {
			return fmt.Errorf("sigv2: presigned request expires at %s, more than %s from now: %w",
				p.date.Format(time.RFC3339), MaxPresignExpires, ErrMalformed)
		}
		return nil
	}
	if d := now.Sub(p.date); d > v.maxSkew || d < -v.maxSkew {
		return fmt.Errorf("sigv2: request date %s is %s away from now: %w",
			p.date.Format(time.RFC3339), d.Round(time.Second), ErrRequestTimeSkewed)
	}
	return nil
}

// parseHTTPDate accepts the formats of net/http.ParseTime (RFC 1123 with
// GMT, RFC 850, ANSI C) and RFC 1123 with a numeric zone, which the AWS
// documentation's examples and several SDKs send ("+0000").
func parseHTTPDate(s string) (time.Time, bool) {
	for _, layout := range [...]string{time.RFC1123, time.RFC1123Z, time.RFC850, time.ANSIC} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// subResources are the query parameters of the CanonicalizedResource: the
// list of the AWS SigV2 documentation, and the later ones that botocore's
// SigV2 signer (HmacV1Auth) also signs, so that its requests verify.
var subResources = map[string]bool{
	"accelerate": true, "acl": true, "analytics": true, "cors": true,
	"defaultObjectAcl": true, "delete": true, "inventory": true,
	"lifecycle": true, "location": true, "logging": true, "metrics": true,
	"notification": true, "object-lock": true, "partNumber": true,
	"policy": true, "replication": true, "requestPayment": true,
	"response-cache-control": true, "response-content-disposition": true,
	"response-content-encoding": true, "response-content-language": true,
	"response-content-type": true, "response-expires": true,
	"restore": true, "select": true, "select-type": true,
	"storageClass": true, "tagging": true, "torrent": true,
	"uploadId": true, "uploads": true, "versionId": true,
	"versioning": true, "versions": true, "website": true,
}

func isSubResource(name string) bool { return subResources[name] }

// appendStringToSign appends
//
//	Method \n Content-MD5 \n Content-Type \n Date \n CanonicalizedAmzHeaders CanonicalizedResource
func appendStringToSign(dst []byte, r *Request, bucket string, p *params) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = append(dst, p.md5...)
	dst = append(dst, '\n')
	dst = append(dst, p.ctyp...)
	dst = append(dst, '\n')
	dst = append(dst, p.dateLine...)
	dst = append(dst, '\n')
	dst = appendAmzHeaders(dst, r.Headers, p.extra)
	return appendResource(dst, bucket, r.RawPath, r.RawQuery)
}

// appendAmzHeaders appends every x-amz-* header (and extra, already
// lowercase) as "name:value\n": names lowercased and sorted, values trimmed,
// the values of a repeated name joined with ',' in the order received.
func appendAmzHeaders(dst []byte, hs, extra []Header) []byte {
	var amz []Header
	for _, h := range hs {
		if len(h.Name) >= 6 && sigv4.EqualFoldASCII(h.Name[:6], "x-amz-") {
			amz = append(amz, Header{Name: lowerASCII(h.Name), Value: sigv4.TrimOWS(h.Value)})
		}
	}
	for _, h := range extra {
		amz = append(amz, Header{Name: h.Name, Value: sigv4.TrimOWS(h.Value)})
	}
	slices.SortStableFunc(amz, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })
	for i, h := range amz {
		if i > 0 && amz[i-1].Name == h.Name {
			dst = append(dst, ',')
		} else {
			if i > 0 {
				dst = append(dst, '\n')
			}
			dst = append(dst, h.Name...)
			dst = append(dst, ':')
		}
		dst = append(dst, h.Value...)
	}
	if len(amz) > 0 {
		dst = append(dst, '\n')
	}
	return dst
}

// appendResource appends the CanonicalizedResource: "/"+bucket if bucket is
// not empty, the raw path as received ("/" if empty), then the sub-resources
// of the query sorted by name (stable), as "?name" or "?name=value" with the
// value percent-decoded, joined with '&'.
func appendResource(dst []byte, bucket, rawPath, rawQuery string) []byte {
	if bucket != "" {
		dst = append(dst, '/')
		dst = append(dst, bucket...)
	}
	if rawPath == "" {
		rawPath = "/"
	}
	dst = append(dst, rawPath...)
	type sub struct {
		name, value string
		hasValue    bool
	}
	var subs []sub
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		name, value, hasValue := strings.Cut(seg, "=")
		if isSubResource(name) {
			subs = append(subs, sub{name, value, hasValue})
		}
	}
	slices.SortStableFunc(subs, func(a, b sub) int { return strings.Compare(a.name, b.name) })
	for i, s := range subs {
		if i == 0 {
			dst = append(dst, '?')
		} else {
			dst = append(dst, '&')
		}
		dst = append(dst, s.name...)
		if s.hasValue {
			dst = append(dst, '=')
			dst = append(dst, unquote(s.value)...)
		}
	}
	return dst
}

// unquote decodes %XX escapes and leaves '+' and invalid escapes as they
// are, like Python's urllib.parse.unquote that botocore applies to
// sub-resource values.
func unquote(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// singleHeader returns the trimmed value of a header that may appear at most
// once, or "" if it is absent.
func singleHeader(hs []Header, name string) (string, error) {
	v, n := sigv4.FindHeader(hs, name)
	if n > 1 {
		return "", fmt.Errorf("sigv2: %d %s headers: %w", n, name, ErrMalformed)
	}
	return sigv4.TrimOWS(v), nil
}

// lowerASCII lowercases ASCII letters only.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
