package nodetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cmd/grange/node"
	"github.com/grangeio/grange/k2v"
)

// Converge heals the network (partitions and drops; delays stay, see
// FaultNet.Heal), waits for the full mesh and runs two full anti-entropy
// passes on every live node (SyncAll): afterwards the replicas of every
// partition should hold identical entries, unless a write, a tombstone
// collection or a counter publication is still under way (CheckReplicas).
func (c *Cluster) Converge() {
	c.t.Helper()
	c.Net.Heal()
	c.WaitMesh()
	c.SyncAll()
	c.SyncAll()
}

// SyncAll runs Replicator.FullSync on every live node at once and waits
// for all of them. A FullSync called while a pass runs may return at the
// end of that pass; call it twice for a pass that began after the call.
// A pass that fails (a pass begun before the network healed, a peer
// restarting) is run again, until 3×Timeout.
func (c *Cluster) SyncAll() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*Timeout)
	defer cancel()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range c.Len() {
		n := c.Node(i)
		if n == nil {
			continue
		}
		wg.Go(func() {
			for {
				err := n.Replicator().FullSync(ctx)
				if err == nil {
					return
				}
				if ctx.Err() != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("node %d: %w", i, err))
					mu.Unlock()
					return
				}
				c.t.Logf("nodetest: full sync on node %d failed; again: %v", i, firstLine(err.Error()))
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatalf("full sync: %v", err)
	}
}

// replicaSlot is a live node and its copy of one table.
type replicaSlot[E any] struct {
	i int
	t *k2v.Table[E]
}

// CheckReplicas compares the replicas of every partition of the sharded
// tables (K2V items and index counters) on the live nodes, reading each
// node's local table: for each partition, every live replica of the
// current layout has the same Merkle root and the same entries (keys and
// encoded values), and its tree matches its entries (MerkleCheck). When no
// layout change is in progress, live nodes that are not replicas of a
// partition hold none of its entries. Replicas that are down are skipped.
// It reports every difference it finds (a few per partition).
func (c *Cluster) CheckReplicas() error {
	c.t.Helper()
	nodes := map[int]*node.Node{}
	for i := range c.Len() {
		if n := c.Node(i); n != nil {
			nodes[i] = n
		}
	}
	if len(nodes) == 0 {
		return errors.New("nodetest: no live node")
	}
	items := map[int]*k2v.Table[k2v.Item]{}
	counters := map[int]*k2v.Table[k2v.CounterEntry]{}
	for i, n := range nodes {
		items[i] = n.Items().Table()
		counters[i] = n.Items().CounterTable()
	}
	return errors.Join(
		checkTable(c, nodes, items),
		checkTable(c, nodes, counters),
	)
}

func checkTable[E any](c *Cluster, nodes map[int]*node.Node, tables map[int]*k2v.Table[E]) error {
	var errs []error
	var name string
	for i, t := range tables {
		name = t.Name()
		if err := t.FlushMerkle(); err != nil {
			errs = append(errs, fmt.Errorf("node %d: table %s: flush merkle: %w", i, t.Name(), err))
		}
	}
	// the layout the replicas are checked against: the newest a live node has
	var h = c.anyLive().Cluster().History()
	for _, n := range nodes {
		if o := n.Cluster().History(); o.Current().Version > h.Current().Version {
			h = o
		}
	}
	l := h.Current()
	stable := len(h.Versions) == 1
	slotOf := map[cluster.NodeID]int{}
	for i, n := range nodes {
		slotOf[n.ID()] = i
	}
	for p := range 256 {
		p := cluster.Partition(p)
		var reps []replicaSlot[E]
		isRep := map[int]bool{}
		for _, id := range l.Replicas(p) {
			if i, ok := slotOf[id]; ok {
				reps = append(reps, replicaSlot[E]{i, tables[i]})
				isRep[i] = true
			}
		}
		if err := compareReplicas(p, reps); err != nil {
			errs = append(errs, fmt.Errorf("table %s partition %d: %w", name, p, err))
		}
		if !stable {
			continue
		}
		for i, t := range tables {
			if isRep[i] {
				continue
			}
			n := 0
			err := t.ScanPartition(p, nil, func(_, _ []byte) (bool, error) { n++; return true, nil })
			if err != nil {
				errs = append(errs, err)
			} else if n > 0 {
				errs = append(errs, fmt.Errorf("table %s partition %d: node %d is no replica but holds %d entries", name, p, i, n))
			}
		}
	}
	if len(errs) > 20 {
		errs = append(errs[:20], fmt.Errorf("and %d more", len(errs)-20))
	}
	return errors.Join(errs...)
}

type entry struct{ key, value []byte }

