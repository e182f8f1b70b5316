package blocks

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// Resync.
//
// The resync queue is durable, in node-local space:
//
//	blocks/rq/<time ns, big endian> ‖ <hash> → nothing
//
// An entry asks the worker to look at a block at or after that time and
// make this node's copy agree with its reference count and the layout:
//
//   - referenced here, this node should hold it, and it lacks it: fetch it
//     from another node that holds it (a wiped disk, a missed write, a
//     quarantined copy);
//   - held, but this node should no longer hold it (the layout moved its
//     partition): offer it to every node that should and lacks it, then
//     delete it;
//   - held, unreferenced, its grace period over: delete it (collect).
//
// Counts queue their blocks when they leave or reach zero (rc.go); a
// layout change and `grange repair blocks` queue every block this node
// holds or counts. A failure is recorded (blocks/err/<hash>: failures,
// last and next try, message; `grange block list-errors`) and retried
// with exponential backoff, up to ResyncRetryMax.
type resyncer struct {
	m    *Manager
	wake chan struct{}

	full     atomic.Bool  // a full scan is asked for
	scanning atomic.Bool  // a full scan runs
	done     atomic.Int64 // blocks processed since start
	failed   atomic.Int64 // failures since start
	lastErr  atomic.Value // string

	mu        sync.Mutex
	started   time.Time
	busySince time.Time
	versions  [2]uint64 // oldest and newest active layout versions last scanned for
}

const (
	resyncBatch = 64
	// resyncParallel is how many blocks are looked at at once: a block
	// to fetch costs a round trip and an fsync, which overlap.
	resyncParallel = 4
)

func newResyncer(m *Manager) *resyncer {
	return &resyncer{m: m, wake: make(chan struct{}, 1), started: m.now()}
}

func queueKey(at time.Time, h Hash) []byte {
	k := make([]byte, 0, len(queuePrefix)+8+len(h))
	k = append(k, queuePrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(max(at.UnixNano(), 0)))
	return append(k, h[:]...)
}

// enqueueIn queues h for at, in batch b.
func (r *resyncer) enqueueIn(b *k2v.Batch, h Hash, at time.Time) error {
	r.poke()
	return b.SetLocal(queueKey(at, h), nil)
}

// enqueueNow queues h for now.
func (r *resyncer) enqueueNow(h Hash) {
	err := r.m.db.Update(func(b *k2v.Batch) error { return r.enqueueIn(b, h, r.m.now()) })
	if err != nil {
		r.m.log.Error("queueing a block resync failed", "block", h, "err", err)
	}
	r.poke()
}

func (r *resyncer) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// layoutChanged asks for a full scan when the active layout versions
// changed: partitions moved, or an old placement retired. (Tracker
// updates alone change nothing for blocks.)
func (r *resyncer) layoutChanged(h *layout.History) {
	v := [2]uint64{h.Versions[0].Version, h.Current().Version}
	r.mu.Lock()
	same := r.versions == v
	r.versions = v
	r.mu.Unlock()
	if !same {
		r.repairAll()
	}
}

// repairAll asks for a full scan (`grange repair blocks`).
func (r *resyncer) repairAll() {
	r.full.Store(true)
	r.poke()
}

