package k2v

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/grangeio/grange/cluster"
)

// Tombstone GC, local side (deuxfleurs-org/garage: src/table/gc.rs).
//
// A tombstone cannot simply be deleted: a replica that missed the delete
// would bring the entry back through anti-entropy. So Table.write queues
// each tombstone it stores, with the time and the hash of the stored
// encoding, in the same batch. Once the delay has passed, the GC worker
// (the replication layer) takes the candidates (GCCandidates), sends the
// tombstone to every replica, and once all of them hold it, deletes it
// everywhere with DeleteIfHash: a replica whose entry changed meanwhile
// (a newer write over the tombstone) keeps it, since its hash differs.
//
// The queue is ordered by time, "mg" ‖ name ‖ 0 ‖ time (uint64 ms,
// big-endian) ‖ storeKey → vhash, so that taking the candidates reads only
// the entries old enough. An entry stored as a tombstone several times has
// several queue entries; all but the one of the current encoding are stale
// and dropped when met, as are those of entries deleted meanwhile.

// GCCandidate is a tombstone old enough to be collected.
type GCCandidate struct {
	// Key is the entry's store key (hash ‖ sort key).
	Key []byte
	// VHash is the sha256 of Value, for DeleteIfHash.
	VHash [32]byte
	// Value is the encoded tombstone, to send to the other replicas.
	Value []byte
	// Time is when this node stored the tombstone (millisecond precision).
	Time time.Time

	todo []byte // the queue key
}

func (t *Table[E]) gcTodoKey(ms uint64, storeKey []byte) []byte {
	k := make([]byte, 0, len(t.mgPrefix)+8+len(storeKey))
	k = append(k, t.mgPrefix...)
	k = binary.BigEndian.AppendUint64(k, ms)
	return append(k, storeKey...)
}

// queueGC records in b that the tombstone under storeKey, encoded with
// hash vhash, was stored now. The queue is read only in batches of its
// own, so the write skips b's overlay.
func (t *Table[E]) queueGC(b *Batch, storeKey []byte, vhash [32]byte) error {
	ms := max(t.db.now().UnixMilli(), 0)
	if err := b.setLocalBlind(t.gcTodoKey(uint64(ms), storeKey), bytes.Clone(vhash[:])); err != nil {
		return fmt.Errorf("table %s: %w", t.name, err)
	}
	return nil
}

