package node

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/valyala/fasthttp"

	k2vc "github.com/grangeio/grange/clients/k2v"
	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/clustertest"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/k2v"
)

// handlerTransport is an http.RoundTripper that serves requests with a
// fasthttp handler in the calling goroutine: the K2V API of a node without
// a socket, so that it runs inside a synctest bubble.
type handlerTransport struct {
	h fasthttp.RequestHandler
}

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	var req fasthttp.Request
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.URL.RequestURI())
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	req.Header.SetHost(host)
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if len(body) > 0 {
		req.SetBody(body)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000}, nil)
	t.h(&ctx)
	resp := &http.Response{
		Status:     strconv.Itoa(ctx.Response.StatusCode()) + " " + http.StatusText(ctx.Response.StatusCode()),
		StatusCode: ctx.Response.StatusCode(),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Request:    r,
	}
	for k, v := range ctx.Response.Header.All() {
		resp.Header.Add(string(k), string(v))
	}
	out := bytes.Clone(ctx.Response.Body())
	resp.ContentLength = int64(len(out))
	resp.Body = io.NopCloser(bytes.NewReader(out))
	return resp, nil
}

// bubbleClient is a K2V client of bucket "app" that calls n's K2V handler
// directly.
func bubbleClient(t *testing.T, n *Node) *k2vc.Client {
	t.Helper()
	c, err := k2vc.New(k2vc.Config{
		Endpoint:        "http://k2v.test",
		AccessKeyID:     testKey,
		SecretAccessKey: testSecret,
		Bucket:          "app",
		HTTPClient:      &http.Client{Transport: handlerTransport{n.K2VHandler()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRoundTrips is the acceptance test "Round trips": with 50 ms one-way
// between zones, InsertItem, ReadItem and ReadBatch at a storage node of
// the items' partitions complete in one round trip to the nearest other
// replica once the replicas agree. A request at a node that is no replica
// of the partition is reported for contrast: an insert there costs a
// forward to a replica and that replica's round trip.
func TestRoundTrips(t *testing.T) {
	for _, intra := range []time.Duration{time.Millisecond, 0} {
		t.Run(fmt.Sprintf("intra=%v", intra), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { testRoundTrips(t, intra) })
		})
	}
}

func testRoundTrips(t *testing.T, intra time.Duration) {
	const inter = 50 * time.Millisecond
	zones := []string{"dc1", "dc1", "dc2", "dc2", "dc3"}

	var mu sync.Mutex
	zoneOfAddr := map[string]string{}
	mn := clustertest.NewMemNet(func(from, to string) time.Duration {
		mu.Lock()
		defer mu.Unlock()
		zf, zt := zoneOfAddr[from], zoneOfAddr[to]
		if zf != "" && zf == zt {
			return intra
		}
		return inter
	})
	latency := func(a, b string) time.Duration {
		if a == b {
			return intra
		}
		return inter
	}

	var nodes []*Node
	for i, zone := range zones {
		host := mn.Host()
		cfg := Config{
			MetadataDir:       t.TempDir(),
			DataDir:           t.TempDir(),
			FS:                k2v.NewMemFS(),
			NoMetadataFsync:   true,
			NoDataFsync:       true,
			ReplicationFactor: 3,
			RPCSecret:         [32]byte{1},
			RPCBindAddr:       "127.0.0.1:0",
			Network:           host,
			Cluster:           cluster.Config{PingInterval: 200 * time.Millisecond},
		}
		if i == 0 {
			cfg.DefaultAccessKey, cfg.DefaultSecretKey, cfg.DefaultBucket = testKey, testSecret, "app"
		} else {
			cfg.BootstrapPeers = []string{nodes[0].ID().String() + "@" + nodes[0].Cluster().PublicAddr()}
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(context.Background()) })
		mu.Lock()
		zoneOfAddr[host.Addr()] = zone
		mu.Unlock()
		nodes = append(nodes, n)
	}
	zoneOf := map[cluster.NodeID]string{}
	for i, n := range nodes {
		zoneOf[n.ID()] = zones[i]
	}

	if _, err := nodes[0].Cluster().UpdateLayout(func(h *layout.History) error {
		now := uint64(time.Now().UnixMilli())
		for i, n := range nodes {
			if err := h.StageRole(n.ID(), &layout.Role{Zone: zones[i], CapacityBytes: 1 << 40}, now); err != nil {
				return err
			}
		}
		_, err := h.Apply(h.Current().Version+1, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	var bucket k2v.BucketID
	for {
		synctest.Wait()
		err := func() error {
			for _, n := range nodes {
				for _, o := range nodes {
					if !n.Cluster().IsUp(o.ID()) {
						return fmt.Errorf("node %s sees %s down", n.ID().Short(), o.ID().Short())
					}
				}
				h := n.Cluster().History()
				if h.Current().Version != 1 || h.MinSync() != 1 {
					return fmt.Errorf("node %s: version %d, min sync %d", n.ID().Short(), h.Current().Version, h.MinSync())
				}
				b, err := n.Catalog().LookupAlias("app")
				if err != nil {
					return fmt.Errorf("node %s: bucket: %w", n.ID().Short(), err)
				}
				bucket = b
			}
			return nil
		}()
		if err == nil {
			break
		}
		if time.Since(start) > time.Hour {
			t.Fatalf("cluster not ready after an hour of fake time: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("mesh, layout synced and bucket everywhere after %v of fake time", time.Since(start))
	// let the last pings and anti-entropy calls settle, so that the
	// measured requests share the network with nothing else
	time.Sleep(time.Second)
	synctest.Wait()

	// The layout may leave a node of a two-node zone without partitions:
	// it then serves as a gateway only.
	held := map[cluster.NodeID]int{}
	for p := range 256 {
		for _, id := range nodes[0].Cluster().Layout().Replicas(cluster.Partition(p)) {
			held[id]++
		}
	}
	for i, n := range nodes {
		t.Logf("node %d %s (%s): replica of %d partitions", i, n.ID().Short(), zones[i], held[n.ID()])
	}
	replicasOf := func(pk string) []cluster.NodeID {
		return nodes[0].Cluster().Layout().Replicas(k2v.ItemPartition(bucket, pk))
	}
	// nearestRTT is the round trip from s to the nearest other node of set.
	nearestRTT := func(s cluster.NodeID, set []cluster.NodeID) time.Duration {
		best := time.Duration(-1)
		for _, id := range set {
			if id == s {
				continue
			}
			if d := 2 * latency(zoneOf[s], zoneOf[id]); best < 0 || d < best {
				best = d
			}
		}
		return best
	}
	// pks returns n partition keys whose replicas include (or, with !in,
	// exclude) s.
	pks := func(s cluster.NodeID, in bool, n int) []string {
		var out []string
		for i := 0; len(out) < n; i++ {
			if i == 100000 {
				t.Fatalf("no partition key found with node %s in replicas = %v", s.Short(), in)
			}
			pk := fmt.Sprintf("%s-%v-%d", s.Short(), in, i)
			if slices.Contains(replicasOf(pk), s) == in {
				out = append(out, pk)
			}
		}
		return out
	}
	// measure runs op and returns the fake time it took, after letting
	// background work (replication to the last replica) settle.
	measure := func(what string, op func() error) time.Duration {
		t.Helper()
		synctest.Wait()
		t0 := time.Now()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		d := time.Since(t0)
		synctest.Wait()
		return d
	}
	const slack = 3 * time.Millisecond
	check := func(what string, got, want time.Duration) {
		t.Helper()
		t.Logf("%s: %v (one round trip to the nearest other replica: %v)", what, got, want)
		if got < want || got > want+slack {
			t.Errorf("%s took %v of fake time, want one round trip to the nearest other replica, %v (+%v)", what, got, want, slack)
		}
	}
	ctx := context.Background()

	storage := 0
	for i, s := range nodes {
		if held[s.ID()] == 0 {
			continue
		}
		storage++
		c := bubbleClient(t, s)
		keys := pks(s.ID(), true, 3)
		rtt := nearestRTT(s.ID(), replicasOf(keys[0]))
		for _, pk := range keys[1:] {
			if r := nearestRTT(s.ID(), replicasOf(pk)); r > rtt {
				rtt = r
			}
		}
		name := fmt.Sprintf("node %d (%s)", i, zones[i])

		// first insert of an item, then an overwrite with its token
		check(name+" InsertItem new", measure("insert", func() error {
			return c.InsertItem(ctx, keys[0], "a", []byte("v1"), "")
		}), nearestRTT(s.ID(), replicasOf(keys[0])))
		var it *k2vc.Item
		check(name+" ReadItem", measure("read", func() (err error) {
			it, err = c.ReadItem(ctx, keys[0], "a")
			return err
		}), nearestRTT(s.ID(), replicasOf(keys[0])))
		if got := values(it); got != "v1" {
			t.Fatalf("read %q, want v1", got)
		}
		check(name+" InsertItem overwrite", measure("overwrite", func() error {
			return c.InsertItem(ctx, keys[0], "a", []byte("v2"), it.CausalityToken)
		}), nearestRTT(s.ID(), replicasOf(keys[0])))
		for _, pk := range keys[1:] {
			for _, sk := range []string{"a", "b", "c"} {
				if err := c.InsertItem(ctx, pk, sk, []byte(pk+sk), ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		var res []k2vc.SearchResult
		check(name+" ReadBatch", measure("read batch", func() (err error) {
			res, err = c.ReadBatch(ctx, []k2vc.Search{
				{PartitionKey: keys[0]},
				{PartitionKey: keys[1]},
				{PartitionKey: keys[2], Prefix: "b"},
				{PartitionKey: keys[1], Start: "c", SingleItem: true},
			})
			return err
		}), rtt)
		if len(res) != 4 || len(res[0].Items) != 1 || values(&res[0].Items[0]) != "v2" ||
			len(res[1].Items) != 3 || len(res[2].Items) != 1 || len(res[3].Items) != 1 {
			t.Fatalf("read batch: unexpected result %+v", res)
		}

	}

	if storage < 3 {
		t.Fatalf("only %d storage nodes measured", storage)
	}

	// Contrast, reported only: at a node that is no replica of the
	// partition an insert is forwarded to the preferred replica, which
	// stamps it and replicates it: two round trips.
	for i, g := range nodes {
		if held[g.ID()] == 256 {
			continue // a replica of every partition
		}
		c := bubbleClient(t, g)
		pk := pks(g.ID(), false, 1)[0]
		reps := replicasOf(pk)
		to := g.Cluster().Preferred(reps)[0]
		fwd := 2 * latency(zones[i], zoneOf[to])
		name := fmt.Sprintf("node %d (%s), no replica of the partition", i, zones[i])
		d := measure("gateway insert", func() error { return c.InsertItem(ctx, pk, "g", []byte("x"), "") })
		t.Logf("%s: InsertItem %v (forward to %s in %s: %v, then its nearest other replica: %v)",
			name, d, to.Short(), zoneOf[to], fwd, nearestRTT(to, reps))
		if want := fwd + nearestRTT(to, reps); d < want {
			t.Errorf("%s: InsertItem took %v, less than forward + replicate, %v", name, d, want)
		}
		d = measure("gateway read", func() error { _, err := c.ReadItem(ctx, pk, "g"); return err })
		t.Logf("%s: ReadItem %v (asks the replicas itself: a read quorum of 2 waits for the second nearest)", name, d)
		d = measure("gateway read batch", func() error {
			_, err := c.ReadBatch(ctx, []k2vc.Search{{PartitionKey: pk}, {PartitionKey: pk, Prefix: "g"}})
			return err
		})
		t.Logf("%s: ReadBatch %v", name, d)
	}
}
