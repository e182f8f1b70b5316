package sigv4

import (
	"bytes"
	"strings"
)

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is an RFC 3986 unreserved character, the
// only bytes SigV4 leaves unencoded (besides '/' in paths).
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// appendURIEncode appends s with every byte outside the unreserved set
// (and outside '/' when keepSlash) written as %XX, uppercase hex.
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || keepSlash && c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// appendURIEncodeBytes is appendURIEncode for a []byte, keeping nothing
// but the unreserved set.
func appendURIEncodeBytes(dst, s []byte) []byte {
	for _, c := range s {
		if unreserved(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
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

// appendFormDecode appends s decoded as application/x-www-form-urlencoded:
// '+' becomes a space and %XX a byte. A '%' not followed by two hex digits
// is kept literally, as the server's form decoder does.
func appendFormDecode(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 < len(s) {
				hi, ok1 := unhex(s[i+1])
				lo, ok2 := unhex(s[i+2])
				if ok1 && ok2 {
					c = hi<<4 | lo
					i += 2
				}
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// queryScratch holds the buffers of one canonical query computation.
type queryScratch struct {
	dec   []byte // one decoded name or value
	pairs []byte // encoded "name=value" strings, back to back
	spans []span // where each pair sits in pairs
}

type span struct{ start, end int }

// appendCanonicalQuery appends the SigV4 canonical query of rawQuery:
// each parameter form-decoded, name and value URI-encoded (everything but
// the unreserved set), joined as "name=value" (bare names become "name="),
// sorted by encoded name then encoded value (the AWS rule, which the
// server follows too: k2v-api.md §3.1) and joined with '&'.
func (q *queryScratch) appendCanonicalQuery(dst []byte, rawQuery string) []byte {
	q.pairs = q.pairs[:0]
	q.spans = q.spans[:0]
	for rawQuery != "" {
		var param string
		if i := strings.IndexByte(rawQuery, '&'); i >= 0 {
			param, rawQuery = rawQuery[:i], rawQuery[i+1:]
		} else {
			param, rawQuery = rawQuery, ""
		}
		if param == "" {
			continue
		}
		name, value := param, ""
		if i := strings.IndexByte(param, '='); i >= 0 {
			name, value = param[:i], param[i+1:]
		}
		start := len(q.pairs)
		q.dec = appendFormDecode(q.dec[:0], name)
		q.pairs = appendURIEncodeBytes(q.pairs, q.dec)
		q.pairs = append(q.pairs, '=')
		q.dec = appendFormDecode(q.dec[:0], value)
		q.pairs = appendURIEncodeBytes(q.pairs, q.dec)
		q.spans = append(q.spans, span{start, len(q.pairs)})
	}
	// Insertion sort: K2V requests carry at most four parameters.
	sp := q.spans
	for i := 1; i < len(sp); i++ {
		for j := i; j > 0 && comparePairs(q.pairs[sp[j].start:sp[j].end], q.pairs[sp[j-1].start:sp[j-1].end]) < 0; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	for i, s := range sp {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, q.pairs[s.start:s.end]...)
	}
	return dst
}

// comparePairs orders two encoded "name=value" pairs by name, then value.
// An encoded name holds no '=' (it would be %3D), so the first '=' splits.
func comparePairs(a, b []byte) int {
	an, av, _ := bytes.Cut(a, []byte{'='})
	bn, bv, _ := bytes.Cut(b, []byte{'='})
	if c := bytes.Compare(an, bn); c != 0 {
		return c
	}
	return bytes.Compare(av, bv)
}
