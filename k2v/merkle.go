package k2v

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/grangeio/grange/cluster"
)

// Merkle trees let two replicas of a partition find the entries on which
// they differ without exchanging them all (deuxfleurs-org/garage:
// src/table/merkle.rs). Each table keeps one tree per partition in the
// node-local space, derived from its entries:
//
//   - An entry is summarised by khash = sha256(storeKey) and vhash =
//     sha256(encoded value); storeKey is hash(partition key) ‖ sort key,
//     the key after the table prefix.
//   - The tree has a fixed depth. Level 0 is the partition's root, level 1
//     has a node per khash[0], level 2 a bucket per khash[0:2]. A node
//     holds the sum modulo 2^256 of sha256(khash ‖ vhash) over the entries
//     below it, and their count. Because the hash is additive, a node is
//     updated from the old and new hash of one entry alone, without reading
//     its siblings, and the tree depends only on the set of entries, not on
//     the order they were written in. Buckets index their leaves, so a
//     bucket's entries are read as one contiguous range.
//   - Table.write puts the new vhash in a todo queue in the same batch as
//     the entry; the updater (RunMerkle, FlushMerkle) moves queued entries
//     into the tree in batches. Tree update and removal from the queue are
//     one atomic batch, so a crash loses nothing: the next run resumes with
//     what is still queued. Reads of the tree lag the entries by what is
//     queued; anti-entropy calls FlushMerkle before comparing.
//
// Additive hashes are not collision resistant against someone who chooses
// the entries (Wagner's generalised birthday attack), but a collision here
// only hides a difference from anti-entropy; it is no integrity check.
// Replicas must encode equal entries identically, or their vhashes differ
// for ever (every Schema.Encode here is deterministic).
//
// Local key layouts (after spaceLocal; name is the table's name):
//
//	"mq" ‖ name ‖ 0 ‖ storeKey            → vhash (32), or empty: entry removed
//	"mk" ‖ name ‖ 0 ‖ p ‖ level ‖ prefix  → sum (32) ‖ uvarint count; absent: empty
//	"ml" ‖ name ‖ 0 ‖ p ‖ khash           → vhash (32) ‖ storeKey
//	"mg" ‖ name ‖ 0 ‖ time ‖ storeKey     → vhash (32)   (GC queue, gc.go)
//
// where p is the partition (storeKey[0]), level is len(prefix) and prefix
// the first 0, 1 or 2 bytes of khash. The level byte keeps the children of
// a node contiguous instead of interleaved with its grandchildren.
const (
	merkleTodoSpace = "mq"
	merkleNodeSpace = "mk"
	merkleLeafSpace = "ml"
	gcTodoSpace     = "mg"
)

const (
	// merkleBatch is how many queued updates one DB.Update applies: large
	// enough to share the writes of the upper nodes, small enough not to
	// hold the apply lock long.
	merkleBatch = 1000
	// merkleDelay lets writes accumulate after a wake-up, so that a burst
	// is applied in full batches rather than one entry at a time.
	merkleDelay = 10 * time.Millisecond
	// merkleRetryMax bounds the wait between retries after a failure.
	merkleRetryMax = time.Minute
	// diffChunk is how many store keys MerkleDiff passes to found at once.
	diffChunk = 256
)

// merkleDepth is the level of the buckets, whose children are leaves.
const merkleDepth = 2

// MerkleNode summarises the entries below a node of a partition's tree.
// The zero value is an empty node.
type MerkleNode struct {
	// Sum is the sum modulo 2^256 (big-endian) of sha256(khash ‖ vhash)
	// over the entries.
	Sum   [32]byte
	Count uint64
}

// MerkleChild is a non-empty child of a node: the next byte of khash.
type MerkleChild struct {
	Byte byte
	Node MerkleNode
}

// MerkleLeaf is one entry as the tree knows it.
type MerkleLeaf struct {
	KHash, VHash [32]byte
	// Key is the entry's store key (hash ‖ sort key), as GetRaw takes it.
	Key []byte
}

