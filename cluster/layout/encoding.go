package layout

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// formatV1 is the first byte of an encoded layout. Frozen: version,
// replication factor, the roles sorted by node ID, then for each partition
// its replica count and the indexes of its nodes in the role list.
const formatV1 = 1

// Encode appends the binary form of l to dst.
func (l *Layout) Encode(dst []byte) []byte {
	ids := make([]NodeID, 0, len(l.Roles))
	for id := range l.Roles {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b NodeID) int { return strings.Compare(string(a[:]), string(b[:])) })
	index := make(map[NodeID]int, len(ids))
	dst = append(dst, formatV1)
	dst = binary.AppendUvarint(dst, l.Version)
	dst = binary.AppendUvarint(dst, uint64(l.ReplicationFactor))
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for i, id := range ids {
		index[id] = i
		r := l.Roles[id]
		dst = append(dst, id[:]...)
		dst = appendString(dst, r.Zone)
		dst = binary.AppendUvarint(dst, r.CapacityBytes)
		dst = binary.AppendUvarint(dst, uint64(len(r.Tags)))
		for _, t := range r.Tags {
			dst = appendString(dst, t)
		}
	}
	for p := range l.replicas {
		dst = binary.AppendUvarint(dst, uint64(len(l.replicas[p])))
		for _, id := range l.replicas[p] {
			dst = binary.AppendUvarint(dst, uint64(index[id]))
		}
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: truncated integer", ErrInvalid)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: truncated", ErrInvalid)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }

// Decode parses the output of Encode.
func Decode(b []byte) (*Layout, error) {
	if len(b) == 0 || b[0] != formatV1 {
		return nil, fmt.Errorf("%w: unknown format", ErrInvalid)
	}
	d := &decoder{b: b[1:]}
	l := &Layout{Version: d.uvarint(), ReplicationFactor: int(d.uvarint())}
	n := d.uvarint()
	if n > uint64(len(d.b))/32 {
		return nil, fmt.Errorf("%w: %d roles", ErrInvalid, n)
	}
	ids := make([]NodeID, n)
	l.Roles = make(map[NodeID]Role, n)
	for i := range ids {
		copy(ids[i][:], d.bytes(32))
		r := Role{Zone: d.string(), CapacityBytes: d.uvarint()}
		nt := d.uvarint()
		if nt > uint64(len(d.b)) {
			return nil, fmt.Errorf("%w: %d tags", ErrInvalid, nt)
		}
		for range nt {
			r.Tags = append(r.Tags, d.string())
		}
		l.Roles[ids[i]] = r
	}
	for p := range l.replicas {
		nr := d.uvarint()
		if nr > n {
			return nil, fmt.Errorf("%w: partition %d has %d replicas", ErrInvalid, p, nr)
		}
		for range nr {
			j := d.uvarint()
			if j >= n {
				return nil, fmt.Errorf("%w: partition %d: node index %d", ErrInvalid, p, j)
			}
			l.replicas[p] = append(l.replicas[p], ids[j])
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalid, len(d.b))
	}
	return l, nil
}
