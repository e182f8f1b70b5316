package sigv4

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// appendCanonicalRequest appends the SigV4 canonical request of r to dst:
//
//	<method>\n<canonical URI>\n<canonical query>\n<canonical headers>\n<signed headers>\n<payload hash>
//
// where the canonical headers end with their own '\n' each. It also enforces
// the rules on the header set (every signed header present, every x-amz-*
// header signed), so all its errors are ErrMalformed.
//
// With collapse, runs of spaces and tabs inside header values become one
// space, as AWS SDK signers write them; without, they are kept, as the
// reference server does.
func (v *Verifier) appendCanonicalRequest(dst []byte, r *Request, p *params, s *scratch, collapse bool) ([]byte, error) {
	var err error
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	dst = v.appendCanonicalURI(dst, r.RawPath)
	dst = append(dst, '\n')
	if dst, err = appendCanonicalQuery(dst, r.RawQuery, p.presigned, s); err != nil {
		return dst, err
	}
	dst = append(dst, '\n')
	if dst, err = appendCanonicalHeaders(dst, r.Headers, p.signedHeaders, collapse); err != nil {
		return dst, err
	}
	dst = append(dst, '\n')
	dst = append(dst, p.signedHeaders...)
	dst = append(dst, '\n')
	dst = append(dst, p.payloadLine...)
	return dst, nil
}

// appendStringToSign appends
//
//	AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex of the canonical request's SHA-256>
func appendStringToSign(dst []byte, amzDate, scope string, crHash []byte) []byte {
	dst = append(dst, algorithm...)
	dst = append(dst, '\n')
	dst = append(dst, amzDate...)
	dst = append(dst, '\n')
	dst = append(dst, scope...)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, crHash)
}

// unreserved marks the RFC 3986 unreserved bytes: A-Z a-z 0-9 - _ . ~.
var unreserved = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

func appendEscaped(dst []byte, c byte) []byte {
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// appendCanonicalURI appends the canonical URI of a raw (still
// percent-encoded) path. For s3 it is the path as received. For every other
// service, AWS signers encode the already-encoded path once more (keeping
// '/'), so we do the same to the path as received: "%2F" becomes "%252F",
// "a b" sent as "a%20b" becomes "a%2520b". No normalisation either way: "."
// and ".." segments and repeated slashes are signed as they are.
func (v *Verifier) appendCanonicalURI(dst []byte, raw string) []byte {
	if raw == "" {
		return append(dst, '/')
	}
	if !v.doubleEnc {
		return append(dst, raw...)
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if unreserved[c] || c == '/' {
			dst = append(dst, c)
		} else {
			dst = appendEscaped(dst, c)
		}
	}
	return dst
}

// qpair locates one re-encoded query parameter in scratch.query: the name is
// [name:value), the value [value:end).
type qpair struct{ name, value, end int }

// appendCanonicalQuery appends the canonical query string. Each parameter is
// form-decoded ('+' is a space) and URI-encoded again (everything outside
// the unreserved set, '/' included, as %XX uppercase); a parameter without
// '=' (a bare keyword such as "search") has an empty value; empty segments
// ("a=1&&b=2") are skipped, as by Go's url.ParseQuery. For a presigned
// request X-Amz-Signature is left out.
//
// The pairs are sorted by encoded name, then by encoded value, as AWS
// specifies and as the AWS SDKs (Go, Rust, Python) sort them. This differs
// from sorting the joined "name=value" strings when a name is a prefix of
// another and the next byte sorts before '=' ("a" and "a-b", "a" and "a1").
func appendCanonicalQuery(dst []byte, raw string, presigned bool, s *scratch) ([]byte, error) {
	q, pairs := s.query[:0], s.pairs[:0]
	defer func() { s.query, s.pairs = q, pairs }()
	for rest := raw; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		if seg == "" {
			continue
		}
		rawName, rawValue, _ := strings.Cut(seg, "=")
		var err error
		start := len(q)
		if q, err = appendReencoded(q, rawName); err != nil {
			return dst, err
		}
		mid := len(q)
		if presigned && string(q[start:mid]) == qSignature {
			q = q[:start]
			continue
		}
		if q, err = appendReencoded(q, rawValue); err != nil {
			return dst, err
		}
		pairs = append(pairs, qpair{start, mid, len(q)})
	}
	slices.SortFunc(pairs, func(a, b qpair) int {
		if c := bytes.Compare(q[a.name:a.value], q[b.name:b.value]); c != 0 {
			return c
		}
		return bytes.Compare(q[a.value:a.end], q[b.value:b.end])
	})
	for i, pr := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, q[pr.name:pr.value]...)
		dst = append(dst, '=')
		dst = append(dst, q[pr.value:pr.end]...)
	}
	return dst, nil
}

