package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster/clustertest"
	"github.com/grangeio/grange/cluster/layout"
)

var testSecret = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}

// testNode is one node of an in-process test cluster.
type testNode struct {
	dir string
	key NodeKey
	c   *Cluster
}

// testConfig is fast peering for tests.
func testConfig(t *testing.T, dir string, key NodeKey, net Network) Config {
	return Config{
		MetadataDir:       dir,
		Key:               key,
		Secret:            testSecret,
		ReplicationFactor: 3,
		BindAddr:          "127.0.0.1:0",
		Network:           net,
		PingInterval:      200 * time.Millisecond,
		PingTimeout:       300 * time.Millisecond,
		ExchangeInterval:  500 * time.Millisecond,
		MaxRedialDelay:    500 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func startTestNode(t *testing.T, dir string, key NodeKey, net Network, bootstrap ...string) *testNode {
	t.Helper()
	cfg := testConfig(t, dir, key, net)
	cfg.BootstrapPeers = bootstrap
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &testNode{dir: dir, key: key, c: c}
}

// startTestCluster starts n nodes; every node but the first knows only the
// first one, so that the rest of the mesh comes from peer exchange. host
// gives each node its Network (nil: TCP).
func startTestCluster(t *testing.T, n int, host func() Network) []*testNode {
	t.Helper()
	var nodes []*testNode
	for i := range n {
		key, err := GenerateNodeKey()
		if err != nil {
			t.Fatal(err)
		}
		var boot []string
		if i > 0 {
			boot = []string{nodes[0].c.ID().String() + "@" + nodes[0].c.PublicAddr()}
		}
		var net Network
		if host != nil {
			net = host()
		}
		nodes = append(nodes, startTestNode(t, t.TempDir(), key, net, boot...))
	}
	return nodes
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not after %v: %v", what, d, err)
	return 0
}

func upCount(c *Cluster, want map[NodeID]bool) error {
	for _, st := range c.Status() {
		if up, ok := want[st.ID]; ok && up != st.Up {
			return fmt.Errorf("%s sees %s up=%v", c.ID().Short(), st.ID.Short(), st.Up)
		}
	}
	n := 0
	for _, st := range c.Status() {
		if _, ok := want[st.ID]; ok {
			n++
		}
	}
	if n != len(want) {
		return fmt.Errorf("%s knows %d of the %d nodes", c.ID().Short(), n, len(want))
	}
	return nil
}

// TestClusterConvergesAndDetectsFailures is the acceptance: five
// nodes over TCP on 127.0.0.1 form a full mesh from one bootstrap peer,
// converge on a layout applied at any node, see a killed node down within
// 10 s and up again after it restarts.
func TestClusterConvergesAndDetectsFailures(t *testing.T) {
	nodes := startTestCluster(t, 5, nil)
	all := map[NodeID]bool{}
	for _, n := range nodes {
		all[n.c.ID()] = true
	}
	eventually(t, 10*time.Second, "full mesh", func() error {
		for _, n := range nodes {
			if err := upCount(n.c, all); err != nil {
				return err
			}
		}
		return nil
	})

	// Stage roles and apply at node 3: three zones.
	zones := []string{"home", "office", "rented", "home", "office"}
	_, err := nodes[3].c.UpdateLayout(func(h *layout.History) error {
		for i, n := range nodes {
			if err := h.StageRole(n.c.ID(), &layout.Role{Zone: zones[i], CapacityBytes: uint64(i+1) << 40}, uint64(time.Now().UnixMilli())); err != nil {
				return err
			}
		}
		_, err := h.Apply(1, uint64(time.Now().UnixMilli()))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := nodes[3].c.Layout().Encode(nil)
	eventually(t, 10*time.Second, "layout converges", func() error {
		for _, n := range nodes {
			if got := n.c.Layout(); !bytes.Equal(got.Encode(nil), want) {
				return fmt.Errorf("%s has layout version %d", n.c.ID().Short(), got.Version)
			}
		}
		return nil
	})
	eventually(t, 10*time.Second, "peers report the version", func() error {
		for _, s := range nodes[0].c.Status() {
			if s.LayoutVersion != 1 {
				return fmt.Errorf("%s reports version %d", s.ID.Short(), s.LayoutVersion)
			}
		}
		return nil
	})

	// Kill node 2: the others report it down within 10 s.
	victim := nodes[2]
	victim.c.Close()
	all[victim.c.ID()] = false
	d := eventually(t, 10*time.Second, "killed node reported down", func() error {
		for i, n := range nodes {
			if i == 2 {
				continue
			}
			if err := upCount(n.c, all); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("killed node reported down after %v", d)

	// Restart it with the same data: it knows its peers from its peer list
	// and the layout from its metadata directory.
	restarted := startTestNode(t, victim.dir, victim.key, nil)
	nodes[2] = restarted
	all[victim.c.ID()] = true
	d = eventually(t, 10*time.Second, "restarted node reported up", func() error {
		for _, n := range nodes {
			if err := upCount(n.c, all); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("restarted node reported up after %v", d)
	if got := restarted.c.Layout().Version; got != 1 {
		t.Fatalf("restarted node has layout version %d", got)
	}
	for _, s := range nodes[0].c.Status() {
		if s.Up && !s.IsSelf && s.RTT == 0 {
			t.Errorf("no RTT measured for %s", s.ID.Short())
		}
	}
}

// TestLayoutStagedAnywhere: staging done at different nodes merges, and a
// version applied at one node reaches a node that was down meanwhile.
func TestLayoutStagedAnywhere(t *testing.T) {
	nodes := startTestCluster(t, 3, nil)
	now := func() uint64 { return uint64(time.Now().UnixMilli()) }
	for i, n := range nodes {
		_, err := n.c.UpdateLayout(func(h *layout.History) error {
			return h.StageRole(n.c.ID(), &layout.Role{Zone: fmt.Sprintf("z%d", i), CapacityBytes: 1 << 40}, now())
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, "staging merges", func() error {
		for _, n := range nodes {
			if got := len(n.c.History().Staging.Roles); got != 3 {
				return fmt.Errorf("%s has %d staged roles", n.c.ID().Short(), got)
			}
		}
		return nil
	})
	if _, err := nodes[1].c.UpdateLayout(func(h *layout.History) error {
		_, err := h.Apply(1, now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "applied everywhere", func() error {
		for _, n := range nodes {
			h := n.c.History()
			if h.Current().Version != 1 || h.HasStagedChanges() {
				return fmt.Errorf("%s: version %d, staged %v", n.c.ID().Short(), h.Current().Version, h.HasStagedChanges())
			}
			if len(h.Current().StorageNodes()) != 3 {
				return fmt.Errorf("%d storage nodes", len(h.Current().StorageNodes()))
			}
		}
		return nil
	})
	// Trackers: every node acknowledged version 1.
	eventually(t, 10*time.Second, "trackers", func() error {
		for _, n := range nodes {
			if m := n.c.History().MinAck(); m != 1 {
				return fmt.Errorf("%s: min ack %d", n.c.ID().Short(), m)
			}
		}
		return nil
	})
	// An apply with the wrong version is refused and changes nothing.
	if _, err := nodes[0].c.UpdateLayout(func(h *layout.History) error {
		_, err := h.Apply(5, now())
		return err
	}); err == nil {
		t.Fatal("apply of version 5 over version 1 accepted")
	}
}

// TestWrongSecretCannotJoin: a node with another secret neither connects
// nor learns the layout.
func TestWrongSecretCannotJoin(t *testing.T) {
	nodes := startTestCluster(t, 2, nil)
	key, _ := GenerateNodeKey()
	cfg := testConfig(t, t.TempDir(), key, nil)
	cfg.Secret[0] ^= 0xff
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx, nodes[0].c.ID(), nodes[0].c.PublicAddr()); err == nil {
		t.Fatal("node with a wrong secret connected")
	}
	if err := nodes[0].c.Connect(ctx, c.ID(), c.PublicAddr()); err == nil {
		t.Fatal("connected to a node with a wrong secret")
	}
	// connecting to the right address with the wrong expected ID fails too
	if err := nodes[0].c.Connect(ctx, c.ID(), nodes[1].c.PublicAddr()); err == nil {
		t.Fatal("connected to a node that is not the one asked for")
	}
	time.Sleep(300 * time.Millisecond)
	for _, s := range nodes[0].c.Status() {
		if s.ID == c.ID() && s.Up {
			t.Fatal("wrong-secret node reported up")
		}
	}
}

// TestMissedPingsMarkDown: a peer that stops answering without its
// connection closing is marked down after the missed pings, and up again
// when the link heals.
func TestMissedPingsMarkDown(t *testing.T) {
	fn := clustertest.NewFaultNet()
	nodes := startTestCluster(t, 2, func() Network { return fn.Host() })
	a, b := nodes[0].c, nodes[1].c
	all := map[NodeID]bool{a.ID(): true, b.ID(): true}
	eventually(t, 10*time.Second, "connected", func() error { return upCount(a, all) })
	fn.Partition([]string{a.PublicAddr()}, []string{b.PublicAddr()})
	all[b.ID()] = false
	d := eventually(t, 10*time.Second, "silent peer down", func() error {
		for _, s := range a.Status() {
			if s.ID == b.ID() && s.Up {
				return errors.New("still up")
			}
		}
		return nil
	})
	t.Logf("silent peer down after %v", d)
	fn.Heal()
	all[b.ID()] = true
	eventually(t, 15*time.Second, "healed peer up", func() error { return upCount(a, all) })
}

func TestRPCDisabled(t *testing.T) {
	key, _ := GenerateNodeKey()
	c, err := New(Config{MetadataDir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RPCEnabled() {
		t.Fatal("RPC enabled without a secret")
	}
	if err := c.Connect(context.Background(), NodeID{1}, "127.0.0.1:1"); !errors.Is(err, ErrRPCDisabled) {
		t.Fatalf("Connect = %v", err)
	}
	// layout operations work alone
	if _, err := c.UpdateLayout(func(h *layout.History) error {
		return h.StageRole(c.ID(), &layout.Role{Zone: "z", CapacityBytes: 1 << 30}, 1)
	}); err != nil {
		t.Fatal(err)
	}
	// and persist
	c.Close()
	c2, err := New(Config{MetadataDir: c.cfg.MetadataDir, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if !c2.History().HasStagedChanges() {
		t.Fatal("staged role lost across restart")
	}
	// a replication factor other than the layout's is refused
	if _, err := c2.UpdateLayout(func(h *layout.History) error { _, err := h.Apply(1, 2); return err }); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{MetadataDir: c.cfg.MetadataDir, Key: key, ReplicationFactor: 2}); err == nil {
		t.Fatal("replication factor change accepted")
	}
}

func TestParsePeer(t *testing.T) {
	id := NodeID{0xab}
	if got, addr, err := ParsePeer(id.String() + "@10.0.0.1:3901"); err != nil || got != id || addr != "10.0.0.1:3901" {
		t.Fatalf("ParsePeer = %v %q %v", got, addr, err)
	}
	for _, bad := range []string{"", "abc", id.String(), id.String() + "@nohost", "zz@1.2.3.4:1", id.String()[:10] + "@1.2.3.4:1"} {
		if _, _, err := ParsePeer(bad); err == nil {
			t.Errorf("ParsePeer(%q) accepted", bad)
		}
	}
}
