package cluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grangeio/grange/cluster/clustertest"
	"github.com/grangeio/grange/cluster/layout"
)

// TestSimulatedCluster runs three nodes over an in-memory network with a
// 50 ms one-way latency inside a synctest bubble: time is fake, so a call
// takes exactly two latencies and the test takes milliseconds of real
// time whatever the timeouts.
func TestSimulatedCluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const oneWay = 50 * time.Millisecond
		mn := clustertest.NewMemNet(func(from, to string) time.Duration { return oneWay })
		var nodes []*Cluster
		for i := range 3 {
			key, err := GenerateNodeKey()
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t, t.TempDir(), key, mn.Host())
			if i > 0 {
				cfg.BootstrapPeers = []string{nodes[0].ID().String() + "@" + nodes[0].PublicAddr()}
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			c.Handle("test/echo", HandlerFunc(func(_ context.Context, _ NodeID, req *Incoming) (*Response, error) {
				return &Response{Body: req.Body}, nil
			}))
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			nodes = append(nodes, c)
		}

		// Full mesh, from one bootstrap peer, in fake time.
		start := time.Now()
		waitFake(t, time.Minute, "full mesh", func() error {
			for _, c := range nodes {
				for _, o := range nodes {
					if !c.IsUp(o.ID()) {
						return fmt.Errorf("%s does not see %s up", c.ID().Short(), o.ID().Short())
					}
				}
			}
			return nil
		})
		t.Logf("full mesh after %v of fake time", time.Since(start))

		// A call on an established connection is one round trip.
		ctx := context.Background()
		if _, err := nodes[0].Call(ctx, nodes[1].ID(), &Request{Endpoint: "test/echo", Body: []byte("warm")}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		t0 := time.Now()
		resp, err := nodes[0].Call(ctx, nodes[1].ID(), &Request{Endpoint: "test/echo", Body: []byte("ping")})
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(t0); got != 2*oneWay {
			t.Errorf("Call round trip took %v of fake time, want %v", got, 2*oneWay)
		}
		if string(resp.Body) != "ping" {
			t.Errorf("echo = %q", resp.Body)
		}

		// A layout applied at node 2 converges.
		if _, err := nodes[2].UpdateLayout(func(h *layout.History) error {
			for i, c := range nodes {
				if err := h.StageRole(c.ID(), &layout.Role{Zone: fmt.Sprintf("dc%d", i), CapacityBytes: 1 << 40}, uint64(time.Now().UnixMilli())); err != nil {
					return err
				}
			}
			_, err := h.Apply(1, uint64(time.Now().UnixMilli()))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		want := nodes[2].Layout().Encode(nil)
		start = time.Now()
		waitFake(t, time.Minute, "layout converges", func() error {
			for _, c := range nodes {
				if !bytes.Equal(c.Layout().Encode(nil), want) {
					return fmt.Errorf("%s has version %d", c.ID().Short(), c.Layout().Version)
				}
			}
			return nil
		})
		t.Logf("layout converged after %v of fake time", time.Since(start))
	})
}

// waitFake polls cond in a synctest bubble, advancing fake time by 10 ms
// between polls.
func waitFake(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		synctest.Wait()
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
