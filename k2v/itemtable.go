package k2v

import (
	"encoding/binary"
	"time"

	"github.com/grangeio/grange/cluster"
)

// itemSchema is the schema of the K2V item table. Its Updated hook keeps
// this node's partition index counters (k2v-api.md §11) in the same batch
// as the item, and marks them for publication to the counter table.
type itemSchema struct {
	pub  *counterPublisher
	node cluster.NodeID
	now  func() time.Time
}

func (itemSchema) Name() string { return "k2v_item" }

// itemPartitionKey is the table partition key of an item: bucket id ‖
// partition key, whose Hash is the placement hash of k2v-api.md §13.
func itemPartitionKey(bucket BucketID, pk string) []byte {
	k := make([]byte, 0, 32+len(pk))
	k = append(k, bucket[:]...)
	return append(k, pk...)
}

// ItemPlacementKeyForTest is the table partition key of the items of
// partition key pk of bucket, for tests that read a node's local table.
func ItemPlacementKeyForTest(bucket BucketID, pk string) []byte { return itemPartitionKey(bucket, pk) }

// ItemPartition returns the partition of the ring that holds the items of
// partition key pk in bucket.
func ItemPartition(bucket BucketID, pk string) cluster.Partition {
	return cluster.PartitionOf(Hash(itemPartitionKey(bucket, pk)))
}

func (itemSchema) Keys(it *Item) (partition, sort []byte) {
	return itemPartitionKey(it.Bucket, it.Partition), []byte(it.Sort)
}

func (itemSchema) Encode(dst []byte, it *Item) []byte { return it.AppendBinary(dst) }
func (itemSchema) Decode(b []byte) (*Item, error)     { return DecodeItem(b) }
func (itemSchema) Merge(dst, src *Item)               { dst.Merge(src) }
func (itemSchema) IsTombstone(it *Item) bool          { return it.IsTombstone() }

func (s itemSchema) Updated(b *Batch, prev, next *Item) error {
	var before, after Counts
	if prev != nil {
		before = prev.Counts()
	}
	it := prev
	if next != nil {
		// next is nil when GC or a partition drop removes the item:
		// then only its old counts are subtracted
		after, it = next.Counts(), next
	}
	delta := after.add(before, -1)
	if delta == (Counts{}) {
		return nil
	}
	return s.addLocalCounts(b, it.Bucket, it.Partition, delta)
}

// Local counters: spaceLocal ‖ "cnt" ‖ bucket ‖ partition key → (time,
// counts). They are this node's view of the items it stores; publishing
// them into the counter table lets any node answer ReadIndex.
func localCounterKey(bucket BucketID, pk string) []byte {
	k := make([]byte, 0, 3+32+len(pk))
	k = append(k, "cnt"...)
	k = append(k, bucket[:]...)
	return append(k, pk...)
}

func (s itemSchema) addLocalCounts(b *Batch, bucket BucketID, pk string, delta Counts) error {
	key := localCounterKey(bucket, pk)
	slot, cached := s.pub.cached(string(key))
	if !cached {
		old, err := b.GetLocal(key)
		if err != nil {
			return err
		}
		if old != nil {
			if slot, err = decodeCounterSlot(old); err != nil {
				return err
			}
		}
	}
	prevSlot := slot
	slot.Node = s.node
	slot.Counts = slot.Counts.add(delta, 1)
	// Slots are last-writer-wins by time: never reuse or go below the
	// previous time, whatever the clock says.
	slot.Time = max(uint64(s.now().UnixMilli()), slot.Time+1)
	if err := b.SetLocal(key, slot.appendBinary(nil)); err != nil {
		return err
	}
	s.pub.cache(string(key), slot)
	b.onAbort(func() {
		if cached {
			s.pub.cache(string(key), prevSlot)
		} else {
			s.pub.uncache(string(key))
		}
	})
	// Publishing the slot into the counter table is asynchronous and
	// coalesced (see counterPublisher): the local counter above is the
	// durable truth it is derived from.
	s.pub.markDirty(bucket, pk)
	return nil
}

// CounterEntry is the counter table's entry for one (bucket, partition key):
// one slot per node that stores items of it, each last-writer-wins.
type CounterEntry struct {
	Bucket    BucketID
	Partition string
	Slots     []CounterSlot // sorted by node
}

