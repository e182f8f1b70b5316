package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The messages of the cluster endpoints. Each starts with a format byte;
// every length is checked against the bytes present and against a limit,
// since they come from the network.

const (
	wireV1 = 1
	// maxAddrBytes bounds a host:port string; maxHostnameBytes a hostname.
	maxAddrBytes     = 512
	maxHostnameBytes = 255
	// maxPeers bounds a peer list.
	maxPeers = 4096
)

var errWire = errors.New("cluster: malformed message")

// statusMsg is what a node says of itself in a ping and its answer.
type statusMsg struct {
	addr          string
	hostname      string
	layoutVersion uint64
	digest        [32]byte // of the encoded layout history
}

func (m *statusMsg) encode(dst []byte) []byte {
	dst = append(dst, wireV1)
	dst = appendString(dst, m.addr)
	dst = appendString(dst, m.hostname)
	dst = binary.AppendUvarint(dst, m.layoutVersion)
	return append(dst, m.digest[:]...)
}

func (m *statusMsg) decode(b []byte) error {
	r := wireReader{b: b}
	r.version()
	m.addr = r.string(maxAddrBytes)
	m.hostname = r.string(maxHostnameBytes)
	m.layoutVersion = r.uvarint()
	copy(m.digest[:], r.bytes(32))
	return r.done()
}

// peerAddr is a node and the address to dial it.
type peerAddr struct {
	id   NodeID
	addr string
}

func encodePeerList(dst []byte, list []peerAddr) []byte {
	dst = append(dst, wireV1)
	dst = binary.AppendUvarint(dst, uint64(len(list)))
	for _, p := range list {
		dst = append(dst, p.id[:]...)
		dst = appendString(dst, p.addr)
	}
	return dst
}

func decodePeerList(b []byte) ([]peerAddr, error) {
	r := wireReader{b: b}
	r.version()
	n := r.uvarint()
	if n > maxPeers {
		return nil, fmt.Errorf("%w: %d peers", errWire, n)
	}
	var out []peerAddr
	for range n {
		var p peerAddr
		copy(p.id[:], r.bytes(32))
		p.addr = r.string(maxAddrBytes)
		if r.err != nil {
			break
		}
		out = append(out, p)
	}
	return out, r.done()
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// wireReader reads a message; the first error sticks.
type wireReader struct {
	b   []byte
	err error
}

func (r *wireReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{errWire}, args...)...)
	}
}

func (r *wireReader) version() {
	if len(r.b) == 0 || r.b[0] != wireV1 {
		r.fail("unknown format")
		return
	}
	r.b = r.b[1:]
}

func (r *wireReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("truncated integer")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *wireReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *wireReader) string(limit uint64) string {
	n := r.uvarint()
	if n > limit {
		r.fail("string of %d bytes", n)
		return ""
	}
	return string(r.bytes(n))
}

func (r *wireReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	return r.err
}
