package node

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/clustertest"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// TestNodesInBubble: whole nodes (pebble on an in-memory FS, RPC on a
// MemNet with 50 ms latency) form a cluster and converge on a layout
// inside a synctest bubble, in fake time. The HTTP APIs stay off: they
// listen on real sockets, which a bubble cannot fake.
func TestNodesInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mn := clustertest.NewMemNet(func(_, _ string) time.Duration { return 50 * time.Millisecond })
		var nodes []*Node
		for i := range 3 {
			var boot []string
			if i > 0 {
				boot = []string{nodes[0].ID().String() + "@" + nodes[0].Cluster().PublicAddr()}
			}
			n, err := New(Config{
				MetadataDir:       t.TempDir(),
				DataDir:           t.TempDir(),
				FS:                k2v.NewMemFS(),
				ReplicationFactor: 3,
				RPCSecret:         [32]byte{1},
				RPCBindAddr:       "127.0.0.1:0",
				BootstrapPeers:    boot,
				Network:           mn.Host(),
				Cluster:           cluster.Config{PingInterval: 200 * time.Millisecond},
				DefaultAccessKey:  testKey,
				DefaultSecretKey:  testSecret,
				DefaultBucket:     "app",
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close(context.Background()) })
			nodes = append(nodes, n)
		}
		if _, err := nodes[1].Cluster().UpdateLayout(func(h *layout.History) error {
			for i, n := range nodes {
				if err := h.StageRole(n.ID(), &layout.Role{Zone: fmt.Sprintf("dc%d", i), CapacityBytes: 1 << 40}, 1); err != nil {
					return err
				}
			}
			_, err := h.Apply(1, 2)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for {
			synctest.Wait()
			ok := true
			for _, n := range nodes {
				for _, o := range nodes {
					ok = ok && n.Cluster().IsUp(o.ID())
				}
				ok = ok && n.Cluster().Layout().Version == 1
			}
			if ok {
				break
			}
			if time.Since(start) > time.Minute {
				t.Fatal("no mesh and layout after a minute of fake time")
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("mesh and layout after %v of fake time", time.Since(start))
	})
}