// CounterSlot is one node's published counts.
type CounterSlot struct {
	Node   cluster.NodeID
	Time   uint64
	Counts Counts
}

func (s CounterSlot) appendBinary(dst []byte) []byte {
	dst = append(dst, s.Node[:]...)
	dst = binary.AppendUvarint(dst, s.Time)
	for _, v := range []int64{s.Counts.Entries, s.Counts.Conflicts, s.Counts.Values, s.Counts.Bytes} {
		dst = binary.AppendVarint(dst, v)
	}
	return dst
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad integer")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) counterSlot() CounterSlot {
	var s CounterSlot
	copy(s.Node[:], r.fixed(32))
	s.Time = r.uvarint()
	s.Counts = Counts{r.varint(), r.varint(), r.varint(), r.varint()}
	return s
}

func decodeCounterSlot(b []byte) (CounterSlot, error) {
	r := &reader{b: b}
	s := r.counterSlot()
	return s, r.done()
}

type counterSchema struct{}

func (counterSchema) Name() string { return "k2v_index_counter" }

func (counterSchema) Keys(e *CounterEntry) (partition, sort []byte) {
	return e.Bucket[:], []byte(e.Partition)
}

// counterFormat is the first byte of a stored counter entry. Frozen:
// bucket, partition key, slots (node, time, four signed counters).
const counterFormat = 1

func (counterSchema) Encode(dst []byte, e *CounterEntry) []byte {
	dst = append(dst, counterFormat)
	dst = append(dst, e.Bucket[:]...)
	dst = appendString(dst, e.Partition)
	dst = binary.AppendUvarint(dst, uint64(len(e.Slots)))
	for _, s := range e.Slots {
		dst = s.appendBinary(dst)
	}
	return dst
}

func (counterSchema) Decode(b []byte) (*CounterEntry, error) {
	r := &reader{b: b}
	r.version(counterFormat, "counter")
	e := &CounterEntry{}
	copy(e.Bucket[:], r.fixed(32))
	e.Partition = r.string()
	n := r.count(37)
	for range n {
		e.Slots = append(e.Slots, r.counterSlot())
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return e, nil
}

func (counterSchema) Merge(dst, src *CounterEntry) {
	for _, s := range src.Slots {
		i := 0
		for i < len(dst.Slots) && string(dst.Slots[i].Node[:]) < string(s.Node[:]) {
			i++
		}
		switch {
		case i == len(dst.Slots) || dst.Slots[i].Node != s.Node:
			dst.Slots = append(dst.Slots[:i], append([]CounterSlot{s}, dst.Slots[i:]...)...)
		case s.Time > dst.Slots[i].Time || (s.Time == dst.Slots[i].Time && countsLess(dst.Slots[i].Counts, s.Counts)):
			// equal times only arise from a bug or a restored backup; the
			// tie-break keeps the merge commutative anyway
			dst.Slots[i] = s
		}
	}
}

func countsLess(a, b Counts) bool {
	x := [4]int64{a.Entries, a.Conflicts, a.Values, a.Bytes}
	y := [4]int64{b.Entries, b.Conflicts, b.Values, b.Bytes}
	for i := range x {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}

func (counterSchema) IsTombstone(e *CounterEntry) bool {
	for _, s := range e.Slots {
		if s.Counts != (Counts{}) {
			return false
		}
	}
	return true
}

func (counterSchema) Updated(*Batch, *CounterEntry, *CounterEntry) error { return nil }

// aggregate returns, for each counter, the maximum over the slots of nodes
// for which include is true (k2v-api.md §11: replicas normally agree, other
// nodes report zero, departed nodes are ignored).
func (e *CounterEntry) aggregate(include func(cluster.NodeID) bool) Counts {
	var c Counts
	for _, s := range e.Slots {
		if !include(s.Node) {
			continue
		}
		c.Entries = max(c.Entries, s.Counts.Entries)
		c.Conflicts = max(c.Conflicts, s.Counts.Conflicts)
		c.Values = max(c.Values, s.Counts.Values)
		c.Bytes = max(c.Bytes, s.Counts.Bytes)
	}
	return c
}