func (r *resyncer) run(ctx context.Context) {
	r.full.Store(true) // blocks written while this node was down
	for ctx.Err() == nil {
		if r.full.Swap(false) {
			r.scanning.Store(true)
			if err := r.scanAll(ctx); err != nil && ctx.Err() == nil {
				r.m.log.Error("queueing every block for resync failed", "err", err)
				r.full.Store(true)
			}
			r.scanning.Store(false)
		}
		next, err := r.step(ctx)
		if err != nil && ctx.Err() == nil {
			r.m.log.Error("resync queue", "err", err)
			next = r.m.now().Add(time.Second)
		}
		if next.IsZero() {
			continue // more due now
		}
		wait := min(max(next.Sub(r.m.now()), 10*time.Millisecond), 10*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// step processes the entries that are due. It returns the zero time when
// more may be due at once, else when the next entry is.
func (r *resyncer) step(ctx context.Context) (time.Time, error) {
	now := r.m.now()
	type item struct {
		key []byte
		h   Hash
	}
	var due []item
	var next time.Time
	err := r.m.db.ScanLocal(queuePrefix, prefixEnd(queuePrefix), func(k, _ []byte) (bool, error) {
		if len(k) != len(queuePrefix)+8+len(Hash{}) {
			due = append(due, item{key: bytes.Clone(k)}) // malformed: drop it
			return true, nil
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(k[len(queuePrefix):])))
		if at.After(now) {
			next = at
			return false, nil
		}
		it := item{key: bytes.Clone(k)}
		copy(it.h[:], k[len(queuePrefix)+8:])
		due = append(due, it)
		return len(due) < resyncBatch, nil
	})
	if err != nil {
		return time.Time{}, err
	}
	if len(due) == 0 {
		if next.IsZero() {
			next = now.Add(10 * time.Second)
		}
		return next, nil
	}
	r.mu.Lock()
	r.busySince = now
	r.mu.Unlock()
	retries := make([]time.Time, len(due))
	sem := make(chan struct{}, resyncParallel)
	var wg sync.WaitGroup
	seen := make(map[Hash]bool, len(due))
	for i, it := range due {
		if it.h.IsZero() || seen[it.h] {
			continue // malformed, or queued twice: looked at once
		}
		seen[it.h] = true
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			retry, err := r.process(ctx, it.h)
			switch {
			case err == nil:
				r.clearError(it.h)
			case ctx.Err() == nil:
				retry = r.recordError(it.h, err)
			}
			retries[i] = retry
			r.done.Add(1)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return time.Time{}, ctx.Err() // the entries stay queued
	}
	err = r.m.db.Update(func(b *k2v.Batch) error {
		for i, it := range due {
			if err := b.DeleteLocal(it.key); err != nil {
				return err
			}
			if !retries[i].IsZero() {
				if err := b.SetLocal(queueKey(retries[i], it.h), nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, err
	}
	r.mu.Lock()
	r.busySince = time.Time{}
	r.mu.Unlock()
	return time.Time{}, nil
}

// process makes this node's copy of h agree with its count and the
// layout. It returns when to look at h again (zero: no need).
func (r *resyncer) process(ctx context.Context, h Hash) (time.Time, error) {
	m := r.m
	has, err := m.store.Has(h)
	if err != nil {
		return time.Time{}, err
	}
	rc, err := m.refCount(h)
	if err != nil {
		return time.Time{}, err
	}
	storage := m.isStorageNode(h)
	switch {
	case storage && rc.count > 0 && !has:
		return time.Time{}, r.fetch(ctx, h)
	case has && !storage:
		return time.Time{}, r.handOver(ctx, h)
	case rc.count == 0 && (has || rc.exists):
		deleted, retry, err := m.collect(h)
		if deleted && has {
			m.log.Debug("unreferenced block deleted", "block", h)
		}
		return retry, err
	}
	return time.Time{}, nil
}

// fetch copies h from another node that holds it, closest first.
func (r *resyncer) fetch(ctx context.Context, h Hash) error {
	m := r.m
	var errs []error
	for _, id := range m.c.Preferred(m.storageNodes(h)) {
		if id == m.c.ID() {
			continue
		}
		stored, _, err := m.fetchRemote(ctx, nil, id, h, cluster.PrioBackground)
		if err != nil {
			errs = append(errs, &cluster.NodeError{Node: id, Err: err})
			continue
		}
		return m.storeLocal(h, stored)
	}
	if len(errs) == 0 {
		return errors.New("no other node should hold this block")
	}
	return fmt.Errorf("no node gave a sound copy: %w", errors.Join(errs...))
}

// handOver gives h to the nodes that should hold it and lack it, then
// deletes this node's copy once every one of them has it.
func (r *resyncer) handOver(ctx context.Context, h Hash) error {
	m := r.m
	var body []byte // h ‖ stored form, read at the first node that needs it
	for _, id := range m.storageNodes(h) {
		st, err := m.askNeed(ctx, id, h)
		if err != nil {
			return &cluster.NodeError{Node: id, Err: err}
		}
		if st != statusNeed {
			continue // it has it, or has no reference to it
		}
		if body == nil {
			stored, err := m.store.Get(h)
			if err != nil {
				return err
			}
			if _, err := m.decode(nil, h, stored); err != nil {
				m.corrupt(h, err)
				return err
			}
			body = append(append(make([]byte, 0, len(h)+len(stored)), h[:]...), stored...)
		}
		if err := m.putRemote(ctx, id, body, cluster.PrioBackground); err != nil {
			return &cluster.NodeError{Node: id, Err: err}
		}
	}
	mu := m.stripe(h)
	mu.Lock()
	defer mu.Unlock()
	if m.isStorageNode(h) { // the layout changed back meanwhile
		return nil
	}
	return m.store.Delete(h)
}

// scanAll queues every block this node holds or counts that needs work
// from process: held here but no longer to be (hand over), held with no
// reference (collect), counted here but missing (fetch). The others, the
// bulk of a store, are checked here and not queued: a queue entry per
// block at every start would write as many pebble entries as the node
// holds blocks.
func (r *resyncer) scanAll(ctx context.Context) error {
	now := r.m.now()
	var pending []Hash
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := r.m.db.Update(func(b *k2v.Batch) error {
			for _, h := range pending {
				if err := b.SetLocal(queueKey(now, h), nil); err != nil {
					return err
				}
			}
			return nil
		})
		pending = pending[:0]
		r.poke()
		return err
	}
	err := r.m.store.Walk(ctx, func(h Hash, _ int64) error {
		if r.m.isStorageNode(h) {
			rc, err := r.m.refCount(h)
			if err != nil {
				return err
			}
			if rc.count > 0 {
				return nil // held, referenced, where it belongs
			}
		}
		pending = append(pending, h)
		if len(pending) >= 1024 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	// Blocks counted here: ScanLocal's fn must not call the DB, and its
	// iterator should not stay open for a whole large table, so the scan
	// stops every 4096 entries or 1024 blocks to queue, and resumes.
	from := rcPrefix
	var last []byte
	for ctx.Err() == nil {
		visited := 0
		err := r.m.db.ScanLocal(from, prefixEnd(rcPrefix), func(k, v []byte) (bool, error) {
			visited++
			last = append(last[:0], k...)
			more := visited < 4096
			rc, err := decodeRC(v)
			if len(k) != len(rcPrefix)+len(Hash{}) || err != nil || rc.count == 0 {
				return more, nil // counted at zero: already queued for its deletion time
			}
			var h Hash
			copy(h[:], k[len(rcPrefix):])
			if !r.m.isStorageNode(h) {
				return more, nil // queued by the walk of the store if held
			}
			if has, err := r.m.store.Has(h); err != nil || has {
				return more && err == nil, err // held: nothing to fetch
			}
			pending = append(pending, h)
			return more && len(pending) < 1024, nil
		})
		if err != nil {
			return err
		}
		if visited < 4096 && len(pending) < 1024 {
			break // the end of the table
		}
		from = append(bytes.Clone(last), 0)
		if err := flush(); err != nil {
			return err
		}
	}
	return flush()
}

// ---- errors ----

// BlockError is a block whose resync failed: `grange block list-errors`.
type BlockError struct {
	Hash     Hash      `json:"hash"`
	Failures int       `json:"failures"`
	LastTry  time.Time `json:"lastTry"`
	NextTry  time.Time `json:"nextTry"`
	Message  string    `json:"message"`
}

func errKey(h Hash) []byte { return append(append([]byte(nil), errPrefix...), h[:]...) }

func encodeBlockError(e BlockError) []byte {
	v := binary.BigEndian.AppendUint32(nil, uint32(e.Failures))
	v = binary.BigEndian.AppendUint64(v, uint64(e.LastTry.UnixNano()))
	v = binary.BigEndian.AppendUint64(v, uint64(e.NextTry.UnixNano()))
	return append(v, e.Message...)
}

func decodeBlockError(h Hash, v []byte) (BlockError, error) {
	if len(v) < 20 {
		return BlockError{}, fmt.Errorf("blocks: error record of %d bytes: %w", len(v), ErrCorrupt)
	}
	return BlockError{
		Hash:     h,
		Failures: int(binary.BigEndian.Uint32(v)),
		LastTry:  time.Unix(0, int64(binary.BigEndian.Uint64(v[4:]))),
		NextTry:  time.Unix(0, int64(binary.BigEndian.Uint64(v[12:]))),
		Message:  string(v[20:]),
	}, nil
}

// recordError notes a failed resync of h and returns when to retry:
// 10 s, doubling with each failure, at most ResyncRetryMax.
func (r *resyncer) recordError(h Hash, cause error) time.Time {
	m := r.m
	r.failed.Add(1)
	r.lastErr.Store(cause.Error())
	now := m.now()
	var next time.Time
	err := m.db.Update(func(b *k2v.Batch) error {
		e := BlockError{Hash: h}
		if v, err := b.GetLocal(errKey(h)); err == nil && v != nil {
			if old, err := decodeBlockError(h, v); err == nil {
				e = old
			}
		}
		e.Failures++
		e.LastTry = now
		backoff := 10 * time.Second << min(e.Failures-1, 20)
		e.NextTry = now.Add(min(backoff, m.cfg.ResyncRetryMax))
		e.Message = cause.Error()
		next = e.NextTry
		return b.SetLocal(errKey(h), encodeBlockError(e))
	})
	if err != nil {
		m.log.Error("recording a block resync error failed", "block", h, "err", err)
		next = now.Add(time.Minute)
	}
	m.log.Warn("block resync failed; will retry", "block", h, "retry_at", next, "err", cause)
	return next
}

// clearError forgets h's resync error, if any.
func (r *resyncer) clearError(h Hash) {
	v, err := r.m.db.GetLocal(errKey(h))
	if err != nil || v == nil {
		return
	}
	if err := r.m.db.Update(func(b *k2v.Batch) error { return b.DeleteLocal(errKey(h)) }); err != nil {
		r.m.log.Error("clearing a block resync error failed", "block", h, "err", err)
	}
}

// Errors lists the blocks whose resync failed, most failures first is
// left to the caller: in hash order.
func (m *Manager) Errors() ([]BlockError, error) {
	var out []BlockError
	err := m.db.ScanLocal(errPrefix, prefixEnd(errPrefix), func(k, v []byte) (bool, error) {
		if len(k) != len(errPrefix)+len(Hash{}) {
			return true, nil
		}
		var h Hash
		copy(h[:], k[len(errPrefix):])
		e, err := decodeBlockError(h, v)
		if err != nil {
			return true, nil
		}
		out = append(out, e)
		return true, nil
	})
	return out, err
}

// RepairBlocks queues every block this node holds or counts for resync:
// `grange repair blocks`.
func (m *Manager) RepairBlocks() { m.resync.repairAll() }

// queueLen counts the entries of the resync queue.
func (m *Manager) queueLen() (int64, error) {
	var n int64
	err := m.db.ScanLocal(queuePrefix, prefixEnd(queuePrefix), func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// prefixEnd returns the smallest key after every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