// MerkleRemote is the tree of another replica of the same table, as
// MerkleDiff reads it (over RPC, from the remote's MerkleNode,
// MerkleChildren and MerkleLeaves).
type MerkleRemote interface {
	Node(ctx context.Context, p cluster.Partition, prefix []byte) (MerkleNode, error)
	Children(ctx context.Context, p cluster.Partition, prefix []byte) ([]MerkleChild, error)
	Leaves(ctx context.Context, p cluster.Partition, prefix []byte) ([]MerkleLeaf, error)
}

func localPrefix(space, name string) []byte {
	p := make([]byte, 0, len(space)+len(name)+1)
	p = append(p, space...)
	p = append(p, name...)
	return append(p, 0)
}

func (t *Table[E]) nodeKey(p byte, prefix []byte) []byte {
	k := make([]byte, 0, len(t.mkPrefix)+2+len(prefix))
	k = append(k, t.mkPrefix...)
	k = append(k, p, byte(len(prefix)))
	return append(k, prefix...)
}

func (t *Table[E]) leafKey(p byte, khash []byte) []byte {
	k := make([]byte, 0, len(t.mlPrefix)+1+len(khash))
	k = append(k, t.mlPrefix...)
	k = append(k, p)
	return append(k, khash...)
}

// queueMerkle records in b that the entry under storeKey now has vhash
// (nil: it was removed). Only merkleStep reads the queue, in batches of
// its own, so the write skips b's overlay.
func (t *Table[E]) queueMerkle(b *Batch, storeKey, vhash []byte) error {
	k := make([]byte, 0, len(t.mqPrefix)+len(storeKey))
	k = append(append(k, t.mqPrefix...), storeKey...)
	if vhash == nil {
		vhash = []byte{} // empty, not absent
	}
	if err := b.setLocalBlind(k, vhash); err != nil {
		return fmt.Errorf("table %s: %w", t.name, err)
	}
	return nil
}

// pokeMerkle wakes the updater; it runs after commits that queued work.
func (t *Table[E]) pokeMerkle() {
	select {
	case t.merkleWake <- struct{}{}:
	default:
	}
}

// RunMerkle applies queued updates to the Merkle trees until ctx ends or
// the DB is closed, waking up after commits (several commits close
// together are applied in one batch). It blocks: the owner runs it
// in a goroutine, cancels ctx and waits for it to return. Run at most one
// per table. Failures are logged and retried with backoff.
func (t *Table[E]) RunMerkle(ctx context.Context) {
	retry := merkleDelay
	for {
		if ctx.Err() != nil {
			return
		}
		err := t.FlushMerkle()
		switch {
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			t.db.log.Warn("merkle update failed; will retry", "table", t.name, "err", err)
			retry = min(2*retry, merkleRetryMax)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retry):
			}
			continue
		}
		retry = merkleDelay
		select {
		case <-ctx.Done():
			return
		case <-t.db.closedC:
			return
		case <-t.merkleWake:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(merkleDelay):
		}
	}
}

// StartMerkle runs RunMerkle in a new goroutine; the returned channel is
// closed when it has returned (after ctx ends or the DB is closed).
func (t *Table[E]) StartMerkle(ctx context.Context) (done <-chan struct{}) {
	c := make(chan struct{})
	go func() {
		defer close(c)
		t.RunMerkle(ctx)
	}()
	return c
}

// FlushMerkle applies every update queued before it was called (and
// possibly later ones) to the trees. It may run concurrently with
// RunMerkle and other flushes.
func (t *Table[E]) FlushMerkle() error {
	// One pass in key order: entries queued before the call stay in the
	// queue until applied, so the pass meets each of them unless another
	// updater applied it first.
	var after []byte
	for {
		last, n, err := t.merkleStep(after, merkleBatch)
		if err != nil || n < merkleBatch {
			return err
		}
		after = last
	}
}

