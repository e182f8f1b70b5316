package nodetest

import (
	"context"
	"errors"
	"testing"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
)

// runWorkload runs w against c, spreading operations over the live nodes,
// and checks the history and the final state read at every live node.
func runWorkload(t *testing.T, c *Cluster, w *Workload, during func()) {
	t.Helper()
	ctx := context.Background()
	w.Client = func(worker, n int) (*k2vc.Client, int) {
		i := (worker + n) % c.Len()
		for !c.Alive(i) {
			i = (i + 1) % c.Len()
		}
		return c.Client(i), i
	}
	h := NewHistory()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, h)
	}()
	if during != nil {
		during()
	}
	<-done
	ops := h.Ops()
	failed := 0
	for _, op := range ops {
		if op.Err != nil {
			failed++
		}
	}
	t.Logf("seed %d: %d operations, %d failed", w.Seed, len(ops), failed)
	start := time.Now()
	if err := CheckLinearizable(ops, time.Minute); err != nil {
		t.Error(err)
	}
	t.Logf("linearizability checked in %v", time.Since(start))
	// Before any final read through the API (whose read repair would hide
	// what anti-entropy left undone): converge, compare the replicas'
	// local tables, and check each replica's own copy of the items.
	checkReplicas(t, c)
	replicas, err := c.WorkloadReplicas(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range replicas {
		final, err := c.LocalFinal(i, w)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckNoLostWrites(ops, final); err != nil {
			t.Errorf("local copy at replica %d: %v", i, err)
		}
	}
	for i := range c.Len() {
		if !c.Alive(i) {
			continue
		}
		final, err := w.ReadFinal(ctx, c.Client(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckNoLostWrites(ops, final); err != nil {
			t.Errorf("final state at node %d: %v", i, err)
		}
	}
}

// checkReplicas converges the cluster and compares its replicas. A
// tombstone collection or a counter publication still under way may leave
// replicas apart for a moment: the comparison is tried again after another
// full sync, a few times, and every failed attempt is logged.
func checkReplicas(t *testing.T, c *Cluster) {
	t.Helper()
	start := time.Now()
	c.Converge()
	const attempts = 5
	for n := 1; ; n++ {
		err := c.CheckReplicas()
		if err == nil {
			t.Logf("replicas identical after %v (%d comparisons)", time.Since(start), n)
			return
		}
		if n == attempts {
			t.Errorf("replicas differ after %d full syncs: %v", attempts+1, err)
			return
		}
		t.Logf("replicas differ (attempt %d; syncing again): %v", n, err)
		time.Sleep(500 * time.Millisecond)
		c.SyncAll()
	}
}

// TestWorkloadSingleNode: on one node the store is linearizable, so the
// checkers pass. This validates the checkers and the workload on a real
// server.
func TestWorkloadSingleNode(t *testing.T) {
	c := Start(t, Options{Nodes: 1})
	w := &Workload{Workers: 6, Items: 3, OpsPerWorker: 60}
	if testing.Short() {
		w.OpsPerWorker = 20
	}
	runWorkload(t, c, w, func() {})
}

// TestHarness exercises the harness on what works today: formation over
// the FaultNet, K2V on each node, kill and restart on the same ports,
// wipe, replace, layout changes, a partition and its healing.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := Start(t, Options{Nodes: 5, RF: 3})
	ctx := context.Background()
	for i := range c.Len() {
		if got := c.Node(i).Cluster().Layout().Version; got != 1 {
			t.Fatalf("node %d: layout version %d", i, got)
		}
		if n := len(c.Node(i).Cluster().Layout().StorageNodes()); n != 5 {
			t.Fatalf("node %d: %d storage nodes", i, n)
		}
		if err := c.Client(i).InsertItem(ctx, "p", "s", []byte("v"), ""); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}

	// Kill and restart: same identity, same ports, data kept (locally).
	id := c.ID(2)
	c.Kill(2)
	if _, err := c.Client(2).ReadItem(ctx, "p", "s"); err == nil {
		t.Fatal("killed node answered")
	}
	c.Restart(2)
	if c.ID(2) != id {
		t.Fatal("identity changed across restart")
	}
	if _, err := c.Client(2).ReadItem(ctx, "p", "s"); err != nil {
		t.Fatalf("after restart: %v", err)
	}

	// Partition node 4 away: the others see it down; heal: up again.
	c.Net.Isolate(c.RPCAddr(4))
	c.Eventually("isolated node down", func() error {
		if c.Node(0).Cluster().IsUp(c.ID(4)) {
			return errors.New("still up")
		}
		return nil
	})
	c.Net.Heal()
	c.WaitMesh()

	// WipeData keeps the identity and loses the data (and the layout,
	// which comes back from the peers).
	id = c.ID(3)
	c.WipeData(3)
	if c.ID(3) != id {
		t.Fatal("identity changed across WipeData")
	}
	c.WaitLayout(1)
	// the catalog comes back through anti-entropy, the item from the
	// other replicas (a quorum read)
	c.Eventually("catalog back on the wiped node", func() error {
		_, err := c.Client(3).ReadItem(ctx, "p", "s")
		return err
	})

	// Replace node 1 and add a node in dc1; remove node 0.
	old := c.ID(1)
	c.Replace(1)
	if c.ID(1) == old {
		t.Fatal("replaced node kept its identity")
	}
	i := c.AddNode("dc1")
	c.Remove(0)
	v := c.Apply()
	c.WaitLayout(v)
	l := c.Node(i).Cluster().Layout()
	if l.IsStorageNode(old) || l.IsStorageNode(c.ID(0)) || !l.IsStorageNode(c.ID(1)) || !l.IsStorageNode(c.ID(i)) {
		t.Fatalf("layout v%d storage nodes: %v", l.Version, l.StorageNodes())
	}
}

// TestWorkloadFaults runs the workload on five nodes while the network
// partitions a minority, delays links, and a node is killed and restarted;
// then it checks the histories.
func TestWorkloadFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := Start(t, Options{Nodes: 5, RF: 3})
	w := &Workload{Workers: 8, Items: 64, Duration: 15 * time.Second, OpTimeout: 3 * time.Second}
	runWorkload(t, c, w, func() {
		time.Sleep(2 * time.Second)
		c.Net.Partition([]string{c.RPCAddr(0), c.RPCAddr(1)}) // a minority of 2
		time.Sleep(3 * time.Second)
		c.Net.Heal()
		c.Net.SetDelay(c.RPCAddr(2), c.RPCAddr(3), 200*time.Millisecond)
		c.Net.SetDelay(c.RPCAddr(3), c.RPCAddr(2), 200*time.Millisecond)
		time.Sleep(2 * time.Second)
		c.Kill(4)
		time.Sleep(3 * time.Second)
		c.Restart(4)
		c.Net.SetDelay(c.RPCAddr(2), c.RPCAddr(3), 0)
		c.Net.SetDelay(c.RPCAddr(3), c.RPCAddr(2), 0)
	})
}

