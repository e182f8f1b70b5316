package cluster

import (
	"encoding/binary"
	"errors"

	"github.com/grangeio/grange/cluster/internal/wire"
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
	dst = wire.AppendString(dst, m.addr)
	dst = wire.AppendString(dst, m.hostname)
	dst = binary.AppendUvarint(dst, m.layoutVersion)
	return append(dst, m.digest[:]...)
}

func (m *statusMsg) decode(b []byte) error {
	r := newReader(b)
	m.addr = r.LimitedString(maxAddrBytes)
	m.hostname = r.LimitedString(maxHostnameBytes)
	m.layoutVersion = r.Uvarint()
	copy(m.digest[:], r.Bytes(32))
	r.End()
	return r.Err
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
		dst = wire.AppendString(dst, p.addr)
	}
	return dst
}

func decodePeerList(b []byte) ([]peerAddr, error) {
	r := newReader(b)
	n := r.Small("peer count", maxPeers)
	var out []peerAddr
	for range n {
		var p peerAddr
		copy(p.id[:], r.Bytes(32))
		p.addr = r.LimitedString(maxAddrBytes)
		if r.Err != nil {
			return nil, r.Err
		}
		out = append(out, p)
	}
	r.End()
	return out, r.Err
}

// newReader reads a message after checking its format byte.
func newReader(b []byte) *wire.Reader {
	r := &wire.Reader{B: b, Invalid: errWire}
	if r.Byte() != wireV1 {
		r.Fail("unknown format")
	}
	return r
}
