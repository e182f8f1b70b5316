// Package nodetest runs in-process clusters of whole grange nodes
// (node.Node: pebble, RPC, K2V and admin APIs on 127.0.0.1) for tests:
// start, kill, restart, wipe and replace nodes, change the layout, inject
// network faults through a clustertest.FaultNet, and record and check K2V
// histories (history.go, check.go, workload.go).
package nodetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/clustertest"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/cmd/grange/node"
	"github.com/grangeio/grange/k2v"
)

// Credentials and bucket provisioned on every node.
const (
	AccessKey = "GK000000000000000000000001"
	SecretKey = "0000000000000000000000000000000000000000000000000000000000000001"
	Bucket    = "app"
)

// Options configures Start. Zero fields take the defaults noted.
type Options struct {
	// Nodes is the number of nodes (default 3).
	Nodes int
	// Zones are given to the nodes round-robin (default dc1, dc2, dc3).
	Zones []string
	// RF is the replication factor (default min(3, Nodes)).
	RF int
	// Capacity of each node's role (default 1 TiB).
	Capacity uint64
	// Net carries RPC between nodes (default a new FaultNet).
	Net *clustertest.FaultNet
	// LogLevel of the nodes' logs, written to t.Output() (default Warn).
	LogLevel slog.Level
	// Configure, if set, adjusts each node's configuration before it
	// starts (i is the node's index).
	Configure func(i int, cfg *node.Config)
}

// Cluster is a running in-process cluster. Its methods fail the test on
// error and must be called from the test goroutine.
type Cluster struct {
	t      testing.TB
	opts   Options
	secret [32]byte
	// Net is the network between the nodes: partition and delay it.
	Net *clustertest.FaultNet

	// mu guards nodes and each member's n and client, which workers read
	// (Client, Alive, Node) while the test kills and restarts nodes.
	mu    sync.Mutex
	nodes []*member
	// started is set once the first node made the shared bucket: later
	// nodes get it, like every catalog entry, from the others.
	started bool
}

// member is one slot of the cluster; a slot keeps its ports across
// restarts so that peers and clients reach the restarted node.
type member struct {
	dir     string
	host    *clustertest.FaultHost
	zone    string
	n       *node.Node // nil while killed
	id      cluster.NodeID
	rpcAddr string
	k2vAddr string
	admin   string
	client  *k2vc.Client
}

// Start starts opts.Nodes nodes, connects them into a full mesh, assigns
// every node a zone and capacity, applies the layout and waits until every
// node has it.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{"dc1", "dc2", "dc3"}
	}
	if opts.RF == 0 {
		opts.RF = min(3, opts.Nodes)
	}
	if opts.Capacity == 0 {
		opts.Capacity = 1 << 40
	}
	if opts.Net == nil {
		opts.Net = clustertest.NewFaultNet()
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
	}
	c := &Cluster{t: t, opts: opts, Net: opts.Net}
	rand.Read(c.secret[:])
	// the test's temporary directory first: cleanups run last-in
	// first-out, so the nodes close before their directories go
	t.TempDir()
	t.Cleanup(c.closeAll)
	for i := range opts.Nodes {
		c.startNew(opts.Zones[i%len(opts.Zones)])
	}
	c.WaitMesh()
	for i := range opts.Nodes {
		c.Assign(i, c.nodes[i].zone, opts.Capacity)
	}
	c.WaitLayout(c.Apply())
	c.started = true
	c.Eventually("the shared bucket on every node", func() error {
		for i := range opts.Nodes {
			if _, err := c.Node(i).Catalog().LookupAlias(Bucket); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		return nil
	})
	return c
}

// Len is the number of slots (killed nodes included).
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Node returns node i, or nil while it is killed. Tests reach the node's
// accessors through it (Cluster(), Catalog(), ...); comparing replicas
// will go through here once tables replicate.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].n
}

// ID returns the ID of node i (its last identity if killed).
func (c *Cluster) ID(i int) cluster.NodeID { return c.nodes[i].id }

// RPCAddr returns node i's RPC address: its name on Net.
func (c *Cluster) RPCAddr(i int) string { return c.nodes[i].rpcAddr }

// K2VAddr returns node i's K2V API address.
func (c *Cluster) K2VAddr(i int) string { return c.nodes[i].k2vAddr }

// Alive reports whether node i runs.
func (c *Cluster) Alive(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].n != nil
}

// Client returns a K2V client of the shared bucket on node i's K2V API.
// It stays valid across restarts of node i (same port).
func (c *Cluster) Client(i int) *k2vc.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.nodes[i]
	if m.client == nil {
		cl, err := k2vc.New(k2vc.Config{Endpoint: "http://" + m.k2vAddr, AccessKeyID: AccessKey, SecretAccessKey: SecretKey, Bucket: Bucket})
		if err != nil {
			c.t.Fatal(err)
		}
		m.client = cl
	}
	return m.client
}

