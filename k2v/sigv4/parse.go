package sigv4

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	scopeTerminator = "aws4_request"
	amzDateLayout   = "20060102T150405Z"
)

// Names of the presigned-URL query parameters Verify reads.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
)

// params is what Verify extracts from a request before computing anything.
type params struct {
	presigned bool
	accessKey string

	scope        string // "yyyymmdd/region/service/aws4_request" as given
	scopeDate    string
	scopeRegion  string
	scopeService string
	scopeTerm    string
	region       string // the Verifier's copy of scopeRegion, set by checkScope

	signedHeaders string // canonical: lowercase, sorted, ';'-separated
	signature     [32]byte

	amzDate string // yyyymmddThhmmssZ
	date    time.Time
	expires time.Duration // presigned only

	payloadLine string // last line of the canonical request
	mode        PayloadMode
	payloadHash [32]byte // PayloadSHA256 only
}

// parse fills p from r: which form of authentication, the signature
// parameters, the date and the payload hash. Everything it rejects is
// ErrAnonymous or ErrMalformed.
func (v *Verifier) parse(r *Request, p *params) error {
	authz, nAuthz := header(r.Headers, "authorization")
	presigned := queryHasName(r.RawQuery, qAlgorithm)
	switch {
	case nAuthz == 0 && !presigned:
		return ErrAnonymous
	case nAuthz > 0 && presigned:
		return fmt.Errorf("both an Authorization header and %s: %w", qAlgorithm, ErrMalformed)
	case nAuthz > 1:
		return fmt.Errorf("%d Authorization headers: %w", nAuthz, ErrMalformed)
	}

	if presigned {
		if err := parsePresigned(r.RawQuery, p); err != nil {
			return err
		}
	} else {
		if err := parseAuthorization(authz, p); err != nil {
			return err
		}
		date, err := singleHeader(r.Headers, "x-amz-date")
		if err != nil {
			return err
		}
		if err := parseDate(date, p); err != nil {
			return err
		}
		hash, err := singleHeader(r.Headers, "x-amz-content-sha256")
		if err != nil {
			return err
		}
		if err := parsePayloadHash(hash, p); err != nil {
			return err
		}
	}

	sh, err := canonicalSignedHeaders(p.signedHeaders)
	if err != nil {
		return err
	}
	p.signedHeaders = sh
	if !listHas(sh, "host") {
		return fmt.Errorf("host is not a signed header: %w", ErrMalformed)
	}
	return nil
}

// singleHeader returns the trimmed value of a header that must appear
// exactly once.
func singleHeader(hs []Header, name string) (string, error) {
	v, n := header(hs, name)
	switch {
	case n == 0:
		return "", fmt.Errorf("missing %s header: %w", name, ErrMalformed)
	case n > 1:
		return "", fmt.Errorf("%d %s headers: %w", n, name, ErrMalformed)
	}
	return TrimOWS(v), nil
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/20250101/region/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// The three components may come in any order, with optional whitespace
// around the commas; each must appear exactly once and nothing else may.
func parseAuthorization(s string, p *params) error {
	rest, ok := strings.CutPrefix(TrimOWS(s), algorithm)
	if !ok {
		alg, _, _ := strings.Cut(s, " ")
		return fmt.Errorf("unsupported authorization scheme %q: %w", alg, ErrMalformed)
	}
	if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return fmt.Errorf("authorization: no space after %s: %w", algorithm, ErrMalformed)
	}
	rest = TrimOWS(rest)
	var haveCred, haveSH, haveSig bool
	for more := true; more; {
		var part string
		part, rest, more = strings.Cut(rest, ",")
		name, value, ok := strings.Cut(TrimOWS(part), "=")
		if !ok {
			return fmt.Errorf("authorization: component %q is not name=value: %w", part, ErrMalformed)
		}
		var dup bool
		var err error
		switch name {
		case "Credential":
			dup, haveCred = haveCred, true
			err = parseCredential(value, p)
		case "SignedHeaders":
			dup, haveSH = haveSH, true
			p.signedHeaders = value
		case "Signature":
			dup, haveSig = haveSig, true
			err = parseSignature(value, p)
		default:
			return fmt.Errorf("authorization: unknown component %q: %w", name, ErrMalformed)
		}
		if dup {
			return fmt.Errorf("authorization: repeated %s: %w", name, ErrMalformed)
		}
		if err != nil {
			return err
		}
	}
	if !haveCred || !haveSH || !haveSig {
		return fmt.Errorf("authorization: Credential, SignedHeaders and Signature are all required: %w", ErrMalformed)
	}
	return nil
}

