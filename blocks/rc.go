package blocks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/grangeio/grange/k2v"
)

// Reference counting.
//
// The block-reference table holds one entry per (block, owner): the owner
// is whatever uses the block (an object version, for S3), as opaque
// bytes. Upper layers write references in the same batch as the entries
// that use the blocks (AddRef, RemoveRef), through k2v.Replicator.Update,
// which pushes them to the table's replicas. The table is sharded on the
// block hash, and blocks are placed by the same partition (PartitionOf),
// so the nodes that hold a block's references are the nodes that store
// the block.
//
// Each node counts, per block, the live references it holds: the table's
// Updated hook adjusts the count in the batch that changes a reference,
// so the count is never out of step with the table. The count lives in
// node-local space:
//
//	blocks/rc/<hash> → count uint64 ‖ deletable-at int64 (Unix ns)
//
// A block whose count is zero may be deleted once deletable-at has
// passed: it is set GCDelay ahead when the count drops to zero and when
// the block is stored again (notePut), so a block just written survives
// at least GCDelay for its reference to arrive. Deleting takes the
// block's stripe lock and re-checks the count in the batch that removes
// the record (collect): a reference that arrives first prevents the
// deletion; one that arrives after finds the record gone, counts from
// zero, and queues a resync that fetches the block again if this node
// must hold it.

var (
	rcPrefix    = []byte("blocks/rc/")
	queuePrefix = []byte("blocks/rq/") // resync queue: time ‖ hash
	errPrefix   = []byte("blocks/err/")
	scrubKey    = []byte("blocks/scrub")
)

// Ref is an entry of the block-reference table: Owner uses Block, until
// Deleted. Deleted is final: a removed reference is a tombstone, collected
// by the table's GC once every replica has it.
type Ref struct {
	Block   Hash
	Owner   []byte
	Deleted bool
}

func (r *Ref) live() bool { return r != nil && !r.Deleted }

// refSchema is the k2v schema of the block-reference table. Its Updated
// hook keeps the local reference counts.
type refSchema struct{ m *Manager }

const refVersion = 1

func (refSchema) Name() string                     { return "block_ref" }
func (refSchema) Keys(e *Ref) (p, s []byte)        { return e.Block[:], e.Owner }
func (refSchema) IsTombstone(e *Ref) bool          { return e.Deleted }
func (refSchema) Merge(dst, src *Ref)              { dst.Deleted = dst.Deleted || src.Deleted }
func (refSchema) Decode(b []byte) (*Ref, error)    { return decodeRef(b) }
func (refSchema) Encode(dst []byte, e *Ref) []byte { return encodeRef(dst, e) }

// encodeRef: version ‖ flags (1 = deleted) ‖ hash ‖ owner.
func encodeRef(dst []byte, e *Ref) []byte {
	var flags byte
	if e.Deleted {
		flags = 1
	}
	dst = append(dst, refVersion, flags)
	dst = append(dst, e.Block[:]...)
	return append(dst, e.Owner...)
}

func decodeRef(b []byte) (*Ref, error) {
	if len(b) < 2+len(Hash{}) {
		return nil, fmt.Errorf("%w: block reference of %d bytes", k2v.ErrCorrupt, len(b))
	}
	if b[0] != refVersion {
		return nil, fmt.Errorf("%w: block reference version %d", k2v.ErrCorrupt, b[0])
	}
	if b[1]&^1 != 0 {
		return nil, fmt.Errorf("%w: block reference flags %#x", k2v.ErrCorrupt, b[1])
	}
	e := &Ref{Deleted: b[1] == 1, Owner: bytes.Clone(b[2+len(Hash{}):])}
	copy(e.Block[:], b[2:])
	return e, nil
}

func (s refSchema) Updated(b *k2v.Batch, prev, next *Ref) error {
	var delta int64
	if next.live() {
		delta++
	}
	if prev.live() {
		delta--
	}
	if delta == 0 {
		return nil
	}
	e := next
	if e == nil {
		e = prev
	}
	return s.m.addRef(b, e.Block, delta)
}

func (m *Manager) initRefs() error {
	t, err := k2v.NewTable(m.db, refSchema{m})
	if err != nil {
		return err
	}
	m.refs = k2v.Replicate(m.cfg.Replicator, t, k2v.Sharded)
	return nil
}

// Refs returns the block-reference table.
func (m *Manager) Refs() *k2v.Replicated[Ref] { return m.refs }

