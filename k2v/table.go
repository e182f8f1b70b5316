package k2v

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/grangeio/grange/cluster"
)

// Schema describes the entries of a table. Entries are CRDTs: replicas
// converge whatever order they receive updates in, because Merge is a join.
type Schema[E any] interface {
	// Name is the table's name, unique per DB and frozen once data exists:
	// it is part of every stored key.
	Name() string
	// Keys returns the entry's partition key (hashed for placement) and sort
	// key (ordered within the partition key).
	Keys(e *E) (partition, sort []byte)
	// Encode appends the entry's stored form to dst; the form starts with a
	// version byte.
	Encode(dst []byte, e *E) []byte
	// Decode parses the stored form. It must not retain b and must return an
	// error wrapping ErrCorrupt, never panic, on bad input.
	Decode(b []byte) (*E, error)
	// Merge joins src into dst: commutative, associative, idempotent.
	Merge(dst, src *E)
	// IsTombstone reports whether the entry only records a deletion (it is
	// kept until every replica has it, then collected).
	IsTombstone(e *E) bool
	// Updated runs in the batch that stores next (prev is nil for a new
	// entry), so that derived state (indexes, counters, block refcounts)
	// commits atomically with the entry. next is nil when the entry is
	// removed: a tombstone collected by GC (DeleteIfHash) or a partition
	// dropped after hand-over (DropPartition); prev is then the removed
	// entry. It must only write through b.
	Updated(b *Batch, prev, next *E) error
}

// Table stores the entries of one schema in the node's DB. This is the
// local half of a table: what one replica holds. Replication, read quorums
// and anti-entropy are built on the methods here: Merge applies an update
// received from anywhere, ScanPartition feeds Merkle trees and sync, and
// Watch drives long polls.
type Table[E any] struct {
	db     *DB
	schema Schema[E]
	name   string
	prefix []byte // spaceTable ‖ name ‖ 0x00

	// listeners are called after each commit that changed an entry; set
	// with OnChange before the table is used. The first wakes the Merkle
	// updater.
	listeners []func(hash [32]byte, sort []byte)

	// Node-local key prefixes of the table's Merkle tree and GC queue
	// (merkle.go, gc.go), each "xx" ‖ name ‖ 0x00.
	mqPrefix, mkPrefix, mlPrefix, mgPrefix []byte
	// merkleWake is poked after each commit that queued Merkle work.
	merkleWake chan struct{}
	// merkleMu is held by each step of the Merkle updater: the tree has
	// one writer at a time (merkle.go). Lock order: merkleMu, then the
	// DB's locks.
	merkleMu sync.Mutex
	// noQueues skips the Merkle and GC queues in write; benchmarks set it
	// to measure what the queues cost.
	noQueues bool
}

// NewTable registers a table of schema s in db.
func NewTable[E any](db *DB, s Schema[E]) (*Table[E], error) {
	name := s.Name()
	if err := db.registerTable(name); err != nil {
		return nil, err
	}
	prefix := make([]byte, 0, len(name)+2)
	prefix = append(prefix, spaceTable)
	prefix = append(prefix, name...)
	prefix = append(prefix, 0)
	t := &Table[E]{db: db, schema: s, name: name, prefix: prefix, merkleWake: make(chan struct{}, 1)}
	t.mqPrefix = localPrefix(merkleTodoSpace, name)
	t.mkPrefix = localPrefix(merkleNodeSpace, name)
	t.mlPrefix = localPrefix(merkleLeafSpace, name)
	t.mgPrefix = localPrefix(gcTodoSpace, name)
	t.listeners = []func([32]byte, []byte){func([32]byte, []byte) { t.pokeMerkle() }}
	return t, nil
}

// Name returns the schema's name.
func (t *Table[E]) Name() string { return t.name }

// DB returns the database the table lives in.
func (t *Table[E]) DB() *DB { return t.db }

// OnChange registers fn to run after every commit that changed an entry of
// this table, with the entry's hash and sort key. fn runs on the committing
// goroutine and must be quick. OnChange must be called before the table is
// first written.
func (t *Table[E]) OnChange(fn func(hash [32]byte, sort []byte)) {
	t.listeners = append(t.listeners, fn)
}

// Watch returns a watch on one partition key of this table.
func (t *Table[E]) Watch(partition []byte) *Watch {
	return t.db.feed.watch(t.name, Hash(partition))
}

func (t *Table[E]) key(hash [32]byte, sort []byte) []byte {
	k := make([]byte, 0, len(t.prefix)+32+len(sort))
	k = append(k, t.prefix...)
	k = append(k, hash[:]...)
	return append(k, sort...)
}