// parsePresigned reads the query-string authentication parameters. The
// payload of a presigned request is always UNSIGNED-PAYLOAD.
func parsePresigned(rawQuery string, p *params) error {
	var vals [6]string
	var have [6]bool
	names := [6]string{qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature}
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		rawName, rawValue, _ := strings.Cut(seg, "=")
		for i, n := range names {
			if !queryNameIs(rawName, n) {
				continue
			}
			if have[i] {
				return fmt.Errorf("repeated %s: %w", n, ErrMalformed)
			}
			v, err := queryUnescape(rawValue)
			if err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			vals[i], have[i] = v, true
			break
		}
	}
	for i, n := range names {
		if !have[i] {
			return fmt.Errorf("presigned request without %s: %w", n, ErrMalformed)
		}
	}
	if vals[0] != algorithm {
		return fmt.Errorf("unsupported %s %q: %w", qAlgorithm, vals[0], ErrMalformed)
	}
	if err := parseCredential(vals[1], p); err != nil {
		return err
	}
	if err := parseDate(vals[2], p); err != nil {
		return err
	}
	exp, err := parseExpires(vals[3])
	if err != nil {
		return err
	}
	p.expires = exp
	p.signedHeaders = vals[4]
	if err := parseSignature(vals[5], p); err != nil {
		return err
	}
	p.presigned = true
	p.payloadLine = unsignedPayload
	p.mode = PayloadUnsigned
	return nil
}

// parseCredential splits AKID/yyyymmdd/region/service/aws4_request. It only
// checks the shape; checkScope compares the parts with the request.
func parseCredential(s string, p *params) error {
	var parts [5]string
	rest := s
	for i := range parts {
		var ok bool
		parts[i], rest, ok = strings.Cut(rest, "/")
		if parts[i] == "" || ok != (i < len(parts)-1) {
			return fmt.Errorf("credential %q is not AKID/date/region/service/aws4_request: %w", s, ErrMalformed)
		}
	}
	p.accessKey = parts[0]
	p.scope = s[len(parts[0])+1:]
	p.scopeDate, p.scopeRegion, p.scopeService, p.scopeTerm = parts[1], parts[2], parts[3], parts[4]
	return nil
}

func parseSignature(s string, p *params) error {
	if len(s) != 2*len(p.signature) {
		return fmt.Errorf("signature is not 64 hex digits: %w", ErrMalformed)
	}
	if !decodeHex(p.signature[:], s) {
		return fmt.Errorf("signature is not 64 hex digits: %w", ErrMalformed)
	}
	return nil
}

// parseDate parses X-Amz-Date strictly: exactly yyyymmddThhmmssZ, UTC, with
// every field in range (time.Parse would accept more).
func parseDate(s string, p *params) error {
	bad := func() error {
		return fmt.Errorf("date %q is not %s: %w", s, amzDateLayout, ErrMalformed)
	}
	if len(s) != len(amzDateLayout) || s[8] != 'T' || s[15] != 'Z' {
		return bad()
	}
	num := func(i, j int) int {
		n := 0
		for _, c := range []byte(s[i:j]) {
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d := num(0, 4), num(4, 6), num(6, 8)
	h, mi, sec := num(9, 11), num(11, 13), num(13, 15)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return bad()
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // 31 April, 29 February of a common year
		return bad()
	}
	p.amzDate, p.date = s, t
	return nil
}

// parseExpires parses X-Amz-Expires: decimal seconds, 0 to 604800.
func parseExpires(s string) (time.Duration, error) {
	if s == "" || len(s) > 7 {
		return 0, fmt.Errorf("%s %q: %w", qExpires, s, ErrMalformed)
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s %q is not a number of seconds: %w", qExpires, s, ErrMalformed)
		}
		n = n*10 + int(c-'0')
	}
	d := time.Duration(n) * time.Second
	if d > MaxPresignExpires {
		return 0, fmt.Errorf("%s %q is more than %d: %w", qExpires, s, int(MaxPresignExpires/time.Second), ErrMalformed)
	}
	return d, nil
}

