package k2v

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"unicode/utf8"
)

const upperHex = "0123456789ABCDEF"

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// appendEscape appends s with every byte outside the unreserved set written
// as %XX (uppercase hex). It serves both path segments and query values:
// in a partition key '/' becomes %2F, so a leading '/' survives the
// server's stripping of leading slashes (k2v-api.md §2.1); in a query value
// '+' becomes %2B and a space %20, so neither is mistaken for the other by
// the server's form decoding (§2.3).
func appendEscape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// escape is appendEscape returning a string.
func escape(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) {
			return string(appendEscape(make([]byte, 0, len(s)+16), s))
		}
	}
	return s
}

// query builds a query string of strictly escaped values.
type query []byte

// newQuery returns an empty query with room for the usual parameters.
func newQuery() query { return make(query, 0, 96) }

// add appends name=value (value escaped) unless value is empty: the server
// ignores empty parameters (k2v-api.md §2.3).
func (q query) add(name, value string) query {
	if value == "" {
		return q
	}
	if len(q) > 0 {
		q = append(q, '&')
	}
	q = append(q, name...)
	q = append(q, '=')
	return appendEscape(q, value)
}

// keyword appends a bare keyword parameter such as "search".
func (q query) keyword(name string) query {
	if len(q) > 0 {
		q = append(q, '&')
	}
	return append(q, name...)
}

// checkKey validates a partition or sort key: keys are UTF-8 strings, and
// a key in a path or a sort_key parameter cannot be empty (an empty
// partition key selects the bucket-level endpoints, an empty parameter is
// ignored).
func checkKey(what, key string, nonEmpty bool) error {
	if nonEmpty && key == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidArgument, what)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidArgument, what, key)
	}
	return nil
}

func checkLimit(limit int) error {
	if limit < 0 {
		return fmt.Errorf("%w: negative limit %d", ErrInvalidArgument, limit)
	}
	return nil
}

// JSON request bodies are written by hand: the wire format needs null for
// absent strings (and a sent Start with SingleItem), which struct tags
// cannot express, and this avoids reflection on the hot path.

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as with encoding/json; keys are checked before that can happen.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', upperHex[c>>4], upperHex[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// appendOptString appends s as a JSON string, or null when !set.
func appendOptString(dst []byte, s string, set bool) []byte {
	if !set {
		return append(dst, "null"...)
	}
	return appendJSONString(dst, s)
}

func appendBool(dst []byte, b bool) []byte { return strconv.AppendBool(dst, b) }

// appendValueJSON appends v as base64 (standard, padded) or null.
func appendValueJSON(dst []byte, v Value) []byte {
	if v.Tombstone {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, v.Data)
	return append(dst, '"')
}

// appendInsertOps appends the InsertBatch body (k2v-api.md §8.1):
// [{"pk":…,"sk":…,"ct":…|null,"v":…|null}, …].
func appendInsertOps(dst []byte, ops []InsertOp) []byte {
	if dst == nil {
		n := 2
		for i := range ops {
			op := &ops[i]
			n += 40 + len(op.PartitionKey) + len(op.SortKey) + len(op.CausalityToken) + base64.StdEncoding.EncodedLen(len(op.Value.Data))
		}
		dst = make([]byte, 0, n)
	}
	dst = append(dst, '[')
	for i := range ops {
		op := &ops[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"pk":`...)
		dst = appendJSONString(dst, op.PartitionKey)
		dst = append(dst, `,"sk":`...)
		dst = appendJSONString(dst, op.SortKey)
		dst = append(dst, `,"ct":`...)
		dst = appendOptString(dst, string(op.CausalityToken), !op.CausalityToken.IsZero())
		dst = append(dst, `,"v":`...)
		dst = appendValueJSON(dst, op.Value)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendSearch appends one ReadBatch search with all nine fields, in the
// order the server echoes them (k2v-api.md §8.2). startSet forces Start to
// be sent even when empty (pagination may continue at the empty key).
func appendSearch(dst []byte, s *Search, startSet bool) []byte {
	dst = append(dst, `{"partitionKey":`...)
	dst = appendJSONString(dst, s.PartitionKey)
	dst = append(dst, `,"prefix":`...)
	dst = appendOptString(dst, s.Prefix, s.Prefix != "")
	dst = append(dst, `,"start":`...)
	dst = appendOptString(dst, s.Start, s.Start != "" || s.SingleItem || startSet)
	dst = append(dst, `,"end":`...)
	dst = appendOptString(dst, s.End, s.End != "")
	dst = append(dst, `,"limit":`...)
	if s.Limit > 0 {
		dst = strconv.AppendInt(dst, int64(s.Limit), 10)
	} else {
		dst = append(dst, "null"...)
	}
	dst = append(dst, `,"reverse":`...)
	dst = appendBool(dst, s.Reverse)
	dst = append(dst, `,"singleItem":`...)
	dst = appendBool(dst, s.SingleItem)
	dst = append(dst, `,"conflictsOnly":`...)
	dst = appendBool(dst, s.ConflictsOnly)
	dst = append(dst, `,"tombstones":`...)
	dst = appendBool(dst, s.Tombstones)
	return append(dst, '}')
}

// appendDeleteSearch appends one DeleteBatch search (k2v-api.md §8.3).
func appendDeleteSearch(dst []byte, s *DeleteSearch) []byte {
	dst = append(dst, `{"partitionKey":`...)
	dst = appendJSONString(dst, s.PartitionKey)
	dst = append(dst, `,"prefix":`...)
	dst = appendOptString(dst, s.Prefix, s.Prefix != "")
	dst = append(dst, `,"start":`...)
	dst = appendOptString(dst, s.Start, s.Start != "" || s.SingleItem)
	dst = append(dst, `,"end":`...)
	dst = appendOptString(dst, s.End, s.End != "")
	dst = append(dst, `,"singleItem":`...)
	dst = appendBool(dst, s.SingleItem)
	return append(dst, '}')
}

// appendPollRange appends the PollRange body (k2v-api.md §9). timeout is
// in seconds, 0 to leave the server default. start is sent as given: the
// caller substitutes the prefix for a missing start.
func appendPollRange(dst []byte, prefix, start, end string, timeout int, marker string) []byte {
	dst = append(dst, `{"prefix":`...)
	dst = appendOptString(dst, prefix, prefix != "")
	dst = append(dst, `,"start":`...)
	dst = appendOptString(dst, start, start != "")
	dst = append(dst, `,"end":`...)
	dst = appendOptString(dst, end, end != "")
	if timeout > 0 {
		dst = append(dst, `,"timeout":`...)
		dst = strconv.AppendInt(dst, int64(timeout), 10)
	}
	dst = append(dst, `,"seenMarker":`...)
	dst = appendOptString(dst, marker, marker != "")
	return append(dst, '}')
}
