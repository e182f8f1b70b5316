package k2v

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Value is one value of a K2V item: opaque bytes, or a tombstone left by a
// delete. An empty value and a tombstone are different things.
type Value struct {
	Data      []byte
	Tombstone bool
}

func (v Value) equal(o Value) bool {
	return v.Tombstone == o.Tombstone && bytes.Equal(v.Data, o.Data)
}

// Version is a value stamped with the time the node that wrote it gave it.
type Version struct {
	Time  uint64
	Value Value
}

// NodeEntry is the part of an item written by one node: the dotted version
// vector of k2v-api.md §5. Versions are in increasing time order and all
// newer than Discard.
type NodeEntry struct {
	Node     uint64
	Discard  uint64
	Versions []Version
}

func (e *NodeEntry) maxTime() uint64 {
	t := e.Discard
	if n := len(e.Versions); n > 0 {
		t = max(t, e.Versions[n-1].Time)
	}
	return t
}

// discard raises Discard to t and drops the versions it covers.
func (e *NodeEntry) discard(t uint64) {
	e.Discard = max(e.Discard, t)
	i := 0
	for i < len(e.Versions) && e.Versions[i].Time <= e.Discard {
		i++
	}
	e.Versions = e.Versions[i:]
}

// Item is a K2V item: the DVVS of one (bucket, partition key, sort key).
type Item struct {
	Bucket    BucketID
	Partition string
	Sort      string
	// Entries is sorted by Node, one per node that wrote the item or whose
	// writes a token-carrying write covered.
	Entries []NodeEntry
}

// NewItem returns an item with no values.
func NewItem(bucket BucketID, partition, sort string) *Item {
	return &Item{Bucket: bucket, Partition: partition, Sort: sort}
}

func (it *Item) entry(node uint64) *NodeEntry {
	i, ok := slices.BinarySearchFunc(it.Entries, node, func(e NodeEntry, n uint64) int {
		switch {
		case e.Node < n:
			return -1
		case e.Node > n:
			return 1
		}
		return 0
	})
	if !ok {
		it.Entries = slices.Insert(it.Entries, i, NodeEntry{Node: node})
	}
	return &it.Entries[i]
}

// Context is the item's causality context: each node's highest time.
func (it *Item) Context() Clock {
	c := make(Clock, len(it.Entries))
	for i := range it.Entries {
		c[i] = ClockEntry{it.Entries[i].Node, it.Entries[i].maxTime()}
	}
	return c
}

// Values returns the item's values in node order then time order, without
// duplicates (equal bytes, or two tombstones, count once). The slices alias
// the item.
func (it *Item) Values() []Value {
	var out []Value
	for i := range it.Entries {
	next:
		for _, v := range it.Entries[i].Versions {
			for _, seen := range out {
				if seen.equal(v.Value) {
					continue next
				}
			}
			out = append(out, v.Value)
		}
	}
	return out
}

// IsTombstone reports whether every value of the item is a tombstone (an
// item without values counts as one).
func (it *Item) IsTombstone() bool {
	for i := range it.Entries {
		for _, v := range it.Entries[i].Versions {
			if !v.Value.Tombstone {
				return false
			}
		}
	}
	return true
}

// HasValues reports whether the item holds at least one value or tombstone.
func (it *Item) HasValues() bool {
	for i := range it.Entries {
		if len(it.Entries[i].Versions) > 0 {
			return true
		}
	}
	return false
}

// Write applies a write executed by node (k2v-api.md §5.2): the versions
// covered by ctx (nil: none) are discarded, then v is appended to node's
// entry with a time greater than both the entry's and nodeTime. It returns
// the time given to v.
func (it *Item) Write(node uint64, ctx Clock, v Value, nodeTime uint64) uint64 {
	for _, c := range ctx {
		e := it.entry(c.Node)
		e.discard(c.Time)
	}
	e := it.entry(node)
	t := max(e.maxTime(), nodeTime) + 1
	e.Versions = append(e.Versions, Version{Time: t, Value: v})
	return t
}

// Merge joins other into it (k2v-api.md §5.3). Both must be states of the
// same item.
func (it *Item) Merge(other *Item) {
	for i := range other.Entries {
		src := &other.Entries[i]
		dst := it.entry(src.Node)
		dst.discard(src.Discard)
		t := dst.maxTime()
		for _, v := range src.Versions {
			if v.Time > t {
				dst.Versions = append(dst.Versions, v)
			}
		}
	}
}

// Counts are the index counters of one item, or their sum over a partition
// (k2v-api.md §11).
type Counts struct {
	Entries, Conflicts, Values, Bytes int64
}

func (c Counts) add(o Counts, sign int64) Counts {
	return Counts{c.Entries + sign*o.Entries, c.Conflicts + sign*o.Conflicts, c.Values + sign*o.Values, c.Bytes + sign*o.Bytes}
}

// Counts returns the item's index counters.
func (it *Item) Counts() Counts {
	var c Counts
	vals := it.Values()
	if len(vals) >= 2 {
		c.Conflicts = 1
	}
	for _, v := range vals {
		if !v.Tombstone {
			c.Values++
			c.Bytes += int64(len(v.Data))
		}
	}
	if c.Values > 0 {
		c.Entries = 1
	}
	return c
}

// itemFormat is the first byte of a stored item. Frozen: bucket (32 bytes),
// partition key, sort key, entries (node u64 big-endian, discard, versions
// (time, tombstone flag, data)).
const itemFormat = 1

// AppendBinary appends the stored form of the item.
func (it *Item) AppendBinary(dst []byte) []byte {
	dst = append(dst, itemFormat)
	dst = append(dst, it.Bucket[:]...)
	dst = appendString(dst, it.Partition)
	dst = appendString(dst, it.Sort)
	dst = binary.AppendUvarint(dst, uint64(len(it.Entries)))
	for i := range it.Entries {
		e := &it.Entries[i]
		dst = binary.BigEndian.AppendUint64(dst, e.Node)
		dst = binary.AppendUvarint(dst, e.Discard)
		dst = binary.AppendUvarint(dst, uint64(len(e.Versions)))
		for _, v := range e.Versions {
			dst = binary.AppendUvarint(dst, v.Time)
			dst = appendBool(dst, v.Value.Tombstone)
			dst = appendBytes(dst, v.Value.Data)
		}
	}
	return dst
}

// DecodeItem parses the stored form of an item.
func DecodeItem(b []byte) (*Item, error) {
	r := &reader{b: b}
	r.version(itemFormat, "item")
	it := &Item{}
	copy(it.Bucket[:], r.fixed(32))
	it.Partition = r.string()
	it.Sort = r.string()
	n := r.count(10)
	if n > 0 {
		it.Entries = make([]NodeEntry, n)
	}
	for i := range n {
		e := &it.Entries[i]
		e.Node = r.uint64()
		e.Discard = r.uvarint()
		nv := r.count(3)
		for range nv {
			v := Version{Time: r.uvarint()}
			v.Value.Tombstone = r.bool()
			v.Value.Data = r.bytes()
			e.Versions = append(e.Versions, v)
		}
		if i > 0 && r.err == nil && it.Entries[i-1].Node >= e.Node {
			r.fail("item entries out of order")
		}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return it, nil
}

func sortItems(items []*Item) {
	slices.SortFunc(items, func(a, b *Item) int {
		switch {
		case a.Sort < b.Sort:
			return -1
		case a.Sort > b.Sort:
			return 1
		}
		return 0
	})
}