// parsePayloadHash reads X-Amz-Content-Sha256. "STREAMING-UNSIGNED-PAYLOAD"
// (without -TRAILER) and the SigV4a ECDSA variants are not supported.
func parsePayloadHash(s string, p *params) error {
	p.payloadLine = s
	switch s {
	case unsignedPayload:
		p.mode = PayloadUnsigned
	case streamingSignedPayload:
		p.mode = PayloadStreamingSigned
	case streamingSignedTrailerPayload:
		p.mode = PayloadStreamingSignedTrailer
	case streamingUnsignedTrailerPayload:
		p.mode = PayloadStreamingUnsignedTrailer
	default:
		if !isLowerHex(s, 2*len(p.payloadHash)) {
			return fmt.Errorf("unsupported x-amz-content-sha256 %q: %w", s, ErrMalformed)
		}
		decodeHex(p.payloadHash[:], s)
		p.mode = PayloadSHA256
	}
	return nil
}

// decodeHex decodes s, of exactly 2*len(dst) hex digits of either case,
// into dst. Unlike hex.Decode it takes a string, so nothing is copied.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// canonicalSignedHeaders returns the SignedHeaders list in canonical form:
// lowercase names, sorted, ';'-separated.
//
// SigV4 requires clients to send it in that form already, and every signer
// we know does. If one does not, we sort and lowercase it rather than reject
// it, as the reference server does (it reads the list into a sorted set);
// the signature covers the canonical list either way. A name given twice,
// an empty name or a byte that cannot be in a header name is ErrMalformed.
func canonicalSignedHeaders(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty SignedHeaders: %w", ErrMalformed)
	}
	canonical := true
	prev := ""
	for rest := s; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		if name == "" {
			return "", fmt.Errorf("SignedHeaders %q has an empty name: %w", s, ErrMalformed)
		}
		for _, c := range []byte(name) {
			if !isTokenChar(c) {
				return "", fmt.Errorf("SignedHeaders %q: invalid byte %q: %w", s, c, ErrMalformed)
			}
			if 'A' <= c && c <= 'Z' {
				canonical = false
			}
		}
		if prev >= name && prev != "" {
			canonical = false
		}
		prev = name
	}
	if strings.HasSuffix(s, ";") {
		return "", fmt.Errorf("SignedHeaders %q has an empty name: %w", s, ErrMalformed)
	}
	if canonical {
		return s, nil
	}
	names := strings.Split(strings.ToLower(s), ";")
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return "", fmt.Errorf("SignedHeaders %q: %s given twice: %w", s, names[i], ErrMalformed)
		}
	}
	return strings.Join(names, ";"), nil
}

// isTokenChar reports whether c may appear in an HTTP header name (RFC 9110
// tchar).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// listHas reports whether the ';'-separated list has the element name.
func listHas(list, name string) bool {
	for rest := list; rest != ""; {
		var n string
		n, rest, _ = strings.Cut(rest, ";")
		if n == name {
			return true
		}
	}
	return false
}

// PresignedHeaders returns the X-Amz-* parameters of a presigned request's
// query that are not authentication parameters (X-Amz-Algorithm,
// -Credential, -Date, -Expires, -SignedHeaders, -Signature), decoded, with
// lowercase names. SDKs move x-amz-* headers into the query when presigning
// (x-amz-acl, x-amz-storage-class, x-amz-security-token…): after a
// successful Verify the caller should apply them as request headers, as S3
// does. Verify itself needs none of them: they are covered by the signature
// as query parameters.
func PresignedHeaders(rawQuery string) ([]Header, error) {
	var hs []Header
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		rawName, rawValue, _ := strings.Cut(seg, "=")
		name, err := queryUnescape(rawName)
		if err != nil {
			return nil, err
		}
		if !hasPrefixFoldASCII(name, "x-amz-") {
			continue
		}
		switch name {
		case qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature:
			continue
		}
		value, err := queryUnescape(rawValue)
		if err != nil {
			return nil, err
		}
		hs = append(hs, Header{Name: strings.ToLower(name), Value: value})
	}
	return hs, nil
}