// MerklePending returns the number of queued updates. It scans the queue.
func (t *Table[E]) MerklePending() (int, error) {
	n := 0
	err := t.db.scanLocalRange(t.mqPrefix, prefixEnd(t.mqPrefix), func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// merkleStep applies up to max queued updates whose todo keys follow after
// (nil: from the start) in one DB.Update. It returns the last todo key it
// saw and how many it saw; fewer than max means it reached the end.
func (t *Table[E]) merkleStep(after []byte, max int) (last []byte, n int, err error) {
	// merkleMu makes this step the only writer of the tree, so the leaves
	// and nodes can be read and the new ones computed before the apply
	// lock is taken: writers then wait only for the check of the queue and
	// the writes, not for the reads of the tree.
	t.merkleMu.Lock()
	defer t.merkleMu.Unlock()
	lower := t.mqPrefix
	if after != nil {
		lower = append(bytes.Clone(after), 0)
	}
	var todos []todoEntry
	err = t.db.scanLocalRange(lower, prefixEnd(t.mqPrefix), func(k, v []byte) (bool, error) {
		todos = append(todos, todoEntry{bytes.Clone(k), bytes.Clone(v)})
		return len(todos) < max, nil
	})
	if err != nil || len(todos) == 0 {
		return nil, 0, err
	}
	writes, err := t.treeWrites(todos)
	if err != nil {
		return nil, 0, fmt.Errorf("table %s: merkle update: %w", t.name, err)
	}
	err = t.db.Update(func(b *Batch) error {
		for _, td := range todos {
			// A write since the scan re-queued the entry with its new
			// hash: the tree now holds the one read, and the next step
			// applies the new one.
			cur, err := b.GetLocal(td.key)
			if err != nil {
				return err
			}
			if cur != nil && bytes.Equal(cur, td.value) {
				if err := b.setLocalBlind(td.key, nil); err != nil {
					return err
				}
			}
		}
		for k, v := range writes {
			if err := b.setLocalBlind([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("table %s: merkle update: %w", t.name, err)
	}
	return todos[len(todos)-1].key, len(todos), nil
}

type todoEntry struct{ key, value []byte }

// nodeDelta accumulates the changes of one node within a step, so that
// each node is read and written once per step.
type nodeDelta struct {
	sum   [32]byte
	count int64
}

// treeWrites computes the leaf and node records that apply todos to the
// tree: key → new value, nil to delete. The caller holds merkleMu.
func (t *Table[E]) treeWrites(todos []todoEntry) (map[string][]byte, error) {
	if err := t.db.enter(); err != nil {
		return nil, err
	}
	defer t.db.leave()
	get := func(key []byte) ([]byte, error) { return getCopy(t.db.pdb, localKey(key)) }
	writes := map[string][]byte{}
	deltas := map[string]*nodeDelta{}
	for _, td := range todos {
		storeKey := td.key[len(t.mqPrefix):]
		if len(storeKey) < 32 {
			continue // not a store key: the todo entry just goes
		}
		var newV *[32]byte
		switch len(td.value) {
		case 0: // removed
		case 32:
			newV = (*[32]byte)(td.value)
		default:
			// A damaged todo value: the stored entry is the truth.
			enc, err := getCopy(t.db.pdb, append(bytes.Clone(t.prefix), storeKey...))
			if err != nil {
				return nil, err
			}
			if enc != nil {
				h := sha256.Sum256(enc)
				newV = &h
			}
		}
		khash := sha256.Sum256(storeKey)
		p := storeKey[0]
		lk := t.leafKey(p, khash[:])
		old, err := get(lk)
		if err != nil {
			return nil, err
		}
		var oldV *[32]byte
		if old != nil {
			if len(old) < 32 {
				return nil, fmt.Errorf("%w: merkle leaf of %x", ErrCorrupt, storeKey)
			}
			oldV = (*[32]byte)(old[:32])
		}
		if (oldV == nil && newV == nil) || (oldV != nil && newV != nil && *oldV == *newV) {
			continue
		}
		var d nodeDelta
		if oldV != nil {
			d.sum = neg256(merkleTerm(&khash, oldV))
			d.count--
		}
		if newV != nil {
			d.sum = add256(d.sum, merkleTerm(&khash, newV))
			d.count++
			leaf := make([]byte, 0, 32+len(storeKey))
			writes[string(lk)] = append(append(leaf, newV[:]...), storeKey...)
		} else {
			writes[string(lk)] = nil
		}
		for level := 0; level <= merkleDepth; level++ {
			k := string(t.nodeKey(p, khash[:level]))
			nd := deltas[k]
			if nd == nil {
				nd = &nodeDelta{}
				deltas[k] = nd
			}
			nd.sum = add256(nd.sum, d.sum)
			nd.count += d.count
		}
	}
	for k, d := range deltas {
		if d.count == 0 && d.sum == ([32]byte{}) {
			continue
		}
		v, err := get([]byte(k))
		if err != nil {
			return nil, err
		}
		n, err := decodeMerkleNode(v)
		if err != nil {
			return nil, err
		}
		count := int64(n.Count) + d.count
		switch {
		case count < 0:
			return nil, fmt.Errorf("%w: merkle node %x: count below zero", ErrCorrupt, k)
		case count == 0:
			// absent means empty: no record for an empty node
			writes[k] = nil
		default:
			writes[k] = appendMerkleNode(nil, MerkleNode{Sum: add256(n.Sum, d.sum), Count: uint64(count)})
		}
	}
	return writes, nil
}

// setLocalBlind writes a node-local value (nil: deletes it) without
// recording it in the batch's overlay: reads through b do not see it. For
// keys no read in the same batch looks at (the queues and the tree),
// where the overlay's copies would only cost.
func (b *Batch) setLocalBlind(key, value []byte) error {
	k := localKey(key)
	if value == nil {
		return b.pb.Delete(k, nil)
	}
	return b.pb.Set(k, value, nil)
}

func appendMerkleNode(dst []byte, n MerkleNode) []byte {
	return binary.AppendUvarint(append(dst, n.Sum[:]...), n.Count)
}

// decodeMerkleNode parses a stored node; nil is the empty node.
func decodeMerkleNode(v []byte) (MerkleNode, error) {
	var n MerkleNode
	if v == nil {
		return n, nil
	}
	if len(v) < 33 {
		return n, fmt.Errorf("%w: merkle node too short", ErrCorrupt)
	}
	copy(n.Sum[:], v)
	c, l := binary.Uvarint(v[32:])
	if l <= 0 || 32+l != len(v) {
		return n, fmt.Errorf("%w: merkle node count", ErrCorrupt)
	}
	n.Count = c
	return n, nil
}

// merkleTerm is what one entry adds to the sums of its ancestors.
func merkleTerm(khash, vhash *[32]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], khash[:])
	copy(buf[32:], vhash[:])
	return sha256.Sum256(buf[:])
}

// add256 returns a + b modulo 2^256, both big-endian.
func add256(a, b [32]byte) [32]byte {
	var out [32]byte
	var carry uint64
	for i := 24; i >= 0; i -= 8 {
		var s uint64
		s, carry = bits.Add64(binary.BigEndian.Uint64(a[i:]), binary.BigEndian.Uint64(b[i:]), carry)
		binary.BigEndian.PutUint64(out[i:], s)
	}
	return out
}

// neg256 returns -a modulo 2^256.
func neg256(a [32]byte) [32]byte {
	for i := range a {
		a[i] = ^a[i]
	}
	var one [32]byte
	one[31] = 1
	return add256(a, one)
}

func checkPrefix(prefix []byte, minLen, maxLen int) error {
	if len(prefix) < minLen || len(prefix) > maxLen {
		return fmt.Errorf("k2v: merkle prefix of %d bytes, want %d to %d", len(prefix), minLen, maxLen)
	}
	return nil
}

// MerkleNode returns the node of partition p's tree at prefix (0 to 2
// bytes of khash; empty: the root). It reflects the updates applied so far
// (see FlushMerkle).
func (t *Table[E]) MerkleNode(p cluster.Partition, prefix []byte) (MerkleNode, error) {
	if err := checkPrefix(prefix, 0, merkleDepth); err != nil {
		return MerkleNode{}, err
	}
	v, err := t.db.GetLocal(t.nodeKey(byte(p), prefix))
	if err != nil {
		return MerkleNode{}, err
	}
	return decodeMerkleNode(v)
}

// MerkleChildren returns the non-empty children of the node at prefix (0
// or 1 byte), in order of Byte.
func (t *Table[E]) MerkleChildren(p cluster.Partition, prefix []byte) ([]MerkleChild, error) {
	if err := checkPrefix(prefix, 0, merkleDepth-1); err != nil {
		return nil, err
	}
	base := t.nodeKey(byte(p), append(bytes.Clone(prefix), 0))
	base = base[:len(base)-1] // ‖ p ‖ level+1 ‖ prefix
	var out []MerkleChild
	err := t.db.scanLocalRange(base, prefixEnd(base), func(k, v []byte) (bool, error) {
		if len(k) != len(base)+1 {
			return false, fmt.Errorf("%w: merkle node key %x", ErrCorrupt, k)
		}
		n, err := decodeMerkleNode(v)
		if err != nil {
			return false, err
		}
		out = append(out, MerkleChild{Byte: k[len(base)], Node: n})
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	return out, nil
}

// MerkleLeaves returns the entries of the bucket at prefix (2 bytes), in
// khash order. The slices belong to the caller.
func (t *Table[E]) MerkleLeaves(p cluster.Partition, prefix []byte) ([]MerkleLeaf, error) {
	if err := checkPrefix(prefix, merkleDepth, merkleDepth); err != nil {
		return nil, err
	}
	base := t.leafKey(byte(p), prefix)
	var out []MerkleLeaf
	err := t.db.scanLocalRange(base, prefixEnd(base), func(k, v []byte) (bool, error) {
		l, err := decodeMerkleLeaf(k[len(base)-len(prefix):], v)
		if err != nil {
			return false, err
		}
		out = append(out, l)
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.name, err)
	}
	return out, nil
}

func decodeMerkleLeaf(khash, v []byte) (MerkleLeaf, error) {
	var l MerkleLeaf
	if len(khash) != 32 || len(v) < 32+32 {
		return l, fmt.Errorf("%w: merkle leaf %x", ErrCorrupt, khash)
	}
	copy(l.KHash[:], khash)
	copy(l.VHash[:], v)
	l.Key = bytes.Clone(v[32:])
	return l, nil
}

// MerkleDiff compares partition p's tree with remote's and calls found
// with the store keys of the local entries the remote lacks or holds in
// another version, in chunks of at most diffChunk keys. It descends only
// into the nodes that differ; when the roots are equal it makes a single
// remote call. The caller then pushes those entries (GetRaw here,
// MergeRaw there); entries only the remote holds are found by the
// remote's own diff. Call FlushMerkle on both sides first: queued updates
// show up as differences. Entries changing during the diff may be missed
// or reported spuriously; anti-entropy repeats.
func (t *Table[E]) MerkleDiff(ctx context.Context, p cluster.Partition, remote MerkleRemote, found func(storeKeys [][]byte) error) error {
	local, err := t.MerkleNode(p, nil)
	if err != nil {
		return err
	}
	rem, err := remote.Node(ctx, p, nil)
	if err != nil {
		return fmt.Errorf("merkle diff %s partition %d: remote root: %w", t.name, p, err)
	}
	if local == rem || local.Count == 0 {
		return nil
	}
	d := &merkleDiff{p: p, remote: remote, found: found}
	if rem.Count == 0 {
		// the remote holds nothing of p (a new or wiped replica): every
		// local entry, without walking its empty tree
		err = diffAllLocal(ctx, t, d, nil)
	} else {
		err = diffChildren(ctx, t, d, nil)
	}
	if err != nil {
		return fmt.Errorf("merkle diff %s partition %d: %w", t.name, p, err)
	}
	return d.flush()
}

type merkleDiff struct {
	p      cluster.Partition
	remote MerkleRemote
	found  func([][]byte) error
	chunk  [][]byte
}

func (d *merkleDiff) add(key []byte) error {
	d.chunk = append(d.chunk, key)
	if len(d.chunk) >= diffChunk {
		return d.flush()
	}
	return nil
}

func (d *merkleDiff) flush() error {
	if len(d.chunk) == 0 {
		return nil
	}
	c := d.chunk
	d.chunk = nil
	return d.found(c)
}

func diffChildren[E any](ctx context.Context, t *Table[E], d *merkleDiff, prefix []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	locals, err := t.MerkleChildren(d.p, prefix)
	if err != nil || len(locals) == 0 {
		return err
	}
	remotes, err := d.remote.Children(ctx, d.p, prefix)
	if err != nil {
		return fmt.Errorf("remote children of %x: %w", prefix, err)
	}
	rm := make(map[byte]MerkleNode, len(remotes))
	for _, c := range remotes {
		rm[c.Byte] = c.Node
	}
	for _, c := range locals {
		n, ok := rm[c.Byte]
		if ok && n == c.Node {
			continue
		}
		child := append(bytes.Clone(prefix), c.Byte)
		if !ok {
			// an absent child is empty: the remote lacks every local
			// entry below it, no need to ask it for the subtree
			err = diffAllLocal(ctx, t, d, child)
		} else if len(child) == merkleDepth {
			err = diffLeaves(ctx, t, d, child)
		} else {
			err = diffChildren(ctx, t, d, child)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// diffAllLocal reports every local entry whose khash starts with prefix
// (0 to 2 bytes), reading the local leaves in pages of diffChunk: found
// may call the DB, so it is not called during a scan.
func diffAllLocal[E any](ctx context.Context, t *Table[E], d *merkleDiff, prefix []byte) error {
	base := t.leafKey(byte(d.p), prefix)
	lower := base
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var keys [][]byte
		var last []byte
		err := t.db.scanLocalRange(lower, prefixEnd(base), func(k, v []byte) (bool, error) {
			if len(v) < 32 {
				return false, fmt.Errorf("%w: merkle leaf %x", ErrCorrupt, k)
			}
			keys = append(keys, bytes.Clone(v[32:]))
			last = bytes.Clone(k)
			return len(keys) < diffChunk, nil
		})
		if err != nil {
			return fmt.Errorf("table %s: %w", t.name, err)
		}
		for _, k := range keys {
			if err := d.add(k); err != nil {
				return err
			}
		}
		if len(keys) < diffChunk {
			return nil
		}
		lower = append(bytes.Clone(last), 0)
	}
}

func diffLeaves[E any](ctx context.Context, t *Table[E], d *merkleDiff, prefix []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	locals, err := t.MerkleLeaves(d.p, prefix)
	if err != nil || len(locals) == 0 {
		return err
	}
	remotes, err := d.remote.Leaves(ctx, d.p, prefix)
	if err != nil {
		return fmt.Errorf("remote leaves of %x: %w", prefix, err)
	}
	rm := make(map[[32]byte][32]byte, len(remotes))
	for _, l := range remotes {
		rm[l.KHash] = l.VHash
	}
	for _, l := range locals {
		if v, ok := rm[l.KHash]; ok && v == l.VHash {
			continue
		}
		if err := d.add(l.Key); err != nil {
			return err
		}
	}
	return nil
}

// GetRaw returns the encoded entries under storeKeys (nil for absent
// ones), as MerkleLeaf.Key and ScanPartition give them. The slices belong
// to the caller.
func (t *Table[E]) GetRaw(storeKeys [][]byte) ([][]byte, error) {
	if err := t.db.enter(); err != nil {
		return nil, err
	}
	defer t.db.leave()
	out := make([][]byte, len(storeKeys))
	key := bytes.Clone(t.prefix)
	for i, sk := range storeKeys {
		key = append(key[:len(t.prefix)], sk...)
		v, err := getCopy(t.db.pdb, key)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		out[i] = v
	}
	return out, nil
}

// MergeRaw decodes encoded entries (from another replica's GetRaw) and
// merges them in one batch; nil values are skipped. If one does not decode,
// it returns an error wrapping ErrCorrupt and writes nothing.
func (t *Table[E]) MergeRaw(values [][]byte) error {
	entries := make([]*E, 0, len(values))
	for i, v := range values {
		if v == nil {
			continue
		}
		e, err := t.schema.Decode(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("%w: %w", ErrCorrupt, err)
			}
			return fmt.Errorf("table %s: merge raw value %d: %w", t.name, i, err)
		}
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return nil
	}
	return t.Merge(entries...)
}

// errMerklePending is returned by merkleCheck when updates of the
// partition are still queued.
var errMerklePending = errors.New("k2v: merkle updates pending")

// MerkleCheck flushes the queue, then rebuilds partition p's tree from a
// full scan of its entries and compares it, leaf by leaf and node by node,
// with the stored one. It returns nil when they match. Meant for tests and
// repair tools: it holds the partition in memory, and concurrent writes to
// the partition make it retry.
func (t *Table[E]) MerkleCheck(p cluster.Partition) error {
	for range 10 {
		if err := t.FlushMerkle(); err != nil {
			return err
		}
		if err := t.merkleCheck(p); !errors.Is(err, errMerklePending) {
			return err
		}
	}
	return fmt.Errorf("merkle check %s partition %d: %w", t.name, p, errMerklePending)
}

func (t *Table[E]) merkleCheck(p cluster.Partition) error {
	if err := t.db.enter(); err != nil {
		return err
	}
	defer t.db.leave()
	snap := t.db.pdb.NewSnapshot()
	defer snap.Close()
	scan := func(lower []byte, fn func(k, v []byte) error) error {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			v, err := it.ValueAndErr()
			if err == nil {
				err = fn(it.Key()[len(lower):], v)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
		return it.Close()
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("merkle check %s partition %d: %s", t.name, p, fmt.Sprintf(format, args...))
	}
	// the tree is checked in a state where it is up to date
	pending := false
	err := scan(localKey(append(bytes.Clone(t.mqPrefix), byte(p))), func(_, _ []byte) error {
		pending = true
		return nil
	})
	if err != nil {
		return err
	}
	if pending {
		return errMerklePending
	}
	type leaf struct {
		vhash [32]byte
		key   []byte
	}
	leaves := map[[32]byte]leaf{}
	nodes := map[string]MerkleNode{}
	err = scan(append(bytes.Clone(t.prefix), byte(p)), func(rest, v []byte) error {
		storeKey := append([]byte{byte(p)}, rest...)
		kh, vh := sha256.Sum256(storeKey), sha256.Sum256(v)
		leaves[kh] = leaf{vh, storeKey}
		term := merkleTerm(&kh, &vh)
		for level := 0; level <= merkleDepth; level++ {
			k := string(kh[:level])
			n := nodes[k]
			nodes[k] = MerkleNode{Sum: add256(n.Sum, term), Count: n.Count + 1}
		}
		return nil
	})
	if err != nil {
		return err
	}
	seen := 0
	err = scan(localKey(t.leafKey(byte(p), nil)), func(kh, v []byte) error {
		l, err := decodeMerkleLeaf(kh, v)
		if err != nil {
			return err
		}
		want, ok := leaves[l.KHash]
		switch {
		case !ok:
			return fail("leaf %x for an absent entry %x", kh, l.Key)
		case want.vhash != l.VHash || !bytes.Equal(want.key, l.Key):
			return fail("leaf %x is %x/%x, want %x/%x", kh, l.VHash, l.Key, want.vhash, want.key)
		}
		seen++
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(leaves) {
		return fail("%d leaves for %d entries", seen, len(leaves))
	}
	seen = 0
	nodeBase := append(bytes.Clone(t.mkPrefix), byte(p))
	err = scan(localKey(nodeBase), func(k, v []byte) error {
		if len(k) == 0 || int(k[0]) != len(k)-1 || k[0] > merkleDepth {
			return fail("bad node key %x", k)
		}
		prefix := k[1:]
		got, err := decodeMerkleNode(v)
		if err != nil {
			return err
		}
		want, ok := nodes[string(prefix)]
		if !ok || got != want {
			return fail("node %x is %x/%d, want %x/%d", prefix, got.Sum, got.Count, want.Sum, want.Count)
		}
		seen++
		return nil
	})
	if err != nil {
		return err
	}
	if seen != len(nodes) {
		return fail("%d nodes stored, want %d", seen, len(nodes))
	}
	return nil
}

// scanLocalRange calls fn with each node-local key in [lower, upper) (keys
// without the space byte; upper nil: no bound) and its value, in order,
// until fn returns false or an error. fn must not call the DB.
func (db *DB) scanLocalRange(lower, upper []byte, fn func(key, value []byte) (bool, error)) error {
	if err := db.enter(); err != nil {
		return err
	}
	defer db.leave()
	o := &pebble.IterOptions{LowerBound: localKey(lower), UpperBound: prefixEnd([]byte{spaceLocal})}
	if upper != nil {
		o.UpperBound = localKey(upper)
	}
	it, err := db.pdb.NewIter(o)
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		more, err := fn(it.Key()[1:], v)
		if err != nil || !more {
			it.Close()
			return err
		}
	}
	return it.Close()
}
