package k2v

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/grangeio/grange/cluster"
)

// Limits of the K2V item API. They are part of the documented contract
// (k2v-api.md §13): keys above MaxKeyBytes are refused rather than stored.
const (
	// MaxKeyBytes bounds partition keys and sort keys.
	MaxKeyBytes = 1024
	// MaxPageItems is the most items (or index entries) one range read
	// returns; a larger or absent limit is capped, with More and Next set so
	// that the caller continues where the page stopped.
	MaxPageItems = 1000
)

// ErrKeyTooLong is returned for partition or sort keys above MaxKeyBytes.
var ErrKeyTooLong = errors.New("k2v: key too long")

// ItemsConfig configures NewItems.
type ItemsConfig struct {
	// Node is this node's ID; its first 8 bytes identify the node in the
	// causality tokens of the writes it executes.
	Node cluster.NodeID
	// IsStorageNode reports whether a node stores data in the current
	// layout; ReadIndex ignores the counters published by other nodes. Nil
	// means only Node.
	IsStorageNode func(cluster.NodeID) bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replicator, when set, replicates the item and counter tables over
	// the cluster; nil keeps them on this node only.
	Replicator *Replicator
	// Logger; nil discards.
	Logger *slog.Logger
}

// Items is the K2V item store of a node: DVVS items in a table, index
// counters maintained with them, long polls over the change feed.
type Items struct {
	db       *DB
	items    *Table[Item]
	counters *Table[CounterEntry]
	pub      *counterPublisher
	node     cluster.NodeID
	nodeU64  uint64
	isNode   func(cluster.NodeID) bool
	now      func() time.Time
	log      *slog.Logger

	// with replication: the replicated item and counter tables
	rep       *Replicator
	ritems    *Replicated[Item]
	rcounters *Replicated[CounterEntry]

	// lastTime is the last timestamp this node gave a write, persisted with
	// each write: timestamps keep increasing across items and restarts even
	// if the clock goes back. Only touched inside DB.Update callbacks, which
	// the DB serialises.
	lastTime uint64
}

var lastTimeKey = []byte("k2v_last_time")