// appendReencoded form-decodes one raw query component and appends it
// URI-encoded, in one pass.
func appendReencoded(dst []byte, raw string) ([]byte, error) {
	for i := 0; i < len(raw); {
		c, n := formByteAt(raw, i)
		i += n
		if unreserved[c] {
			dst = append(dst, c)
		} else {
			dst = appendEscaped(dst, c)
		}
	}
	return dst, nil
}

// formByteAt decodes the form-encoded byte at s[i] and says how many input
// bytes it took: '+' is a space, %XX an escape, and a '%' that starts no
// valid escape a literal '%' (as in the K2V router and the reference, and
// as clients that encode it as %25 sign it).
func formByteAt(s string, i int) (c byte, n int) {
	switch s[i] {
	case '+':
		return ' ', 1
	case '%':
		if d, ok := unescapeAt(s, i); ok {
			return d, 3
		}
	}
	return s[i], 1
}

// unescapeAt decodes the %XX escape at s[i].
func unescapeAt(s string, i int) (byte, bool) {
	if i+2 >= len(s) {
		return 0, false
	}
	hi, ok1 := unhex(s[i+1])
	lo, ok2 := unhex(s[i+2])
	return hi<<4 | lo, ok1 && ok2
}

// queryUnescape form-decodes a raw query component. It allocates only when
// there is something to decode.
func queryUnescape(s string) (string, error) {
	if strings.IndexAny(s, "%+") < 0 {
		return s, nil
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c, n := formByteAt(s, i)
		b = append(b, c)
		i += n
	}
	return string(b), nil
}

// queryNameIs reports whether the raw query component decodes to want,
// without allocating. An invalid escape never matches.
func queryNameIs(raw, want string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			d, ok := unescapeAt(raw, i)
			if !ok {
				return false
			}
			c = d
			i += 2
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// queryHasName reports whether a parameter of the raw query decodes to name.
func queryHasName(rawQuery, name string) bool {
	for rest := rawQuery; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "&")
		rawName, _, _ := strings.Cut(seg, "=")
		if queryNameIs(rawName, name) {
			return true
		}
	}
	return false
}

// appendCanonicalHeaders appends "name:value\n" for each name of the
// canonical signed-header list. The value is the header's value trimmed at
// both ends, inner whitespace kept as received; a header received several
// times gives its trimmed values joined with ',' in the order received.
//
// It also enforces the header-set rules: a signed header must be present,
// and every x-amz-* header present must be signed (otherwise a proxy could
// add one, e.g. x-amz-copy-source, without breaking the signature).
func appendCanonicalHeaders(dst []byte, hs []Header, signed string, collapse bool) ([]byte, error) {
	for i := range hs {
		if hasPrefixFoldASCII(hs[i].Name, "x-amz-") && !listHasFold(signed, hs[i].Name) {
			return dst, fmt.Errorf("header %s is not signed: %w", hs[i].Name, ErrMalformed)
		}
	}
	for rest := signed; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		n := 0
		for i := range hs {
			if !EqualFoldASCII(hs[i].Name, name) {
				continue
			}
			if n > 0 {
				dst = append(dst, ',')
			}
			if collapse {
				dst = appendCollapsed(dst, TrimOWS(hs[i].Value))
			} else {
				dst = append(dst, TrimOWS(hs[i].Value)...)
			}
			n++
		}
		if n == 0 {
			return dst, fmt.Errorf("signed header %s is absent: %w", name, ErrMalformed)
		}
		dst = append(dst, '\n')
	}
	return dst, nil
}

// listHasFold is listHas ignoring the ASCII case of name.
func listHasFold(list, name string) bool {
	for rest := list; rest != ""; {
		var n string
		n, rest, _ = strings.Cut(rest, ";")
		if EqualFoldASCII(n, name) {
			return true
		}
	}
	return false
}

// appendCollapsed appends v with each run of spaces and tabs as one space.
func appendCollapsed(dst []byte, v string) []byte {
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' || c == '\t' {
			if !space {
				dst = append(dst, ' ')
			}
			space = true
			continue
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

// hasInnerRuns reports whether a signed header value holds a run of two
// spaces or a tab, where collapsing would change the canonical request.
func hasInnerRuns(hs []Header, signed string) bool {
	for i := range hs {
		if listHasFold(signed, hs[i].Name) {
			v := TrimOWS(hs[i].Value)
			if strings.Contains(v, "  ") || strings.ContainsRune(v, '\t') {
				return true
			}
		}
	}
	return false
}
