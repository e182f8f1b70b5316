package k2v

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/grangeio/grange/cluster"
)

// The RPC endpoints of a replicated table, under "table/<name>/":
//
//	merge            values            → ()         merge entries
//	get              store key         → optional   one entry
//	repair           values            → optionals  merge, return what is held
//	scan             scan request      → scan page  entries of a range
//	merkle/roots     ()                 → 256 nodes  every partition's root
//	merkle/node      partition ‖ prefix → node      a Merkle tree node
//	merkle/children  partition ‖ prefix → children  its non-empty children
//	merkle/leaves    partition ‖ prefix → leaves    a level-2 bucket
//	gc/merge         values            → hashes     merge, hash what is stored
//	gc/delete        (key, vhash)*      → ()         drop collected tombstones
//
// Bodies are versionless: nodes of one cluster run the same version of
// the protocol (the RPC handshake carries the protocol version).
func (rt *Replicated[E]) registerHandlers() {
	h := func(name string, fn func(ctx context.Context, from cluster.NodeID, body []byte) ([]byte, error)) {
		rt.r.c.Handle(rt.ep+name, cluster.HandlerFunc(func(ctx context.Context, from cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
			out, err := fn(ctx, from, req.Body)
			if err != nil {
				return nil, err
			}
			return &cluster.Response{Body: out}, nil
		}))
	}
	h("merge", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		values, err := decodeValues(body)
		if err != nil {
			return nil, err
		}
		return nil, rt.t.MergeRaw(values)
	})
	h("get", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		if len(body) < 32 {
			return nil, fmt.Errorf("%w: store key of %d bytes", ErrCorrupt, len(body))
		}
		v, err := rt.t.GetRaw([][]byte{body})
		if err != nil {
			return nil, err
		}
		return encodeOptional(v[0]), nil
	})
	h("scan", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		partition, o, max, err := decodeScanRequest(body)
		if err != nil {
			return nil, err
		}
		page, err := rt.localScan(partition, o, max)
		if err != nil {
			return nil, err
		}
		return page.appendBinary(nil), nil
	})
	h("merkle/roots", func(_ context.Context, _ cluster.NodeID, _ []byte) ([]byte, error) {
		out := make([]byte, 0, 256*34)
		for p := range 256 {
			n, err := rt.t.MerkleNode(cluster.Partition(p), nil)
			if err != nil {
				return nil, err
			}
			out = appendMerkleNode(out, n)
		}
		return out, nil
	})
	h("merkle/node", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		p, prefix, err := decodeMerkleRequest(body)
		if err != nil {
			return nil, err
		}
		n, err := rt.t.MerkleNode(p, prefix)
		if err != nil {
			return nil, err
		}
		return appendMerkleNode(nil, n), nil
	})
	h("merkle/children", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		p, prefix, err := decodeMerkleRequest(body)
		if err != nil {
			return nil, err
		}
		children, err := rt.t.MerkleChildren(p, prefix)
		if err != nil {
			return nil, err
		}
		out := binary.AppendUvarint(nil, uint64(len(children)))
		for _, c := range children {
			out = append(out, c.Byte)
			out = appendMerkleNode(out, c.Node)
		}
		return out, nil
	})
	h("merkle/leaves", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		p, prefix, err := decodeMerkleRequest(body)
		if err != nil {
			return nil, err
		}
		leaves, err := rt.t.MerkleLeaves(p, prefix)
		if err != nil {
			return nil, err
		}
		out := binary.AppendUvarint(nil, uint64(len(leaves)))
		for _, l := range leaves {
			out = append(out, l.KHash[:]...)
			out = append(out, l.VHash[:]...)
			out = appendBytes(out, l.Key)
		}
		return out, nil
	})
	h("gc/merge", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		values, err := decodeValues(body)
		if err != nil {
			return nil, err
		}
		return rt.mergeAndHash(values, nil)
	})
	h("repair", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		values, err := decodeValues(body)
		if err != nil {
			return nil, err
		}
		held, err := rt.mergeAndGet(values, nil)
		if err != nil {
			return nil, err
		}
		return encodeOptionals(held), nil
	})
	h("gc/delete", func(_ context.Context, _ cluster.NodeID, body []byte) ([]byte, error) {
		r := &reader{b: body}
		n := r.count(65)
		type kv struct {
			key   []byte
			vhash [32]byte
		}
		items := make([]kv, n)
		for i := range items {
			items[i].key = r.bytes()
			copy(items[i].vhash[:], r.fixed(32))
		}
		if err := r.done(); err != nil {
			return nil, err
		}
		keys := make([][]byte, len(items))
		for i, it := range items {
			keys[i] = it.key
		}
		if err := rt.purgeRetries(keys); err != nil {
			return nil, err
		}
		for _, it := range items {
			if _, err := rt.t.DeleteIfHash(it.key, it.vhash); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
}

func encodeValues(values [][]byte) []byte {
	n := 8
	for _, v := range values {
		n += len(v) + 5
	}
	out := binary.AppendUvarint(make([]byte, 0, n), uint64(len(values)))
	for _, v := range values {
		out = appendBytes(out, v)
	}
	return out
}

func decodeValues(b []byte) ([][]byte, error) {
	r := &reader{b: b}
	n := r.count(1)
	out := make([][]byte, n)
	for i := range out {
		out[i] = r.bytes()
	}
	return out, r.done()
}

func encodeOptional(v []byte) []byte {
	if v == nil {
		return []byte{0}
	}
	return appendBytes([]byte{1}, v)
}

func encodeOptionals(values [][]byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(values)))
	for _, v := range values {
		out = appendBool(out, v != nil)
		if v != nil {
			out = appendBytes(out, v)
		}
	}
	return out
}