// NewItems registers the item and counter tables in db.
func NewItems(db *DB, cfg ItemsConfig) (*Items, error) {
	s := &Items{db: db, node: cfg.Node, nodeU64: cfg.Node.Uint64(), isNode: cfg.IsStorageNode, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.isNode == nil {
		s.isNode = func(id cluster.NodeID) bool { return id == cfg.Node }
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.counters, err = NewTable[CounterEntry](db, counterSchema{}); err != nil {
		return nil, err
	}
	s.pub = newCounterPublisher(db, s.counters, s.log)
	if s.items, err = NewTable[Item](db, itemSchema{pub: s.pub, node: cfg.Node, now: s.now}); err != nil {
		return nil, err
	}
	if cfg.Replicator != nil {
		s.rep = cfg.Replicator
		s.ritems = Replicate(s.rep, s.items, Sharded)
		s.rcounters = Replicate(s.rep, s.counters, Sharded)
		s.pub.insert = func(ctx context.Context, entries []*CounterEntry) error {
			return s.rcounters.Insert(ctx, entries...)
		}
		s.registerHandlers()
	}
	// local counters whose publication a crash interrupted
	if err := s.pub.markAllDirty(); err != nil {
		return nil, err
	}
	v, err := db.GetLocal(lastTimeKey)
	if err != nil {
		return nil, err
	}
	if len(v) == 8 {
		s.lastTime = binary.BigEndian.Uint64(v)
	}
	return s, nil
}

// Start launches the background publication of index counters.
func (s *Items) Start() { s.pub.start() }

// Close stops the background work, publishing what is pending. It is safe
// to call twice, and before Start.
func (s *Items) Close() error { return s.pub.close() }

// Table returns the item table (for replication and tests).
func (s *Items) Table() *Table[Item] { return s.items }

// CounterTable returns the index counter table (for replication and
// tests).
func (s *Items) CounterTable() *Table[CounterEntry] { return s.counters }

// Write is one insert or delete: Value (a tombstone for a delete) replaces
// the versions covered by Context; a nil Context replaces nothing.
type Write struct {
	Partition string
	Sort      string
	Context   Clock
	Value     Value
}

func checkKeys(pk, sk string) error {
	if len(pk) > MaxKeyBytes || len(sk) > MaxKeyBytes {
		return fmt.Errorf("%w: partition key of %d bytes, sort key of %d bytes (max %d)", ErrKeyTooLong, len(pk), len(sk), MaxKeyBytes)
	}
	return nil
}

// Insert executes writes on this node: each is stamped with this node's ID
// and a fresh timestamp (k2v-api.md §5.2). Writes are applied in groups of
// up to 100 per atomic batch; a batch call is not a transaction.
func (s *Items) Insert(ctx context.Context, bucket BucketID, writes ...Write) error {
	for _, w := range writes {
		if err := checkKeys(w.Partition, w.Sort); err != nil {
			return err
		}
	}
	if s.rep != nil {
		return s.insertCluster(ctx, bucket, writes)
	}
	return s.insertHere(ctx, bucket, writes)
}

// insertHere stamps and applies writes on this node and, with
// replication, sends the resulting items to their other replicas.
func (s *Items) insertHere(ctx context.Context, bucket BucketID, writes []Write) error {
	const group = 100
	for len(writes) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(group, len(writes))
		apply := func(b *Batch) error { return s.applyWrites(b, bucket, writes[:n]) }
		var err error
		if s.rep != nil {
			err = s.rep.Update(ctx, apply)
		} else {
			err = s.db.Update(apply)
		}
		if err != nil {
			return fmt.Errorf("insert into bucket %v: %w", bucket, err)
		}
		writes = writes[n:]
	}
	return nil
}

func (s *Items) applyWrites(b *Batch, bucket BucketID, writes []Write) error {
	t := s.lastTime
	for _, w := range writes {
		_, err := s.items.UpdateIn(b, itemPartitionKey(bucket, w.Partition), []byte(w.Sort), func(cur *Item) (*Item, error) {
			if cur == nil {
				cur = NewItem(bucket, w.Partition, w.Sort)
			}
			t = cur.Write(s.nodeU64, w.Context, w.Value, max(t, uint64(s.now().UnixMilli())))
			return cur, nil
		})
		if err != nil {
			return err
		}
	}
	if err := b.SetLocal(lastTimeKey, binary.BigEndian.AppendUint64(nil, t)); err != nil {
		return err
	}
	s.lastTime = t
	return nil
}

// Get returns the item, or nil if it was never written.
func (s *Items) Get(ctx context.Context, bucket BucketID, pk, sk string) (*Item, error) {
	if err := checkKeys(pk, sk); err != nil {
		return nil, err
	}
	var it *Item
	var err error
	if s.rep != nil {
		it, err = s.ritems.Get(ctx, itemPartitionKey(bucket, pk), []byte(sk))
	} else {
		it, err = s.items.Get(itemPartitionKey(bucket, pk), []byte(sk))
	}
	if err != nil {
		return nil, fmt.Errorf("read item: %w", err)
	}
	return it, nil
}

// Filter selects items in a range read.
type Filter struct {
	// ConflictsOnly keeps items with two or more values.
	ConflictsOnly bool
	// Tombstones also keeps deleted items.
	Tombstones bool
}

func (f Filter) Accept(it *Item) bool {
	if !it.HasValues() || (!f.Tombstones && it.IsTombstone()) {
		return false
	}
	return !f.ConflictsOnly || len(it.Values()) >= 2
}

// Budget bounds the value bytes of one response made of several range
// reads: a read stops (with More set) once the budget is spent.
type Budget struct{ Bytes int64 }

// ReadRange returns the items of a partition selected by r and f, at most
// MaxPageItems, and stops early once budget (nil: unlimited) is spent.
func (s *Items) ReadRange(ctx context.Context, bucket BucketID, pk string, r Range, f Filter, budget *Budget) ([]*Item, Page, error) {
	if err := checkKeys(pk, ""); err != nil {
		return nil, Page{}, err
	}
	var out []*Item
	page, err := walkRange(s.scanItems(ctx), itemPartitionKey(bucket, pk), r, MaxPageItems, f.Accept, func(_ []byte, it *Item) bool {
		out = append(out, it)
		if budget == nil {
			return true
		}
		for i := range it.Entries {
			for _, v := range it.Entries[i].Versions {
				budget.Bytes -= int64(len(v.Value.Data))
			}
		}
		return budget.Bytes > 0
	})
	if err != nil {
		return nil, Page{}, fmt.Errorf("read range: %w", err)
	}
	return out, page, nil
}

// scanItems is the scan range reads use: a quorum scan with replication.
func (s *Items) scanItems(ctx context.Context) scanFunc[Item] {
	if s.rep == nil {
		return s.items.Scan
	}
	return func(partition []byte, o ScanOptions, fn func(sort []byte, e *Item) (bool, error)) error {
		return s.ritems.Scan(ctx, partition, o, fn)
	}
}

// DeleteItem writes a tombstone over every version of one item as read now
// (DeleteBatch with singleItem). It reports whether the item existed and
// was not already deleted.
func (s *Items) DeleteItem(ctx context.Context, bucket BucketID, pk, sk string) (bool, error) {
	it, err := s.Get(ctx, bucket, pk, sk)
	if err != nil || it == nil || it.IsTombstone() {
		return false, err
	}
	return true, s.Insert(ctx, bucket, Write{Partition: pk, Sort: sk, Context: it.Context(), Value: Value{Tombstone: true}})
}

// DeleteRange writes, for every non-deleted item selected by r (Limit and
// Reverse are ignored), a tombstone whose context is the item's context as
// read: every version read is deleted, versions written concurrently
// survive. It works in pages, so memory does not grow with the range, and
// returns the number of items deleted.
func (s *Items) DeleteRange(ctx context.Context, bucket BucketID, pk string, r Range) (int, error) {
	r.Limit, r.Reverse = nil, false
	total := 0
	for {
		items, page, err := s.ReadRange(ctx, bucket, pk, r, Filter{}, nil)
		if err != nil {
			return total, err
		}
		writes := make([]Write, len(items))
		for i, it := range items {
			writes[i] = Write{Partition: pk, Sort: it.Sort, Context: it.Context(), Value: Value{Tombstone: true}}
		}
		if err := s.Insert(ctx, bucket, writes...); err != nil {
			return total, err
		}
		total += len(items)
		if !page.More {
			return total, nil
		}
		r.Start = page.Next
	}
}

// PollItem waits until the item's context has something token has not
// (k2v-api.md §6.2) and returns the item; changed is false when timeout
// passed first. It costs nothing while waiting: it sleeps on the change
// feed.
func (s *Items) PollItem(ctx context.Context, bucket BucketID, pk, sk string, token Clock, timeout time.Duration) (it *Item, changed bool, err error) {
	if err := checkKeys(pk, sk); err != nil {
		return nil, false, err
	}
	if s.rep != nil {
		return s.pollItemCluster(ctx, bucket, pk, sk, token, timeout)
	}
	return s.pollItemHere(ctx, bucket, pk, sk, token, timeout)
}

// pollItemHere is PollItem on this node's copy.
func (s *Items) pollItemHere(ctx context.Context, bucket BucketID, pk, sk string, token Clock, timeout time.Duration) (it *Item, changed bool, err error) {
	// watch first, then read: a write between the two is not missed
	w := s.items.Watch(itemPartitionKey(bucket, pk))
	defer w.Close()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		it, err := s.items.Get(itemPartitionKey(bucket, pk), []byte(sk))
		if err != nil {
			return nil, false, err
		}
		if it != nil && it.Context().NewerThan(token) {
			return it, true, nil
		}
	wait:
		select {
		case <-w.C:
			if sorts, overflow := w.Changed(); !overflow && !containsSort(sorts, sk) {
				goto wait // another item of the partition changed
			}
		case <-timer.C:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

func containsSort(sorts [][]byte, sk string) bool {
	for _, s := range sorts {
		if string(s) == sk {
			return true
		}
	}
	return false
}

// PollRange returns the items of the range that are new with respect to
// marker (k2v-api.md §9), waiting up to timeout for one to appear; with a
// nil marker it returns every item of the range at once, tombstones
// included. It returns at most MaxPageItems items: when more changed, the
// marker it returns still reports the others as new, so the next call
// returns them at once. changed is false when the timeout passed first.
func (s *Items) PollRange(ctx context.Context, bucket BucketID, pk string, r PollRange, marker *SeenMarker, timeout time.Duration) (items []*Item, next *SeenMarker, changed bool, err error) {
	if err := checkKeys(pk, ""); err != nil {
		return nil, nil, false, err
	}
	if s.rep != nil {
		return s.pollRangeCluster(ctx, bucket, pk, r, marker, timeout)
	}
	items, complete, changed, err := s.pollRangeHere(ctx, bucket, pk, r, marker, timeout)
	if err != nil || !changed {
		return nil, nil, changed, err
	}
	return items, s.nextMarker(marker, r, items, complete), true, nil
}

// pollRangeHere is PollRange on this node's copy; complete is false when
// items were left out past MaxPageItems.
func (s *Items) pollRangeHere(ctx context.Context, bucket BucketID, pk string, r PollRange, marker *SeenMarker, timeout time.Duration) (items []*Item, complete, changed bool, err error) {
	partition := itemPartitionKey(bucket, pk)
	w := s.items.Watch(partition)
	defer w.Close()

	isNew := func(it *Item) bool { return it.HasValues() && (marker == nil || marker.isNew(it)) }
	items, complete, err = s.scanPoll(partition, r, isNew)
	if err != nil {
		return nil, false, false, err
	}
	if marker == nil || len(items) > 0 {
		return items, complete, true, nil
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-w.C:
		case <-timer.C:
			return nil, false, false, nil
		case <-ctx.Done():
			return nil, false, false, ctx.Err()
		}
		sorts, overflow := w.Changed()
		if overflow {
			items, complete, err = s.scanPoll(partition, r, isNew)
		} else {
			items, complete, err = s.getPoll(partition, r, sorts, isNew)
		}
		if err != nil {
			return nil, false, false, err
		}
		if len(items) > 0 {
			return items, complete, true, nil
		}
	}
}

func (s *Items) nextMarker(old *SeenMarker, r PollRange, items []*Item, complete bool) *SeenMarker {
	m := &SeenMarker{}
	if old != nil {
		m.Clock = old.Clock
		m.Items = old.Items
	}
	m.markSeen(s.nodeU64, items, complete)
	m.restrict(r)
	return m
}

// scanPoll returns the items of the range accepted by keep, at most
// MaxPageItems; complete is false if more were left out.
func (s *Items) scanPoll(partition []byte, r PollRange, keep func(*Item) bool) (items []*Item, complete bool, err error) {
	o, ok := r.bounds()
	if !ok {
		return nil, true, nil
	}
	complete = true
	err = s.items.Scan(partition, o, func(_ []byte, it *Item) (bool, error) {
		if !keep(it) {
			return true, nil
		}
		if len(items) == MaxPageItems {
			complete = false
			return false, nil
		}
		items = append(items, it)
		return true, nil
	})
	return items, complete, err
}

// getPoll is scanPoll restricted to the sort keys a watch reported.
func (s *Items) getPoll(partition []byte, r PollRange, sorts [][]byte, keep func(*Item) bool) (items []*Item, complete bool, err error) {
	seen := map[string]bool{}
	for _, sk := range sorts {
		if seen[string(sk)] || !r.contains(string(sk)) {
			continue
		}
		seen[string(sk)] = true
		it, err := s.items.Get(partition, sk)
		if err != nil {
			return nil, false, err
		}
		if it != nil && keep(it) {
			items = append(items, it)
		}
	}
	// sorted, as a scan would return them
	sortItems(items)
	return items, true, nil
}

// IndexEntry is one partition key of a bucket with its counters.
type IndexEntry struct {
	Partition string
	Counts    Counts
}

// ReadIndex lists the partition keys of bucket selected by r that hold at
// least one non-deleted item, with their counters (k2v-api.md §7, §11), at
// most MaxPageItems of them.
func (s *Items) ReadIndex(ctx context.Context, bucket BucketID, r Range) ([]IndexEntry, Page, error) {
	// This node's own changes are visible at once; other nodes' arrive as
	// they publish them (the index is eventually consistent).
	if err := s.pub.flush(); err != nil {
		return nil, Page{}, fmt.Errorf("read index: %w", err)
	}
	var out []IndexEntry
	accept := func(e *CounterEntry) bool { return e.aggregate(s.isNode) != Counts{} }
	scan := s.counters.Scan
	if s.rep != nil {
		scan = func(partition []byte, o ScanOptions, fn func(sort []byte, e *CounterEntry) (bool, error)) error {
			return s.rcounters.Scan(ctx, partition, o, fn)
		}
	}
	page, err := walkRange(scan, bucket[:], r, MaxPageItems, accept, func(_ []byte, e *CounterEntry) bool {
		out = append(out, IndexEntry{Partition: e.Partition, Counts: e.aggregate(s.isNode)})
		return true
	})
	if err != nil {
		return nil, Page{}, fmt.Errorf("read index: %w", err)
	}
	return out, page, nil
}

// BucketEmpty reports whether bucket holds no non-deleted K2V item.
func (s *Items) BucketEmpty(ctx context.Context, bucket BucketID) (bool, error) {
	var zero uint64
	_, page, err := s.ReadIndex(ctx, bucket, Range{Limit: &zero})
	return !page.More, err
}