// TestWorkloadLayoutChanges runs the workload on five nodes in three zones
// while the layout changes four times — a node added, one removed, one
// moved to another zone, one replaced by a wiped node — each change
// waiting until the new version is synced everywhere; then it checks the
// histories: zero lost writes, zero read-after-write violations.
func TestWorkloadLayoutChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := Start(t, Options{Nodes: 5, RF: 3})
	w := &Workload{Workers: 8, Items: 256, Duration: 20 * time.Second, OpTimeout: 5 * time.Second}
	// On a slow machine (the race detector, other load) four synced
	// changes outlast 20 s: the workload then goes on until they are done.
	changed := make(chan struct{})
	w.Until = changed
	start := time.Now()
	runWorkload(t, c, w, func() {
		defer close(changed)
		time.Sleep(time.Second)
		step := func(what string, change func()) {
			change()
			v := c.Apply()
			c.WaitSynced(v)
			t.Logf("%v: %s, version %d synced", time.Since(start).Round(time.Millisecond), what, v)
			time.Sleep(2 * time.Second) // the workload runs on the settled layout too
		}
		step("node added in dc2", func() { c.AddNode("dc2") })
		step("node 0 removed", func() { c.Remove(0) })
		step("node 1 moved to dc3", func() { c.Assign(1, "dc3", 1<<40) })
		step("node 2 replaced by a wiped node", func() {
			c.Replace(2)
			v := c.Node(1).Cluster().Layout().Version + 1
			go func() {
				// the old node 2 is gone for good: let the change finish
				c.WaitLayout(v)
				c.SkipDeadNodes(v)
			}()
		})
		t.Logf("layout changes done after %v (workload of at least %v)", time.Since(start).Round(time.Millisecond), w.Duration)
	})
}