func decodeOptionals(b []byte) ([][]byte, error) {
	r := &reader{b: b}
	out := make([][]byte, r.count(1))
	for i := range out {
		if r.bool() {
			out[i] = r.bytes()
		}
	}
	return out, r.done()
}

func decodeOptional(b []byte) ([]byte, error) {
	r := &reader{b: b}
	var v []byte
	if r.bool() {
		v = r.bytes()
	}
	return v, r.done()
}

func appendScanRequest(dst, partition []byte, o ScanOptions, max int) []byte {
	dst = appendBytes(dst, partition)
	dst = appendBytes(dst, o.Lower)
	dst = appendBool(dst, o.Upper != nil)
	dst = appendBytes(dst, o.Upper)
	dst = appendBool(dst, o.Reverse)
	return binary.AppendUvarint(dst, uint64(max))
}

func decodeScanRequest(b []byte) (partition []byte, o ScanOptions, max int, err error) {
	r := &reader{b: b}
	partition = r.bytes()
	o.Lower = r.bytes()
	hasUpper := r.bool()
	upper := r.bytes()
	if hasUpper {
		o.Upper = upper
	}
	o.Reverse = r.bool()
	m := r.uvarint()
	if err := r.done(); err != nil {
		return nil, o, 0, err
	}
	if m == 0 || m > scanPageMax {
		return nil, o, 0, fmt.Errorf("%w: scan page of %d entries", ErrCorrupt, m)
	}
	return partition, o, int(m), nil
}

func (p *scanPage) appendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(p.sorts)))
	for i := range p.sorts {
		dst = appendBytes(dst, p.sorts[i])
		dst = appendBytes(dst, p.values[i])
	}
	return appendBool(dst, p.more)
}

func decodeScanPage(b []byte) (*scanPage, error) {
	r := &reader{b: b}
	n := r.count(2)
	p := &scanPage{sorts: make([][]byte, n), values: make([][]byte, n)}
	for i := range n {
		p.sorts[i] = r.bytes()
		p.values[i] = r.bytes()
	}
	p.more = r.bool()
	return p, r.done()
}

func appendMerkleRequest(dst []byte, p cluster.Partition, prefix []byte) []byte {
	return append(append(dst, byte(p)), prefix...)
}

func decodeMerkleRequest(b []byte) (cluster.Partition, []byte, error) {
	if len(b) < 1 || len(b) > 3 {
		return 0, nil, fmt.Errorf("%w: merkle request of %d bytes", ErrCorrupt, len(b))
	}
	return cluster.Partition(b[0]), b[1:], nil
}

func (r *reader) merkleNode() MerkleNode {
	var n MerkleNode
	copy(n.Sum[:], r.fixed(32))
	n.Count = r.uvarint()
	return n
}

// remoteMerkle reads the Merkle tree of a table on another node.
type remoteMerkle[E any] struct {
	rt *Replicated[E]
	to cluster.NodeID
}

func (m remoteMerkle[E]) call(ctx context.Context, op string, p cluster.Partition, prefix []byte) (*reader, error) {
	resp, err := m.rt.r.c.Call(ctx, m.to, &cluster.Request{Endpoint: m.rt.ep + op, Priority: cluster.PrioBackground, Body: appendMerkleRequest(nil, p, prefix)})
	if err != nil {
		return nil, err
	}
	return &reader{b: resp.Body}, nil
}

func (m remoteMerkle[E]) Node(ctx context.Context, p cluster.Partition, prefix []byte) (MerkleNode, error) {
	r, err := m.call(ctx, "merkle/node", p, prefix)
	if err != nil {
		return MerkleNode{}, err
	}
	n := r.merkleNode()
	return n, r.done()
}

func (m remoteMerkle[E]) Children(ctx context.Context, p cluster.Partition, prefix []byte) ([]MerkleChild, error) {
	r, err := m.call(ctx, "merkle/children", p, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]MerkleChild, r.count(34))
	for i := range out {
		out[i].Byte = r.byte()
		out[i].Node = r.merkleNode()
	}
	return out, r.done()
}

func (m remoteMerkle[E]) Leaves(ctx context.Context, p cluster.Partition, prefix []byte) ([]MerkleLeaf, error) {
	r, err := m.call(ctx, "merkle/leaves", p, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]MerkleLeaf, r.count(65))
	for i := range out {
		copy(out[i].KHash[:], r.fixed(32))
		copy(out[i].VHash[:], r.fixed(32))
		out[i].Key = r.bytes()
	}
	return out, r.done()
}