// Get returns the entry stored under (partition, sort), or nil when there is
// none. The entry belongs to the caller.
func (t *Table[E]) Get(partition, sort []byte) (*E, error) {
	if err := t.db.enter(); err != nil {
		return nil, err
	}
	defer t.db.leave()
	return t.get(t.db.pdb, Hash(partition), sort)
}

// GetIn is Get through a batch: it sees the batch's own writes.
func (t *Table[E]) GetIn(b *Batch, partition, sort []byte) (*E, error) {
	return t.decode(b.get(t.key(Hash(partition), sort)))
}

func (t *Table[E]) get(g getter, hash [32]byte, sort []byte) (*E, error) {
	return t.decode(getCopy(g, t.key(hash, sort)))
}

// decode decodes a stored value; nil stands for an absent entry.
func (t *Table[E]) decode(v []byte, err error) (*E, error) {
	if err != nil || v == nil {
		return nil, err
	}
	e, err := t.schema.Decode(v)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	return e, nil
}

// Merge joins each entry into what is stored, in one batch. This is how
// updates from other replicas, read repair and anti-entropy are applied.
func (t *Table[E]) Merge(entries ...*E) error {
	return t.db.Update(func(b *Batch) error {
		for _, e := range entries {
			if err := t.MergeIn(b, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// MergeIn joins e into the stored entry inside batch b. It writes nothing
// when the merge changes nothing. e must not be used by the caller after.
func (t *Table[E]) MergeIn(b *Batch, e *E) error {
	_, err := t.mergeIn(b, e)
	return err
}

func (t *Table[E]) mergeIn(b *Batch, e *E) (*E, error) {
	pk, sk := t.schema.Keys(e)
	hash := Hash(pk)
	key := t.key(hash, sk)
	old, err := b.get(key)
	if err != nil {
		return nil, err
	}
	if old == nil {
		return e, t.write(b, hash, key, sk, nil, e, nil)
	}
	prev, err := t.schema.Decode(old)
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	next, _ := t.schema.Decode(old) // decodes: it just did
	t.schema.Merge(next, e)
	return next, t.write(b, hash, key, sk, prev, next, old)
}

// Update reads the entry under (partition, sort), passes it to fn (nil when
// absent) and stores what fn returns, merged over the stored entry so that
// the result is never older than what was there. fn may modify and return
// its argument. If fn returns nil or an error, nothing is written.
// Update returns the stored result.
func (t *Table[E]) Update(partition, sort []byte, fn func(cur *E) (*E, error)) (*E, error) {
	var out *E
	err := t.db.Update(func(b *Batch) error {
		var err error
		out, err = t.UpdateIn(b, partition, sort, fn)
		return err
	})
	return out, err
}

// UpdateIn is Update inside a batch.
func (t *Table[E]) UpdateIn(b *Batch, partition, sort []byte, fn func(cur *E) (*E, error)) (*E, error) {
	hash := Hash(partition)
	key := t.key(hash, sort)
	old, err := b.get(key)
	if err != nil {
		return nil, err
	}
	var prev, cur *E
	if old != nil {
		if prev, err = t.schema.Decode(old); err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		cur, _ = t.schema.Decode(old)
	}
	next, err := fn(cur)
	if err != nil || next == nil {
		return nil, err
	}
	if pk, sk := t.schema.Keys(next); !bytes.Equal(pk, partition) || !bytes.Equal(sk, sort) {
		return nil, fmt.Errorf("table %s: update returned an entry with other keys", t.name)
	}
	if prev != nil {
		// fn built next from cur, so merging prev in only matters when fn
		// dropped state it should have kept; it keeps the CRDT monotonic.
		t.schema.Merge(next, prev)
	}
	return next, t.write(b, hash, key, sort, prev, next, old)
}

func (t *Table[E]) write(b *Batch, hash [32]byte, key, sort []byte, prev, next *E, old []byte) error {
	enc := t.schema.Encode(nil, next)
	if old != nil && bytes.Equal(enc, old) {
		return nil
	}
	if err := b.set(key, enc); err != nil {
		return fmt.Errorf("table %s: %w", t.name, err)
	}
	if err := t.schema.Updated(b, prev, next); err != nil {
		return fmt.Errorf("table %s: updated hook: %w", t.name, err)
	}
	if !t.noQueues {
		// The queues commit with the entry, so a crash loses no Merkle
		// update and no tombstone to collect.
		storeKey := key[len(t.prefix):]
		vhash := sha256.Sum256(enc)
		if err := t.queueMerkle(b, storeKey, vhash[:]); err != nil {
			return err
		}
		if t.schema.IsTombstone(next) {
			if err := t.queueGC(b, storeKey, vhash); err != nil {
				return err
			}
		}
	}
	b.changes = append(b.changes, change{table: t.name, hash: hash, sort: bytes.Clone(sort), listeners: t.listeners})
	return nil
}

// remove deletes the stored entry under key (whose decoded form is prev,
// nil when it could not be decoded) in batch b: the delete path of GC and
// of DropPartition. It runs the Updated hook with next == nil (skipped when
// prev is nil: there is nothing to subtract), queues the Merkle update and
// publishes the change like write.
func (t *Table[E]) remove(b *Batch, key []byte, prev *E) error {
	if err := b.del(key); err != nil {
		return fmt.Errorf("table %s: %w", t.name, err)
	}
	if prev != nil {
		if err := t.schema.Updated(b, prev, nil); err != nil {
			return fmt.Errorf("table %s: updated hook: %w", t.name, err)
		}
	}
	storeKey := key[len(t.prefix):]
	if err := t.queueMerkle(b, storeKey, nil /* removed */); err != nil {
		return err
	}
	var hash [32]byte
	copy(hash[:], storeKey)
	b.changes = append(b.changes, change{table: t.name, hash: hash, sort: bytes.Clone(storeKey[32:]), listeners: t.listeners})
	return nil
}

// ScanOptions bound a scan of one partition key's sort keys.
type ScanOptions struct {
	// Lower is the first sort key (inclusive); nil means the first.
	Lower []byte
	// Upper is the sort key to stop before (exclusive); nil means no bound.
	Upper []byte
	// Reverse walks from the highest key down.
	Reverse bool
}

// Scan calls fn for the entries of one partition key whose sort keys are in
// [Lower, Upper), in order, from a consistent snapshot, until fn returns
// false or an error. Entries passed to fn belong to fn. fn must not call
// the DB (the scan holds it open; collect, then act).
func (t *Table[E]) Scan(partition []byte, o ScanOptions, fn func(sort []byte, e *E) (bool, error)) error {
	base := t.key(Hash(partition), nil)
	return t.iterate(scanIterOptions(base, o), o.Reverse, func(key, value []byte) (bool, error) {
		e, err := t.schema.Decode(value)
		if err != nil {
			return false, fmt.Errorf("table %s: %w", t.name, err)
		}
		return fn(key[len(base):], e)
	})
}

// scanIterOptions bounds an iteration to the sort keys of o under base
// (the key prefix of one partition key).
func scanIterOptions(base []byte, o ScanOptions) *pebble.IterOptions {
	iopts := &pebble.IterOptions{
		LowerBound: append(bytes.Clone(base), o.Lower...),
		UpperBound: prefixEnd(base),
	}
	if o.Upper != nil {
		iopts.UpperBound = append(bytes.Clone(base), o.Upper...)
	}
	return iopts
}

// ScanPartition calls fn with the stored key (after the table prefix: hash
// ‖ sort key) and encoded value of every entry of partition p whose key is
// greater than after (nil: from the start), in key order, until fn returns
// false or an error. Anti-entropy and hand-over of partitions use it; the
// slices passed to fn are valid only during the call.
func (t *Table[E]) ScanPartition(p cluster.Partition, after []byte, fn func(key, value []byte) (bool, error)) error {
	lower := append(bytes.Clone(t.prefix), byte(p))
	if after != nil {
		lower = append(append(bytes.Clone(t.prefix), after...), 0)
	}
	upper := prefixEnd(append(bytes.Clone(t.prefix), byte(p)))
	return t.iterate(&pebble.IterOptions{LowerBound: lower, UpperBound: upper}, false, func(key, value []byte) (bool, error) {
		return fn(key[len(t.prefix):], value)
	})
}

// Decode parses an entry as stored (for values from ScanPartition).
func (t *Table[E]) Decode(value []byte) (*E, error) { return t.schema.Decode(value) }

func (t *Table[E]) iterate(o *pebble.IterOptions, reverse bool, fn func(key, value []byte) (bool, error)) error {
	if err := t.db.enter(); err != nil {
		return err
	}
	defer t.db.leave()
	it, err := t.db.pdb.NewIter(o)
	if err != nil {
		return fmt.Errorf("table %s: %w", t.name, err)
	}
	valid := it.First
	step := it.Next
	if reverse {
		valid, step = it.Last, it.Prev
	}
	for ok := valid(); ok; ok = step() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("table %s: %w", t.name, err)
		}
		more, err := fn(it.Key(), v)
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("table %s: %w", t.name, err)
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key starting with
// p, or nil when there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
