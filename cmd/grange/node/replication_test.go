package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// startCluster starts n nodes joined in a mesh with an RF-n layout of one
// zone per node, and the default key and bucket made on node 0.
func startCluster(t *testing.T, n int) []*Node { return startClusterB(t, n) }

type atomicInt struct{ v atomic.Int64 }

func (a *atomicInt) add() int { return int(a.v.Add(1)) }

func startClusterB(t testing.TB, n int) []*Node {
	t.Helper()
	var secret [32]byte
	rand.Read(secret[:])
	var nodes []*Node
	var first string
	for i := range n {
		cfg := Config{
			MetadataDir:       t.TempDir(),
			DataDir:           t.TempDir(),
			NoDataFsync:       true,
			ReplicationFactor: n,
			RPCSecret:         secret,
			RPCBindAddr:       "127.0.0.1:0",
			K2VAddr:           "127.0.0.1:0",
			NoMetadataFsync:   true,
			Cluster:           cluster.Config{PingInterval: 200 * time.Millisecond, MaxRedialDelay: 200 * time.Millisecond},
			Replication:       k2v.ReplicatorConfig{SyncInterval: time.Hour, RetryInterval: 100 * time.Millisecond, RequestTimeout: time.Second, GCDelay: 2 * time.Second},
		}
		if i > 0 {
			cfg.BootstrapPeers = []string{first}
		}
		nd, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.Close(context.Background()) })
		if i == 0 {
			first = nd.ID().String() + "@" + nd.Cluster().ListenAddr()
		}
		nodes = append(nodes, nd)
	}
	_, err := nodes[0].Cluster().UpdateLayout(func(h *layout.History) error {
		for i, nd := range nodes {
			h.StageRole(nd.ID(), &layout.Role{Zone: fmt.Sprintf("z%d", i), CapacityBytes: 1 << 30}, uint64(time.Now().UnixMilli()))
		}
		_, err := h.Apply(h.Current().Version+1, uint64(time.Now().UnixMilli()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "layout synced everywhere", func() error {
		for _, nd := range nodes {
			h := nd.Cluster().History()
			if h.Current().Version != 1 || h.MinSync() != 1 {
				return fmt.Errorf("node %s: version %d, min sync %d", nd.ID().Short(), h.Current().Version, h.MinSync())
			}
		}
		return nil
	})
	return nodes
}

// bucketEverywhere creates a bucket on node 0 and waits until every node
// knows it.
func bucketEverywhere(t *testing.T, nodes []*Node) *k2v.Bucket {
	t.Helper()
	bk, err := nodes[0].Catalog().CreateBucket("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "bucket everywhere", func() error {
		for _, nd := range nodes {
			if _, err := nd.Catalog().Bucket(bk.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return bk
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReplicatedItemsReadYourWrites(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	bk := bucketEverywhere(t, nodes)
	for i := range 50 {
		w := nodes[i%3]
		r := nodes[(i+1)%3]
		pk, sk := fmt.Sprintf("p%d", i%7), fmt.Sprintf("s%d", i)
		if err := w.Items().Insert(ctx, bk.ID, k2v.Write{Partition: pk, Sort: sk, Value: k2v.Value{Data: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
		it, err := r.Items().Get(ctx, bk.ID, pk, sk)
		if err != nil || it == nil {
			t.Fatalf("read %s/%s at another node: %v %v", pk, sk, it, err)
		}
	}
	items, _, err := nodes[2].Items().ReadRange(ctx, bk.ID, "p0", k2v.Range{}, k2v.Filter{}, nil)
	if err != nil || len(items) != 8 {
		t.Fatalf("range: %d items, %v", len(items), err)
	}
}

// BenchmarkReplicatedItems measures the item path of a 3-node RF 3
// cluster in one process (profiling aid; the acceptance figures come from
// grange bench k2v-cluster, with one process per node).
func BenchmarkReplicatedItems(b *testing.B) {
	for _, op := range []string{"insert", "read"} {
		b.Run(op, func(b *testing.B) {
			nodes := startClusterB(b, 3)
			ctx := context.Background()
			bk, err := nodes[0].Catalog().CreateBucket("app", nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 100 {
				nodes[0].Items().Insert(ctx, bk.ID, k2v.Write{Partition: fmt.Sprint(i), Sort: "s", Value: k2v.Value{Data: make([]byte, 100)}})
			}
			b.SetParallelism(8)
			var n atomicInt
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := n.add()
				nd := nodes[i%3]
				for j := 0; pb.Next(); j++ {
					pk := fmt.Sprint((i*7 + j) % 100)
					if op == "insert" {
						err = nd.Items().Insert(ctx, bk.ID, k2v.Write{Partition: pk, Sort: fmt.Sprint(i, "-", j), Value: k2v.Value{Data: make([]byte, 100)}})
					} else {
						_, err = nd.Items().Get(ctx, bk.ID, pk, "s")
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// A deleted item's tombstone is collected from every replica once the GC
// delay passed, and not while a replica is down: that replica could not
// drop its copy, which would come back.
func TestTombstonesCollectedEverywhere(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	bk := bucketEverywhere(t, nodes)
	put := func(sk string) {
		if err := nodes[0].Items().Insert(ctx, bk.ID, k2v.Write{Partition: "p", Sort: sk, Value: k2v.Value{Data: []byte("v")}}); err != nil {
			t.Fatal(err)
		}
		if ok, err := nodes[1].Items().DeleteItem(ctx, bk.ID, "p", sk); !ok || err != nil {
			t.Fatalf("delete %s: %v %v", sk, ok, err)
		}
	}
	stored := func(nd *Node, sk string) bool {
		it, err := nd.Items().Table().Get(k2v.ItemPlacementKeyForTest(bk.ID, "p"), []byte(sk))
		if err != nil {
			t.Fatal(err)
		}
		return it != nil
	}
	put("a")
	waitFor(t, 20*time.Second, "tombstone of a collected everywhere", func() error {
		for i, nd := range nodes {
			if stored(nd, "a") {
				return fmt.Errorf("node %d still stores it", i)
			}
		}
		return nil
	})

	// with node 2 down, the tombstone stays
	put("b")
	nodes[2].Close(context.Background())
	time.Sleep(4 * time.Second)
	for i, nd := range nodes[:2] {
		if !stored(nd, "b") {
			t.Fatalf("node %d collected a tombstone while a replica was down", i)
		}
	}
	if it, err := nodes[0].Items().Get(ctx, bk.ID, "p", "b"); err != nil || it == nil || !it.IsTombstone() {
		t.Fatalf("read of the deleted item: %v, %v", it, err)
	}
}