// GCCandidates returns up to max tombstones queued before olderThan that
// are still stored as queued, oldest first. Queue entries whose entry
// changed or disappeared since are removed on the way. A candidate stays
// queued until GCDone; returning it again is harmless (DeleteIfHash of an
// entry already deleted does nothing).
func (t *Table[E]) GCCandidates(olderThan time.Time, max int) ([]GCCandidate, error) {
	ms := olderThan.UnixMilli()
	if max <= 0 || ms <= 0 {
		return nil, nil
	}
	upper := t.gcTodoKey(uint64(ms), nil)
	lower := t.mgPrefix
	var out []GCCandidate
	for len(out) < max {
		var keys [][]byte
		err := t.db.scanLocalRange(lower, upper, func(k, _ []byte) (bool, error) {
			keys = append(keys, bytes.Clone(k))
			return len(keys) < max-len(out), nil
		})
		if err != nil || len(keys) == 0 {
			return out, err
		}
		lower = append(bytes.Clone(keys[len(keys)-1]), 0)
		var found []GCCandidate
		err = t.db.Update(func(b *Batch) error {
			found = found[:0]
			for _, k := range keys {
				c, ok, err := t.gcCheck(b, k)
				if err != nil {
					return err
				}
				if ok {
					found = append(found, c)
				} else if err := b.DeleteLocal(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("table %s: gc candidates: %w", t.name, err)
		}
		out = append(out, found...)
	}
	return out, nil
}

// gcCheck reads the queue entry k and the entry it names under the apply
// lock. ok is false when the queue entry is stale and must go.
func (t *Table[E]) gcCheck(b *Batch, k []byte) (c GCCandidate, ok bool, err error) {
	vhash, err := b.GetLocal(k)
	if err != nil || vhash == nil {
		return c, false, err // nil: removed meanwhile, deleting it again is harmless
	}
	if len(vhash) != 32 || len(k) < len(t.mgPrefix)+8+32 {
		return c, false, nil // malformed: nothing to collect from it
	}
	storeKey := k[len(t.mgPrefix)+8:]
	enc, err := b.get(append(bytes.Clone(t.prefix), storeKey...))
	if err != nil {
		return c, false, err
	}
	if enc == nil || sha256.Sum256(enc) != [32]byte(vhash) {
		return c, false, nil // deleted or overwritten since
	}
	e, err := t.schema.Decode(enc)
	if err != nil {
		return c, false, fmt.Errorf("table %s: %w", t.name, err)
	}
	if !t.schema.IsTombstone(e) {
		return c, false, nil
	}
	ms := binary.BigEndian.Uint64(k[len(t.mgPrefix):])
	return GCCandidate{
		Key:   bytes.Clone(storeKey),
		VHash: [32]byte(vhash),
		Value: enc,
		Time:  time.UnixMilli(int64(ms)),
		todo:  bytes.Clone(k),
	}, true, nil
}

// GCDone removes c from the queue (after the tombstone was collected, or
// to abandon it). A queue entry rewritten since c was read is kept.
func (t *Table[E]) GCDone(c GCCandidate) error {
	if c.todo == nil {
		return nil
	}
	return t.db.Update(func(b *Batch) error {
		v, err := b.GetLocal(c.todo)
		if err != nil || !bytes.Equal(v, c.VHash[:]) {
			return err
		}
		return b.DeleteLocal(c.todo)
	})
}

// DeleteIfHash deletes the entry under storeKey if its stored encoding
// hashes (sha256) to vhash, and reports whether it did. The delete runs
// the schema's Updated hook with next == nil, updates the Merkle tree and
// notifies watchers, like a write. Its queue entries for GC become stale
// and are dropped by GCCandidates (or removed with GCDone).
func (t *Table[E]) DeleteIfHash(storeKey []byte, vhash [32]byte) (bool, error) {
	if len(storeKey) < 32 {
		return false, fmt.Errorf("table %s: delete: store key of %d bytes", t.name, len(storeKey))
	}
	key := append(bytes.Clone(t.prefix), storeKey...)
	var deleted bool
	err := t.db.Update(func(b *Batch) error {
		deleted = false
		enc, err := b.get(key)
		if err != nil || enc == nil || sha256.Sum256(enc) != vhash {
			return err
		}
		prev, err := t.schema.Decode(enc)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.name, err)
		}
		deleted = true
		return t.remove(b, key, prev)
	})
	return deleted && err == nil, err
}

// DropPartition deletes up to max entries of partition p whose store keys
// follow after (nil: from the start), in one batch, through the delete path
// of DeleteIfHash. It returns the last store key it reached, nil when
// there was none left, and how many entries it deleted. A node calls it
// until last is nil once a partition it no longer stores has been handed
// over. An entry that does not decode is deleted without the Updated hook.
func (t *Table[E]) DropPartition(p cluster.Partition, after []byte, max int) (last []byte, n int, err error) {
	if max <= 0 {
		return nil, 0, nil
	}
	var keys [][]byte
	err = t.ScanPartition(p, after, func(key, _ []byte) (bool, error) {
		keys = append(keys, bytes.Clone(key))
		return len(keys) < max, nil
	})
	if err != nil || len(keys) == 0 {
		return nil, 0, err
	}
	err = t.db.Update(func(b *Batch) error {
		n = 0
		for _, sk := range keys {
			key := append(bytes.Clone(t.prefix), sk...)
			enc, err := b.get(key)
			if err != nil {
				return err
			}
			if enc == nil {
				continue
			}
			prev, err := t.schema.Decode(enc)
			if err != nil {
				prev = nil // nothing known to subtract; the entry goes anyway
			}
			if err := t.remove(b, key, prev); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("table %s: drop partition %d: %w", t.name, p, err)
	}
	return keys[len(keys)-1], n, nil
}