// AddRef records, in batch b, that owner uses block h. Run b through
// k2v.Replicator.Update so that the reference reaches its replicas.
func (m *Manager) AddRef(b *k2v.Batch, h Hash, owner []byte) error {
	return m.refs.Table().MergeIn(b, &Ref{Block: h, Owner: bytes.Clone(owner)})
}

// RemoveRef records, in batch b, that owner no longer uses block h. Once
// no reference is left, the block is deleted after GCDelay.
func (m *Manager) RemoveRef(b *k2v.Batch, h Hash, owner []byte) error {
	return m.refs.Table().MergeIn(b, &Ref{Block: h, Owner: bytes.Clone(owner), Deleted: true})
}

// rcEntry is a block's local reference count.
type rcEntry struct {
	count       uint64
	deletableAt time.Time // when count is 0
	exists      bool      // a record is stored
}

func rcKey(h Hash) []byte { return append(append([]byte(nil), rcPrefix...), h[:]...) }

func decodeRC(v []byte) (rcEntry, error) {
	if v == nil {
		return rcEntry{}, nil
	}
	if len(v) != 16 {
		return rcEntry{}, fmt.Errorf("blocks: reference count record of %d bytes: %w", len(v), ErrCorrupt)
	}
	return rcEntry{count: binary.BigEndian.Uint64(v), deletableAt: time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))), exists: true}, nil
}

func (e rcEntry) encode() []byte {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 16), e.count)
	return binary.BigEndian.AppendUint64(v, uint64(e.deletableAt.UnixNano()))
}

// rcIn reads h's local reference count in batch b.
func rcIn(b *k2v.Batch, h Hash) (rcEntry, error) {
	v, err := b.GetLocal(rcKey(h))
	if err != nil {
		return rcEntry{}, err
	}
	return decodeRC(v)
}

// refCount reads h's local reference count.
func (m *Manager) refCount(h Hash) (rcEntry, error) {
	v, err := m.db.GetLocal(rcKey(h))
	if err != nil {
		return rcEntry{}, err
	}
	return decodeRC(v)
}

// addRef adjusts h's count by delta in b, and queues the block's resync
// when the count leaves or reaches zero: a newly referenced block may
// have to be fetched, an unreferenced one deleted after GCDelay.
func (m *Manager) addRef(b *k2v.Batch, h Hash, delta int64) error {
	rc, err := rcIn(b, h)
	if err != nil {
		return err
	}
	now := m.now()
	switch {
	case delta > 0:
		if rc.count == 0 {
			if err := m.resync.enqueueIn(b, h, now); err != nil {
				return err
			}
		}
		rc.count += uint64(delta)
	case uint64(-delta) >= rc.count:
		if rc.count > uint64(-delta) {
			m.log.Warn("block reference count went below zero; reset to zero", "block", h)
		}
		rc.count = 0
		rc.deletableAt = now.Add(m.cfg.GCDelay)
		if err := m.resync.enqueueIn(b, h, rc.deletableAt); err != nil {
			return err
		}
	default:
		rc.count -= uint64(-delta)
	}
	return b.SetLocal(rcKey(h), rc.encode())
}

// notePut restarts the grace period of h when nothing references it on
// this node, before the block is written: a block is never stored without
// a record that will collect it. Under h's stripe lock.
func (m *Manager) notePut(h Hash) error {
	return m.db.Update(func(b *k2v.Batch) error {
		rc, err := rcIn(b, h)
		if err != nil || rc.count > 0 {
			return err
		}
		at := m.now().Add(m.cfg.GCDelay)
		if rc.exists && !rc.deletableAt.Before(at.Add(-time.Second)) {
			return nil // renewed within the last second: spare a write
		}
		rc.deletableAt = at
		if err := b.SetLocal(rcKey(h), rc.encode()); err != nil {
			return err
		}
		return m.resync.enqueueIn(b, h, at)
	})
}

// collect deletes h from this node if nothing references it here and its
// grace period is over. It reports whether it deleted it, and otherwise
// when to look again (zero: never, the block is referenced).
func (m *Manager) collect(h Hash) (deleted bool, retry time.Time, err error) {
	mu := m.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	now := m.now()
	err = m.db.Update(func(b *k2v.Batch) error {
		rc, err := rcIn(b, h)
		if err != nil {
			return err
		}
		if rc.count > 0 {
			return nil
		}
		if rc.exists && now.Before(rc.deletableAt) {
			retry = rc.deletableAt
			return nil
		}
		deleted = true
		return b.DeleteLocal(rcKey(h))
	})
	if err != nil || !deleted {
		return false, retry, err
	}
	if err := m.store.Delete(h); err != nil {
		return false, time.Time{}, err
	}
	return true, time.Time{}, nil
}
