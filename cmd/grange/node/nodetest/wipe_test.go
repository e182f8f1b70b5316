package nodetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/k2v"
)

// localCount returns the number of entries in node i's local item table.
func localCount(t *k2v.Table[k2v.Item]) (int, error) {
	n := 0
	for p := range 256 {
		err := t.ScanPartition(cluster.Partition(p), nil, func(_, _ []byte) (bool, error) { n++; return true, nil })
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// waitFor polls cond every interval until it returns nil or limit passes.
func waitFor(t *testing.T, what string, interval, limit time.Duration, cond func() error) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	report := start.Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, limit, err)
		}
		if time.Now().After(report) {
			t.Logf("%s: not yet after %v: %v", what, time.Since(start).Round(time.Second), err)
			report = report.Add(5 * time.Second)
		}
		time.Sleep(interval)
	}
}

// TestWipedNodeRejoins: on three nodes with RF 3 (every node holds every
// partition), a node whose data is wiped gets every item back through
// anti-entropy alone: no client reads (no read repair), and the retry
// queues were empty when it was wiped. It reports how long that takes
// (NODETEST_WIPE_ITEMS sets the number of items, default 100,000, or
// 20,000 under the race detector).
func TestWipedNodeRejoins(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	total := 100_000
	if raceEnabled {
		total = 20_000
	}
	if s := os.Getenv("NODETEST_WIPE_ITEMS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		total = v
	}
	const (
		perPK   = 100 // sort keys per partition key
		batch   = 500 // writes per Insert call
		workers = 8
	)
	c := Start(t, Options{Nodes: 3, RF: 3})
	ctx := context.Background()
	bucket, err := c.Node(0).Catalog().LookupAlias(Bucket)
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 64)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for g := range workers {
		wg.Go(func() {
			items := c.Node(g % 3).Items()
			for {
				first := int(next.Add(batch)) - batch
				if first >= total {
					return
				}
				writes := make([]k2v.Write, 0, batch)
				for i := first; i < min(first+batch, total); i++ {
					writes = append(writes, k2v.Write{
						Partition: fmt.Sprintf("pk-%05d", i/perPK),
						Sort:      fmt.Sprintf("sk-%03d", i%perPK),
						Value:     k2v.Value{Data: value},
					})
				}
				if err := items.Insert(ctx, bucket, writes...); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("inserted %d items in %v", total, time.Since(start))

	// settle: every node holds every item, the trees are up to date, no
	// write waits for a retry
	waitFor(t, "replication settled", time.Second, 15*time.Minute, func() error {
		for i := range 3 {
			n := c.Node(i)
			if q, err := n.Replicator().QueuedRetries(); err != nil || q != 0 {
				return fmt.Errorf("node %d: %d queued retries (%v)", i, q, err)
			}
			tbl := n.Items().Table()
			if got, err := localCount(tbl); err != nil || got != total {
				return fmt.Errorf("node %d holds %d items (%v)", i, got, err)
			}
			if pend, err := tbl.MerklePending(); err != nil || pend != 0 {
				return fmt.Errorf("node %d: %d merkle updates pending (%v)", i, pend, err)
			}
		}
		return nil
	})
	t.Logf("settled %v after the start of the inserts", time.Since(start))
	var roots [256]k2v.MerkleNode
	t0 := c.Node(0).Items().Table()
	if err := t0.FlushMerkle(); err != nil {
		t.Fatal(err)
	}
	count := uint64(0)
	for p := range 256 {
		if roots[p], err = t0.MerkleNode(cluster.Partition(p), nil); err != nil {
			t.Fatal(err)
		}
		count += roots[p].Count
	}
	if count != uint64(total) {
		t.Fatalf("node 0's trees count %d items, want %d", count, total)
	}
	for i := range 3 {
		if q, err := c.Node(i).Replicator().QueuedRetries(); err != nil || q != 0 {
			t.Fatalf("node %d: %d queued retries before the wipe (%v)", i, q, err)
		}
	}

	wipe := time.Now()
	c.WipeData(2)
	restarted := time.Now()
	// anti-entropy from the others at once rather than at their next
	// periodic pass
	var syncTimes [2]time.Duration
	var syncErrs [2]error
	var syncs sync.WaitGroup
	for i := range 2 {
		syncs.Go(func() {
			s := time.Now()
			syncErrs[i] = c.Node(i).Replicator().FullSync(ctx)
			syncTimes[i] = time.Since(s)
		})
	}
	t2 := c.Node(2).Items().Table()
	waitFor(t, "the wiped node holding every item again", 50*time.Millisecond, 15*time.Minute, func() error {
		if err := t2.FlushMerkle(); err != nil {
			return err
		}
		missing := 0
		for p := range 256 {
			r, err := t2.MerkleNode(cluster.Partition(p), nil)
			if err != nil {
				return err
			}
			if r != roots[p] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d partitions differ from node 0's", missing)
		}
		return nil
	})
	converged := time.Now()
	syncs.Wait()
	for i, err := range syncErrs {
		if err != nil {
			t.Errorf("full sync on node %d: %v", i, err)
		}
	}
	if got, err := localCount(t2); err != nil || got != total {
		t.Fatalf("wiped node holds %d items after convergence (%v)", got, err)
	}
	msg := fmt.Sprintf("wiped node rejoined: %d items back through anti-entropy in %v from the restart (%v from the wipe; restart and mesh took %v); FullSync on node 0 took %v, on node 1 %v",
		total, converged.Sub(restarted).Round(time.Millisecond), converged.Sub(wipe).Round(time.Millisecond),
		restarted.Sub(wipe).Round(time.Millisecond), syncTimes[0].Round(time.Millisecond), syncTimes[1].Round(time.Millisecond))
	t.Log(msg)
	fmt.Println("nodetest:", msg)
	checkReplicas(t, c)
}