func scanEntries[E any](t *k2v.Table[E], p cluster.Partition) ([]entry, error) {
	var out []entry
	err := t.ScanPartition(p, nil, func(k, v []byte) (bool, error) {
		out = append(out, entry{bytes.Clone(k), bytes.Clone(v)})
		return true, nil
	})
	return out, err
}

// compareReplicas checks the copies of partition p against each other.
func compareReplicas[E any](p cluster.Partition, reps []replicaSlot[E]) error {
	var errs []error
	var first []entry
	var firstRoot k2v.MerkleNode
	for n, r := range reps {
		if err := r.t.MerkleCheck(p); err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", r.i, err))
		}
		root, err := r.t.MerkleNode(p, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", r.i, err))
			continue
		}
		entries, err := scanEntries(r.t, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("node %d: %w", r.i, err))
			continue
		}
		if root.Count != uint64(len(entries)) {
			errs = append(errs, fmt.Errorf("node %d: merkle root counts %d entries, the table holds %d", r.i, root.Count, len(entries)))
		}
		if n == 0 {
			first, firstRoot = entries, root
			continue
		}
		if root != firstRoot {
			errs = append(errs, fmt.Errorf("merkle roots differ: node %d %x/%d, node %d %x/%d", reps[0].i, firstRoot.Sum[:8], firstRoot.Count, r.i, root.Sum[:8], root.Count))
		}
		if err := diffEntries(reps[0], first, r, entries); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// diffEntries describes up to a few differences between two replicas'
// entries of one partition (both in key order).
func diffEntries[E any](ra replicaSlot[E], a []entry, rb replicaSlot[E], b []entry) error {
	var errs []error
	show := func(r replicaSlot[E], v []byte) string {
		if v == nil {
			return "absent"
		}
		e, err := r.t.Decode(v)
		if err != nil {
			return fmt.Sprintf("undecodable %x: %v", v, err)
		}
		return fmt.Sprintf("%+v", e)
	}
	add := func(key, va, vb []byte) {
		if len(errs) < 5 {
			errs = append(errs, fmt.Errorf("entry %x: node %d has %s; node %d has %s", key, ra.i, show(ra, va), rb.i, show(rb, vb)))
		} else {
			errs = append(errs, nil)
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && bytes.Compare(a[i].key, b[j].key) < 0):
			add(a[i].key, a[i].value, nil)
			i++
		case i == len(a) || bytes.Compare(a[i].key, b[j].key) > 0:
			add(b[j].key, nil, b[j].value)
			j++
		default:
			if !bytes.Equal(a[i].value, b[j].value) {
				add(a[i].key, a[i].value, b[j].value)
			}
			i++
			j++
		}
	}
	if len(errs) == 0 {
		return nil
	}
	out := errors.Join(errs[:min(5, len(errs))]...)
	if len(errs) > 5 {
		out = fmt.Errorf("%w\n(%d differing entries in all)", out, len(errs))
	}
	return out
}

// LocalFinal builds the final state of w's items from node i's local item
// table, not through the cluster (no quorum, no read repair): what this
// replica alone holds, for CheckNoLostWrites.
func (c *Cluster) LocalFinal(i int, w *Workload) (Final, error) {
	w.defaults()
	n := c.Node(i)
	if n == nil {
		return nil, fmt.Errorf("nodetest: node %d is down", i)
	}
	bucket, err := n.Catalog().LookupAlias(Bucket)
	if err != nil {
		return nil, err
	}
	t := n.Items().Table()
	var vals [][]byte
	err = t.ScanPartition(k2v.ItemPartition(bucket, w.Partition), nil, func(_, v []byte) (bool, error) {
		vals = append(vals, bytes.Clone(v))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	out := Final{}
	for _, v := range vals {
		it, err := t.Decode(v)
		if err != nil {
			return nil, err
		}
		if it.Bucket != bucket || it.Partition != w.Partition {
			continue
		}
		for _, v := range it.Values() {
			if !v.Tombstone {
				out[it.Sort] = append(out[it.Sort], string(v.Data))
			}
		}
	}
	return out, nil
}

// WorkloadReplicas returns the live nodes that replicate w's partition key
// in the current layout.
func (c *Cluster) WorkloadReplicas(w *Workload) ([]int, error) {
	w.defaults()
	n := c.anyLive()
	bucket, err := n.Catalog().LookupAlias(Bucket)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, id := range n.Cluster().Layout().Replicas(k2v.ItemPartition(bucket, w.Partition)) {
		for i := range c.Len() {
			if c.Alive(i) && c.ID(i) == id {
				out = append(out, i)
			}
		}
	}
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
