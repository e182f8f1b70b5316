// Package wire holds the pieces shared by the binary encodings of the
// cluster layer (the layout history, the peering messages): uvarint
// length-prefixed strings, and a reader of untrusted bytes whose first
// error sticks, that checks every length against the bytes left before
// anything is allocated, and never panics.
package wire

import (
	"encoding/binary"
	"fmt"
)

// AppendString appends s with its uvarint length.
func AppendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// Reader reads an encoding. Errors wrap Invalid; after the first one every
// read returns a zero value.
type Reader struct {
	B       []byte
	Err     error
	Invalid error
}

// Fail records an error unless one is already recorded.
func (r *Reader) Fail(format string, args ...any) {
	if r.Err == nil {
		r.Err = fmt.Errorf("%w: "+format, append([]any{r.Invalid}, args...)...)
	}
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.Fail("truncated integer")
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Small reads an integer that must not exceed limit.
func (r *Reader) Small(what string, limit int) int {
	v := r.Uvarint()
	if v > uint64(limit) {
		r.Fail("%s %d exceeds %d", what, v, limit)
		return 0
	}
	return int(v)
}

// Count reads a number of items of at least minSize bytes each, which
// must fit in the bytes left.
func (r *Reader) Count(what string, minSize int) int {
	v := r.Uvarint()
	if v > uint64(len(r.B)/minSize) {
		r.Fail("%d %s in %d bytes", v, what, len(r.B))
		return 0
	}
	return int(v)
}

// Bytes reads n bytes; the result aliases the input.
func (r *Reader) Bytes(n uint64) []byte {
	if r.Err != nil {
		return nil
	}
	if n > uint64(len(r.B)) {
		r.Fail("truncated")
		return nil
	}
	v := r.B[:n]
	r.B = r.B[n:]
	return v
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if b := r.Bytes(1); b != nil {
		return b[0]
	}
	return 0
}

// String reads a length-prefixed string of any length that fits.
func (r *Reader) String() string { return string(r.Bytes(r.Uvarint())) }

// LimitedString reads a length-prefixed string of at most limit bytes.
func (r *Reader) LimitedString(limit int) string {
	return string(r.Bytes(uint64(r.Small("string length", limit))))
}

// End records an error if bytes are left.
func (r *Reader) End() {
	if r.Err == nil && len(r.B) != 0 {
		r.Fail("%d trailing bytes", len(r.B))
	}
}