// AddNode starts a new node in zone, joins it to the mesh and stages its
// role with the default capacity; Apply makes it a storage node. It
// returns the node's index.
func (c *Cluster) AddNode(zone string) int {
	c.t.Helper()
	i := c.startNew(zone)
	c.WaitMesh()
	c.Assign(i, zone, c.opts.Capacity)
	return i
}

func (c *Cluster) startNew(zone string) int {
	c.t.Helper()
	m := &member{dir: c.tempDir(), host: c.Net.Host(), zone: zone, rpcAddr: "127.0.0.1:0", k2vAddr: "127.0.0.1:0", admin: "127.0.0.1:0"}
	c.mu.Lock()
	c.nodes = append(c.nodes, m)
	i := len(c.nodes) - 1
	c.mu.Unlock()
	c.start(i)
	return i
}

func (c *Cluster) tempDir() string {
	dir, err := os.MkdirTemp(c.t.TempDir(), "node")
	if err != nil {
		c.t.Fatal(err)
	}
	return dir
}

// start starts slot i's node on its directory and ports, bootstrapping
// from every live node.
func (c *Cluster) start(i int) {
	c.t.Helper()
	m := c.nodes[i]
	var boot []string
	for j, o := range c.nodes {
		if j != i && o.n != nil {
			boot = append(boot, o.id.String()+"@"+o.rpcAddr)
		}
	}
	cfg := node.Config{
		MetadataDir:       m.dir,
		DataDir:           filepath.Join(m.dir, "data"),
		NoMetadataFsync:   true,
		NoDataFsync:       true,
		ReplicationFactor: c.opts.RF,
		RPCSecret:         c.secret,
		RPCBindAddr:       m.rpcAddr,
		BootstrapPeers:    boot,
		Network:           m.host,
		Cluster: cluster.Config{
			PingInterval:     200 * time.Millisecond,
			PingTimeout:      300 * time.Millisecond,
			ExchangeInterval: 500 * time.Millisecond,
			MaxRedialDelay:   500 * time.Millisecond,
		},
		K2VAddr:          m.k2vAddr,
		AdminAddr:        m.admin,
		AdminToken:       "nodetest-admin-token",
		DefaultAccessKey: AccessKey,
		DefaultSecretKey: SecretKey,
		Replication: k2v.ReplicatorConfig{
			SyncInterval:   2 * time.Second,
			RetryInterval:  200 * time.Millisecond,
			RequestTimeout: 3 * time.Second,
			// Longer than the workloads: a tombstone collected while a
			// write lands on the item may reappear as a concurrent null
			// (see collectPartition), which the item model rejects.
			GCDelay: 2 * time.Minute,
		},
		Logger: slog.New(slog.NewTextHandler(c.t.Output(), &slog.HandlerOptions{Level: c.opts.LogLevel})).With("slot", i),
	}
	if !c.started && i == 0 {
		cfg.DefaultBucket = Bucket
	}
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		c.t.Fatalf("node %d: %v", i, err)
	}
	if err := n.Start(); err != nil {
		n.Close(context.Background())
		c.t.Fatalf("node %d: %v", i, err)
	}
	c.mu.Lock()
	m.n, m.id = n, n.ID()
	m.rpcAddr = n.Cluster().ListenAddr()
	m.k2vAddr, m.admin = n.K2VAddr(), n.AdminAddr()
	c.mu.Unlock()
}

// Kill stops node i at once: its listeners close and requests in progress
// are cut (Close with an expired context).
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	m := c.nodes[i]
	c.mu.Unlock()
	if m.n == nil {
		return
	}
	c.mu.Lock()
	n := m.n
	m.n = nil
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n.Close(ctx)
}

// Restart starts killed node i again on the same directory and ports
// (killing it first if it runs), and waits until it is back in the mesh.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.Kill(i)
	c.start(i)
	c.WaitMesh()
}

// WipeData kills node i, deletes its metadata directory but its node key
// (the layout, the peer list and the database go), and restarts it: the
// same identity comes back empty.
func (c *Cluster) WipeData(i int) {
	c.t.Helper()
	c.Kill(i)
	m := c.nodes[i]
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "node_key" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(m.dir, e.Name())); err != nil {
			c.t.Fatal(err)
		}
	}
	c.start(i)
	c.WaitMesh()
}

// Replace kills node i for good and starts a brand-new node (new identity,
// empty directory) in its slot, on its ports and in its zone. It stages
// the removal of the old node and the role of the new one; Apply makes it
// so.
func (c *Cluster) Replace(i int) {
	c.t.Helper()
	c.Kill(i)
	m := c.nodes[i]
	old := m.id
	m.dir = c.tempDir()
	c.start(i)
	c.WaitMesh()
	c.update(func(h *layout.History) error {
		now := uint64(time.Now().UnixMilli())
		if err := h.StageRole(old, nil, now); err != nil {
			return err
		}
		return h.StageRole(m.id, &layout.Role{Zone: m.zone, CapacityBytes: c.opts.Capacity}, now)
	})
}

