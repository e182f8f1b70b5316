package k2v

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrBadToken is wrapped by every causality token decoding error.
var ErrBadToken = errors.New("k2v: invalid causality token")

// Clock is a vector clock: for each node (the first 8 bytes of its ID, see
// cluster.NodeID.Uint64), the highest timestamp seen from it. A causality
// token is the wire form of a Clock (k2v-api.md §4).
//
// The representation is a slice sorted by node with unique nodes, which
// keeps tokens canonical and comparisons cheap.
type Clock []ClockEntry

// ClockEntry is one node's component of a Clock.
type ClockEntry struct {
	Node uint64
	Time uint64
}

// Get returns the time of node, 0 when absent.
func (c Clock) Get(node uint64) uint64 {
	i, ok := slices.BinarySearchFunc(c, node, func(e ClockEntry, n uint64) int {
		switch {
		case e.Node < n:
			return -1
		case e.Node > n:
			return 1
		}
		return 0
	})
	if !ok {
		return 0
	}
	return c[i].Time
}

// NewerThan reports whether c has a component greater than other's
// (missing components count as 0): "c has something other has not seen".
// It is not a partial-order test; it is the wake condition of polls
// (k2v-api.md §4.5).
func (c Clock) NewerThan(other Clock) bool {
	for _, e := range c {
		if e.Time > other.Get(e.Node) {
			return true
		}
	}
	return false
}

// Max returns the component-wise maximum of c and other.
func (c Clock) Max(other Clock) Clock {
	out := make(Clock, 0, len(c)+len(other))
	i, j := 0, 0
	for i < len(c) || j < len(other) {
		switch {
		case j == len(other) || (i < len(c) && c[i].Node < other[j].Node):
			out = append(out, c[i])
			i++
		case i == len(c) || other[j].Node < c[i].Node:
			out = append(out, other[j])
			j++
		default:
			out = append(out, ClockEntry{c[i].Node, max(c[i].Time, other[j].Time)})
			i++
			j++
		}
	}
	return out
}

// Set returns c with node's time raised to at least t.
func (c Clock) Set(node, t uint64) Clock { return c.Max(Clock{{node, t}}) }

// AppendBinary appends the token's binary layout: a checksum (XOR of every
// node and time) then (node, time) pairs, all big-endian u64.
func (c Clock) AppendBinary(dst []byte) []byte {
	var sum uint64
	for _, e := range c {
		sum ^= e.Node ^ e.Time
	}
	dst = binary.BigEndian.AppendUint64(dst, sum)
	for _, e := range c {
		dst = binary.BigEndian.AppendUint64(dst, e.Node)
		dst = binary.BigEndian.AppendUint64(dst, e.Time)
	}
	return dst
}

// Token is the text form of the clock: URL-safe base64 without padding.
func (c Clock) Token() string {
	var buf [8 + 16*4]byte
	return base64.RawURLEncoding.EncodeToString(c.AppendBinary(buf[:0]))
}

// String returns the token.
func (c Clock) String() string { return c.Token() }

var tokenEncoding = base64.RawURLEncoding.Strict()

// maxTokenLen bounds accepted tokens (4096 nodes), far above any real
// cluster, so that a hostile header cannot make us allocate much.
const maxTokenLen = (8 + 16*4096) * 4 / 3

// ParseToken decodes a causality token. It rejects padding, characters
// outside the URL-safe alphabet, non-zero trailing bits, a length other than
// 8+16n bytes and a wrong checksum. A node given twice keeps its last time
// and the checksum is checked over the resulting map (the reference
// behaviour).
func ParseToken(s string) (Clock, error) {
	if len(s) > maxTokenLen {
		return nil, fmt.Errorf("%w: too long", ErrBadToken)
	}
	if strings.ContainsAny(s, "\r\n") {
		// encoding/base64 skips line breaks even in strict mode
		return nil, fmt.Errorf("%w: line break", ErrBadToken)
	}
	b, err := tokenEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if len(b) < 8 || (len(b)-8)%16 != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadToken, len(b))
	}
	want := binary.BigEndian.Uint64(b)
	n := (len(b) - 8) / 16
	c := make(Clock, 0, n)
	for i := range n {
		p := b[8+16*i:]
		c = append(c, ClockEntry{binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:])})
	}
	// stable sort then keep the last of each node: "a repeated node id keeps
	// its last time"
	slices.SortStableFunc(c, func(a, b ClockEntry) int {
		switch {
		case a.Node < b.Node:
			return -1
		case a.Node > b.Node:
			return 1
		}
		return 0
	})
	out := c[:0]
	for i, e := range c {
		if i+1 < len(c) && c[i+1].Node == e.Node {
			continue
		}
		out = append(out, e)
	}
	var sum uint64
	for _, e := range out {
		sum ^= e.Node ^ e.Time
	}
	if sum != want {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadToken)
	}
	return out, nil
}
