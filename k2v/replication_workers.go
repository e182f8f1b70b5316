package k2v

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
)

// ---- the retry queue ----
//
// A write that reached its quorums but failed on some replica is queued
// for that replica, durably: spaceLocal ‖ "rq" ‖ table ‖ 0 ‖ node ‖ store
// key → encoded entry (merged with what was queued already). The retry
// worker sends the queue of every node that is up and removes what was
// delivered. Anti-entropy would repair the replica anyway; the queue makes
// it quick.

func retryPrefix(table string) []byte {
	k := make([]byte, 0, 3+len(table)+1)
	k = append(k, "rq"...)
	k = append(k, table...)
	return append(k, 0)
}

func (rt *Replicated[E]) enqueueRetry(to cluster.NodeID, keys, values [][]byte) {
	prefix := append(retryPrefix(rt.t.Name()), to[:]...)
	err := rt.r.db.Update(func(b *Batch) error {
		for i, k := range keys {
			qk := append(bytes.Clone(prefix), k...)
			old, err := b.GetLocal(qk)
			if err != nil {
				return err
			}
			v := values[i]
			if old != nil {
				a, err1 := rt.t.schema.Decode(old)
				e, err2 := rt.t.schema.Decode(v)
				if err1 == nil && err2 == nil {
					rt.t.schema.Merge(a, e)
					v = rt.t.schema.Encode(nil, a)
				}
			}
			if err := b.SetLocal(qk, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		rt.r.log.Warn("queueing a write for retry failed; anti-entropy will repair the replica", "table", rt.t.Name(), "node", to, "err", err)
	}
	rt.r.poke()
}

func (r *Replicator) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Replicator) retryLoop() {
	t := time.NewTicker(r.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
			// let a burst of failures queue up
			select {
			case <-time.After(100 * time.Millisecond):
			case <-r.ctx.Done():
				return
			}
		}
		for _, tbl := range r.order {
			if _, err := tbl.retryQueued(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Debug("retrying queued writes", "table", tbl.name(), "err", err)
			}
		}
	}
}

// retryQueued sends up to a few thousand queued entries to their nodes.
func (rt *Replicated[E]) retryQueued(ctx context.Context) (int, error) {
	type item struct{ qkey, value []byte }
	byNode := map[cluster.NodeID][]item{}
	prefix := retryPrefix(rt.t.Name())
	n := 0
	err := rt.r.db.scanLocal(prefix, func(key, value []byte) error {
		rest := key[len(prefix):]
		if len(rest) < 32+32 || n >= 4096 {
			return nil
		}
		var id cluster.NodeID
		copy(id[:], rest[:32])
		byNode[id] = append(byNode[id], item{bytes.Clone(key), bytes.Clone(value)})
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	h := rt.r.c.HistoryView()
	var errs []error
	for id, items := range byNode {
		var send, drop []item
		for _, it := range items {
			sk := it.qkey[len(prefix)+32:]
			if slices.Contains(rt.storageSetUnion(h, cluster.Partition(sk[0])), id) {
				send = append(send, it)
			} else {
				drop = append(drop, it) // no longer a replica: nothing to deliver
			}
		}
		if len(send) > 0 && id != rt.r.c.ID() && !rt.r.c.IsUp(id) {
			continue
		}
		for start := 0; start < len(send); start += 256 {
			chunk := send[start:min(start+256, len(send))]
			values := make([][]byte, len(chunk))
			for i, it := range chunk {
				values[i] = it.value
			}
			cctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
			_, err := rt.r.c.Call(cctx, id, &cluster.Request{Endpoint: rt.ep + "merge", Priority: cluster.PrioBackground, Body: encodeValues(values)})
			cancel()
			if err != nil {
				errs = append(errs, err)
				break
			}
			drop = append(drop, chunk...)
		}
		// remove what was delivered, unless a newer write queued more since
		err := rt.r.db.Update(func(b *Batch) error {
			for _, it := range drop {
				cur, err := b.get(localKey(it.qkey))
				if err != nil {
					return err
				}
				if bytes.Equal(cur, it.value) {
					if err := b.del(localKey(it.qkey)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// purgeRetries drops the queued retries of the entries under storeKeys,
// for every node, before their tombstones are collected: a queued copy
// delivered afterwards would bring the deleted state back. (Every replica
// acknowledged the tombstone first, so nothing queued is newer than what
// they hold, except writes made after the tombstone, which anti-entropy
// delivers from the replicas that took them.)
func (rt *Replicated[E]) purgeRetries(storeKeys [][]byte) error {
	want := make(map[string]bool, len(storeKeys))
	for _, k := range storeKeys {
		want[string(k)] = true
	}
	prefix := retryPrefix(rt.t.Name())
	var drop [][]byte
	err := rt.r.db.scanLocal(prefix, func(key, _ []byte) error {
		if rest := key[len(prefix):]; len(rest) > 32 && want[string(rest[32:])] {
			drop = append(drop, bytes.Clone(key))
		}
		return nil
	})
	if err != nil || len(drop) == 0 {
		return err
	}
	return rt.r.db.Update(func(b *Batch) error {
		for _, k := range drop {
			if err := b.del(localKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// QueuedRetries returns the number of writes waiting in the retry queue of
// every table (for tests and metrics).
func (r *Replicator) QueuedRetries() (int, error) {
	n := 0
	err := r.db.scanLocal([]byte("rq"), func(_, _ []byte) error { n++; return nil })
	return n, err
}

// ---- anti-entropy ----

// SyncProgress reports the anti-entropy pass in progress or the last one.
type SyncProgress struct {
	Running     bool
	Done, Total int // partitions × tables
	Version     uint64
	Started     time.Time
	Finished    time.Time
	Err         string
	// Synced is the layout version this node has declared synced.
	Synced uint64
}

type syncer struct {
	r    *Replicator
	kick chan struct{}
	mu   sync.Mutex
	prog SyncProgress
	// waiters are signalled at the end of the next pass to start (the
	// loop takes them when it begins a pass).
	waiters []chan error
}

func newSyncer(r *Replicator) *syncer {
	s := &syncer{r: r, kick: make(chan struct{}, 1)}
	r.c.OnLayoutChange(func(h *layout.History) {
		if s.needed(h) {
			s.poke()
		}
	})
	return s
}

func (s *syncer) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// needed reports whether a new layout version waits for this node to sync:
// every storage node acknowledged it (no write can miss its replica sets
// any more) and this node has not synced it yet.
func (s *syncer) needed(h *layout.History) bool {
	cur := h.Current().Version
	return h.Trackers.Sync[s.r.c.ID()] < cur && h.MinAck() >= cur
}

// FullSync runs a complete anti-entropy pass now (grange repair tables)
// and waits for it, or for ctx.
func (r *Replicator) FullSync(ctx context.Context) error {
	ch := make(chan error, 1)
	r.sync.mu.Lock()
	if err := r.ctx.Err(); err != nil {
		// stopped: the loop answers no more waiters
		r.sync.mu.Unlock()
		return err
	}
	r.sync.waiters = append(r.sync.waiters, ch)
	r.sync.mu.Unlock()
	r.sync.poke()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SyncProgress returns the state of anti-entropy.
func (r *Replicator) SyncProgress() SyncProgress {
	r.sync.mu.Lock()
	defer r.sync.mu.Unlock()
	p := r.sync.prog
	p.Synced = r.c.HistoryView().Trackers.Sync[r.c.ID()]
	return p
}

func (s *syncer) loop() {
	r := s.r
	t := time.NewTicker(r.cfg.SyncInterval)
	defer t.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	if s.needed(r.c.HistoryView()) {
		s.poke()
	}
	for {
		select {
		case <-r.ctx.Done():
			s.finish(r.ctx.Err(), nil)
			return
		case <-t.C:
		case <-s.kick:
		case <-retry.C:
		}
		// This pass answers the FullSync calls made before it starts;
		// later ones wait for the next pass (their poke is pending).
		s.mu.Lock()
		waiters := s.waiters
		s.waiters = nil
		s.mu.Unlock()
		h := r.c.HistoryView()
		err := s.pass(h)
		if r.ctx.Err() != nil {
			s.finish(r.ctx.Err(), waiters)
			return
		}
		if err == nil && h.MinAck() >= h.Current().Version {
			if e := r.c.MarkSynced(h.Current().Version); e != nil {
				err = e
			}
		}
		s.finish(err, waiters)
		if err != nil {
			// The retry timer alone brings the next pass: poking now
			// would spin on an error that persists (a peer not dialled
			// yet), bypassing the delay.
			r.log.Warn("anti-entropy pass incomplete; retrying soon", "err", err)
			retry.Reset(5 * time.Second)
		} else if s.needed(r.c.HistoryView()) {
			s.poke()
		}
	}
}

// finish records the end of a pass and answers waiters, the FullSync calls
// the pass began after; when the replicator stops, every waiter.
func (s *syncer) finish(err error, waiters []chan error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prog.Running = false
	s.prog.Finished = time.Now()
	s.prog.Err = ""
	if err != nil {
		s.prog.Err = err.Error()
	}
	if s.r.ctx.Err() != nil {
		waiters = append(waiters, s.waiters...)
		s.waiters = nil
	}
	for _, w := range waiters {
		w <- err
	}
}

// pass syncs every partition of every table with the other replicas.
func (s *syncer) pass(h *layout.History) error {
	r := s.r
	s.mu.Lock()
	s.prog = SyncProgress{Running: true, Total: len(r.order) * 256, Version: h.Current().Version, Started: time.Now()}
	s.mu.Unlock()
	var errs []error
	for _, tbl := range r.order {
		errs = append(errs, tbl.syncTable(r.ctx, h, func() {
			s.mu.Lock()
			s.prog.Done++
			s.mu.Unlock()
		})...)
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
	}
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more", len(errs)-3))
	}
	return errors.Join(errs...)
}

// syncParallel is how many partitions of a table one pass syncs at once.
const syncParallel = 8

// syncTable syncs every partition of the table. The roots of every
// partition of each other node come in one call, so that partitions that
// agree cost nothing more; the others are compared subtree by subtree,
// several at a time.
func (rt *Replicated[E]) syncTable(ctx context.Context, h *layout.History, progress func()) []error {
	if err := rt.t.FlushMerkle(); err != nil {
		return []error{fmt.Errorf("table %s: %w", rt.t.Name(), err)}
	}
	self := rt.r.c.ID()
	var mu sync.Mutex
	roots := map[cluster.NodeID][]MerkleNode{}
	rootErrs := map[cluster.NodeID]error{}
	var wg sync.WaitGroup
	for _, id := range h.Current().Nodes() {
		if id == self {
			continue
		}
		wg.Go(func() {
			r, err := rt.remoteRoots(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rootErrs[id] = err
			} else {
				roots[id] = r
			}
		})
	}
	wg.Wait()
	var errs []error
	next := make(chan int)
	for range syncParallel {
		wg.Go(func() {
			for p := range next {
				err := rt.syncPartition(ctx, h, cluster.Partition(p), roots, rootErrs)
				mu.Lock()
				if err != nil && ctx.Err() == nil {
					errs = append(errs, fmt.Errorf("table %s partition %d: %w", rt.t.Name(), p, err))
				}
				mu.Unlock()
				progress()
			}
		})
	}
	for p := range 256 {
		if ctx.Err() != nil {
			break
		}
		next <- p
	}
	close(next)
	wg.Wait()
	return errs
}

// remoteRoots returns the Merkle roots of every partition of the table on
// node id.
func (rt *Replicated[E]) remoteRoots(ctx context.Context, id cluster.NodeID) ([]MerkleNode, error) {
	cctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
	defer cancel()
	resp, err := rt.r.c.Call(cctx, id, &cluster.Request{Endpoint: rt.ep + "merkle/roots", Priority: cluster.PrioBackground})
	if err != nil {
		return nil, err
	}
	r := &reader{b: resp.Body}
	out := make([]MerkleNode, 256)
	for i := range out {
		out[i] = r.merkleNode()
	}
	return out, r.done()
}

// syncPartition pushes to every other replica of p the entries it lacks
// or holds in another state. A node that holds entries of p but is no
// longer one of its replicas hands them over to the current replicas and
// then drops them.
func (rt *Replicated[E]) syncPartition(ctx context.Context, h *layout.History, p cluster.Partition, roots map[cluster.NodeID][]MerkleNode, rootErrs map[cluster.NodeID]error) error {
	self := rt.r.c.ID()
	owner := slices.Contains(rt.storageSetUnion(h, p), self)
	// Every node that holds p in an active version pushes what it has to
	// the replicas of the current version: once all have, the current
	// version holds every write acknowledged under the older ones. (The
	// older versions' replicas are not pushed to: they are on their way
	// out, and some may be gone for good.)
	targets := rt.nodesOf(h.Current(), p)
	if !owner && rt.placement == FullCopy {
		return nil
	}
	local, err := rt.t.MerkleNode(p, nil)
	if err != nil || (!owner && local.Count == 0) {
		return err // or nothing to hand over
	}
	var errs []error
	for _, to := range targets {
		if to == self {
			continue
		}
		if err := rootErrs[to]; err != nil {
			errs = append(errs, &cluster.NodeError{Node: to, Err: err})
			continue
		}
		if r := roots[to]; r != nil && r[p] == local {
			continue // the same entries
		}
		err := rt.t.MerkleDiff(ctx, p, remoteMerkle[E]{rt, to}, func(keys [][]byte) error {
			values, err := rt.t.GetRaw(keys)
			if err != nil {
				return err
			}
			present := values[:0]
			for _, v := range values {
				if v != nil {
					present = append(present, v)
				}
			}
			if len(present) == 0 {
				return nil
			}
			cctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
			defer cancel()
			_, err = rt.r.c.Call(cctx, to, &cluster.Request{Endpoint: rt.ep + "merge", Priority: cluster.PrioBackground, Body: encodeValues(present)})
			return err
		})
		if err != nil {
			errs = append(errs, &cluster.NodeError{Node: to, Err: err})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if !owner {
		// handed over: drop the partition
		var after []byte
		for {
			last, n, err := rt.t.DropPartition(p, after, 1000)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			after = last
		}
		rt.r.log.Info("partition handed over and dropped", "table", rt.t.Name(), "partition", p)
	}
	return nil
}

// ---- tombstone collection ----

// collectPartition collects tombstones of one partition held by nodes.
// Step 1 gives every node the tombstones and learns the hash of what each
// then holds; only the tombstones that every node now holds byte for byte
// go on to step 2, which deletes them everywhere. A node whose copy merged
// into something else knows more than this one (anti-entropy will bring
// it here, and the merge gets collected later): deleting the others'
// copies would let its copy come back.
func (rt *Replicated[E]) collectPartition(ctx context.Context, nodes []cluster.NodeID, cs []GCCandidate) error {
	self := rt.r.c.ID()
	values := make([][]byte, len(cs))
	keys := make([][]byte, len(cs))
	for i, c := range cs {
		values[i], keys[i] = c.Value, c.Key
	}
	call := func(targets []cluster.NodeID, ep string, body []byte, local func() ([]byte, error)) ([]cluster.Result[[]byte], error) {
		return cluster.CallQuorum(ctx, rt.r.c, targets, cluster.QuorumOptions{SendAll: true},
			func(ctx context.Context, to cluster.NodeID) ([]byte, error) {
				if to == self {
					return local()
				}
				cctx, cancel := context.WithTimeout(ctx, rt.r.cfg.RequestTimeout)
				defer cancel()
				resp, err := rt.r.c.Call(cctx, to, &cluster.Request{Endpoint: rt.ep + ep, Priority: cluster.PrioBackground, Body: body})
				if err != nil {
					return nil, err
				}
				return resp.Body, nil
			})
	}
	res, err := call(nodes, "gc/merge", encodeValues(values), func() ([]byte, error) { return rt.mergeAndHash(values, keys) })
	if err != nil {
		return err
	}
	var agreed []GCCandidate
	for i, c := range cs {
		ok := true
		for _, r := range res {
			if len(r.Value) != 32*len(cs) || [32]byte(r.Value[32*i:32*i+32]) != c.VHash {
				ok = false
				break
			}
		}
		if ok {
			agreed = append(agreed, c)
		}
	}
	if len(agreed) == 0 {
		return nil
	}
	del := binary.AppendUvarint(nil, uint64(len(agreed)))
	for _, c := range agreed {
		del = appendBytes(del, c.Key)
		del = append(del, c.VHash[:]...)
	}
	// The other nodes delete first; this node last, once they all have:
	// if one fails, this node keeps the tombstone and its candidate, and
	// the collection runs again later.
	var others []cluster.NodeID
	for _, id := range nodes {
		if id != self {
			others = append(others, id)
		}
	}
	if len(others) > 0 {
		if _, err := call(others, "gc/delete", del, nil); err != nil {
			return err
		}
	}
	if !slices.Contains(nodes, self) {
		return nil
	}
	_, err = func() ([]byte, error) {
		keys := make([][]byte, len(agreed))
		for i, c := range agreed {
			keys[i] = c.Key
		}
		if err := rt.purgeRetries(keys); err != nil {
			return nil, err
		}
		for _, c := range agreed {
			if _, err := rt.t.DeleteIfHash(c.Key, c.VHash); err != nil {
				return nil, err
			}
			if err := rt.t.GCDone(c); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}()
	return err
}

// mergeAndHash merges values and returns the hashes of what is then
// stored under keys (32 bytes each; zero for an absent entry).
func (rt *Replicated[E]) mergeAndHash(values, keys [][]byte) ([]byte, error) {
	stored, err := rt.mergeAndGet(values, keys)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 32*len(keys))
	for _, v := range stored {
		var h [32]byte
		if v != nil {
			h = sha256.Sum256(v)
		}
		out = append(out, h[:]...)
	}
	return out, nil
}

// mergeAndGet merges encoded entries into the local table and returns
// what it then holds under each (nil: nothing, collected meanwhile).
// keys are the entries' store keys; nil means to take them from the
// entries.
func (rt *Replicated[E]) mergeAndGet(values, keys [][]byte) ([][]byte, error) {
	if keys == nil {
		keys = make([][]byte, len(values))
		for i, v := range values {
			e, err := rt.t.schema.Decode(v)
			if err != nil {
				return nil, fmt.Errorf("table %s: entry %d: %w", rt.t.Name(), i, err)
			}
			pk, sk := rt.t.schema.Keys(e)
			keys[i] = storeKey(Hash(pk), sk)
		}
	}
	if err := rt.t.MergeRaw(values); err != nil {
		return nil, err
	}
	return rt.t.GetRaw(keys)
}

func (r *Replicator) gcLoop() {
	period := min(r.cfg.GCDelay/4, time.Minute)
	t := time.NewTicker(max(period, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		for _, tbl := range r.order {
			if err := tbl.collectGarbage(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Debug("tombstone collection incomplete", "table", tbl.name(), "err", err)
			}
		}
	}
}

// collectGarbage removes tombstones older than the GC delay, Garage's way:
// first every replica of the partition (in every active version) gets the
// tombstone and must acknowledge it; only then is it deleted everywhere,
// by each node only if its copy is still that very tombstone. A replica
// that is down blocks the collection of its partitions, so that it cannot
// bring the deleted value back.
func (rt *Replicated[E]) collectGarbage(ctx context.Context) error {
	cands, err := rt.t.GCCandidates(time.Now().Add(-rt.r.cfg.GCDelay), 1000)
	if err != nil || len(cands) == 0 {
		return err
	}
	h := rt.r.c.HistoryView()
	byPart := map[cluster.Partition][]GCCandidate{}
	for _, c := range cands {
		p := cluster.Partition(c.Key[0])
		byPart[p] = append(byPart[p], c)
	}
	var errs []error
	for p, cs := range byPart {
		if len(h.Versions) > 1 {
			continue // wait until the layout change is over
		}
		if err := rt.collectPartition(ctx, rt.storageSetUnion(h, p), cs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
