package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// startCluster starts n nodes joined in a mesh with an RF-n layout of one
// zone per node, and the default key and bucket made on node 0.
func startCluster(t *testing.T, n int) []*Node {
	t.Helper()
	var secret [32]byte
	rand.Read(secret[:])
	var nodes []*Node
	var first string
	for i := range n {
		cfg := Config{
			MetadataDir:       t.TempDir(),
			ReplicationFactor: n,
			RPCSecret:         secret,
			RPCBindAddr:       "127.0.0.1:0",
			K2VAddr:           "127.0.0.1:0",
			NoMetadataFsync:   true,
			Cluster:           cluster.Config{PingInterval: 200 * time.Millisecond, MaxRedialDelay: 200 * time.Millisecond},
			Replication:       k2v.ReplicatorConfig{SyncInterval: time.Hour, RetryInterval: 100 * time.Millisecond},
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

func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
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