// Assign stages a role for node i.
func (c *Cluster) Assign(i int, zone string, capacity uint64) {
	c.t.Helper()
	c.nodes[i].zone = zone
	id := c.nodes[i].id
	c.update(func(h *layout.History) error {
		return h.StageRole(id, &layout.Role{Zone: zone, CapacityBytes: capacity}, uint64(time.Now().UnixMilli()))
	})
}

// Remove stages the removal of node i from the layout.
func (c *Cluster) Remove(i int) {
	c.t.Helper()
	id := c.nodes[i].id
	c.update(func(h *layout.History) error { return h.StageRole(id, nil, uint64(time.Now().UnixMilli())) })
}

// Apply applies the staged changes at a live node and returns the new
// layout version.
func (c *Cluster) Apply() uint64 {
	c.t.Helper()
	var v uint64
	c.update(func(h *layout.History) error {
		v = h.Current().Version + 1
		_, err := h.Apply(v, uint64(time.Now().UnixMilli()))
		return err
	})
	return v
}

// update changes the layout history at the first live node.
func (c *Cluster) update(fn func(*layout.History) error) {
	c.t.Helper()
	n := c.anyLive()
	if _, err := n.Cluster().UpdateLayout(fn); err != nil {
		c.t.Fatalf("layout: %v", err)
	}
}

func (c *Cluster) anyLive() *node.Node {
	c.t.Helper()
	for _, m := range c.nodes {
		if m.n != nil {
			return m.n
		}
	}
	c.t.Fatal("no live node")
	return nil
}

// Timeout bounds every wait of the harness.
const Timeout = 60 * time.Second

// WaitLayout waits until every live node has layout version v or newer.
func (c *Cluster) WaitLayout(v uint64) {
	c.t.Helper()
	c.Eventually("layout version "+fmt.Sprint(v), func() error {
		for i, m := range c.nodes {
			if m.n == nil {
				continue
			}
			if got := m.n.Cluster().Layout().Version; got < v {
				return fmt.Errorf("node %d has layout version %d", i, got)
			}
		}
		return nil
	})
}

// WaitMesh waits until every live node sees every other live node up.
func (c *Cluster) WaitMesh() {
	c.t.Helper()
	c.Eventually("full mesh", func() error {
		for i, m := range c.nodes {
			if m.n == nil {
				continue
			}
			for j, o := range c.nodes {
				if o.n != nil && !m.n.Cluster().IsUp(o.id) {
					return fmt.Errorf("node %d does not see node %d up", i, j)
				}
			}
		}
		return nil
	})
}

// Eventually polls cond every 20 ms until it returns nil, failing the
// test after Timeout.
func (c *Cluster) Eventually(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not after %v: %v", what, Timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closeAll stops every node and client (test cleanup).
func (c *Cluster) closeAll() {
	var errs []error
	for i := len(c.nodes) - 1; i >= 0; i-- {
		m := c.nodes[i]
		if m.client != nil {
			m.client.Close()
		}
		if m.n != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, m.n.Close(ctx))
			cancel()
			m.n = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.t.Logf("nodetest: close: %v", err)
	}
}

// WaitSynced waits until every live node knows that every storage node has
// synced layout version v and the older versions are retired: the layout
// change is over.
func (c *Cluster) WaitSynced(v uint64) {
	c.t.Helper()
	c.Eventually("layout version "+fmt.Sprint(v)+" synced", func() error {
		for i := range c.Len() {
			n := c.Node(i)
			if n == nil {
				continue
			}
			h := n.Cluster().History()
			if h.Current().Version < v || h.MinSync() < v || len(h.Versions) > 1 {
				var tr []string
				for id, a := range h.Trackers.Ack {
					tr = append(tr, fmt.Sprintf("%s ack %d sync %d", id.Short(), a, h.Trackers.Sync[id]))
				}
				slices.Sort(tr)
				return fmt.Errorf("node %d: version %d, min ack %d, min sync %d, %d active versions; %s", i, h.Current().Version, h.MinAck(), h.MinSync(), len(h.Versions), strings.Join(tr, ", "))
			}
		}
		return nil
	})
}

// SkipDeadNodes marks the storage nodes that are down as having
// acknowledged and (when they no longer store data) synced version v, as
// grange layout skip-dead-nodes does.
func (c *Cluster) SkipDeadNodes(v uint64) {
	c.t.Helper()
	c.update(func(h *layout.History) error {
		live := map[cluster.NodeID]bool{}
		for i := range c.Len() {
			if c.Alive(i) {
				live[c.ID(i)] = true
			}
		}
		_, _, err := h.SkipDeadNodes(v, func(id cluster.NodeID) bool { return live[id] }, false)
		return err
	})
}
