package nodetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cmd/grange/node"
	"github.com/grangeio/grange/k2v"
)

// A quorum read must not merge copies read at different moments into a
// state that never existed. Three nodes, RF 3; node a reads from itself
// and from r, its preferred other replica, whose request is delayed:
//
//   - the item holds v0 everywhere; a starts reading it (its own copy, v0,
//     at once; r's a second later);
//   - w1, with v0's token, replaces v0 through o, reaching a and o but not
//     r (o → r dropped);
//   - w2, with no token, is written through r, which still holds v0: r
//     now holds v0 and w2 side by side;
//   - r's copy reaches a: merged with a's early v0, it gives [v0, w2], a
//     state that never existed, since w1 had replaced v0 before w2 began.
//
// The read must answer [w1, w2] (a holds it once repaired; so does r).
func TestReadNeverMergesAcrossTime(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const delay = 1500 * time.Millisecond
	c := Start(t, Options{Nodes: 3, RF: 3, Configure: func(i int, cfg *node.Config) {
		// the delayed link must not look down
		cfg.Cluster.PingTimeout = 10 * time.Second
	}})
	ctx := context.Background()
	const a = 0
	if err := c.Client(a).InsertItem(ctx, "p", "s", []byte("v0"), ""); err != nil {
		t.Fatal(err)
	}
	c.Eventually("v0 on every replica", func() error {
		for i := range c.Len() {
			if _, err := localValues(c, i, "p", "s", []string{"v0"}); err != nil {
				return err
			}
		}
		return nil
	})
	v0, err := c.Client(a).ReadItem(ctx, "p", "s")
	if err != nil {
		t.Fatal(err)
	}
	// r: the replica a's read asks besides a; o: the other one
	others := []cluster.NodeID{c.ID(1), c.ID(2)}
	r, o := 1, 2
	if c.Node(a).Cluster().Preferred(others)[0] == c.ID(2) {
		r, o = 2, 1
	}
	c.Net.SetDelay(c.RPCAddr(a), c.RPCAddr(r), delay)
	c.Net.SetDrop(c.RPCAddr(o), c.RPCAddr(r), true)
	defer c.Net.SetDelay(c.RPCAddr(a), c.RPCAddr(r), 0)

	type result struct {
		it  *k2vc.Item
		err error
	}
	read := make(chan result, 1)
	start := time.Now()
	go func() {
		it, err := c.Client(a).ReadItem(ctx, "p", "s")
		read <- result{it, err}
	}()
	time.Sleep(delay / 6) // a has read its own copy
	if err := c.Client(o).InsertItem(ctx, "p", "s", []byte("w1"), v0.CausalityToken); err != nil {
		t.Fatal(err)
	}
	if _, err := localValues(c, a, "p", "s", []string{"w1"}); err != nil {
		t.Fatalf("w1 acknowledged: %v", err)
	}
	// w2 is stamped by r at once; its quorum waits for a's answer,
	// delayed like everything a sends r
	w2 := make(chan error, 1)
	go func() { w2 <- c.Client(r).InsertItem(ctx, "p", "s", []byte("w2"), "") }()
	c.Eventually("w2 stamped by r next to v0", func() error {
		_, err := localValues(c, r, "p", "s", []string{"v0", "w2"})
		return err
	})
	if e := time.Since(start); e > delay*3/4 {
		t.Skipf("the machine is too slow for this test: the writes took %v, more than the %v the read waits for r", e, delay)
	}
	res := <-read
	if res.err != nil {
		t.Fatal(res.err)
	}
	if got := values(res.it); !slices.Equal(got, []string{"w1", "w2"}) {
		t.Fatalf("read answered %q; want [w1 w2] (v0 was replaced by w1 before w2 began)", got)
	}
	if err := <-w2; err != nil {
		t.Fatal(err)
	}
}

// localValues checks the values node i holds itself under (pk, sk),
// sorted, against want.
func localValues(c *Cluster, i int, pk, sk string, want []string) ([]string, error) {
	n := c.Node(i)
	bucket, err := n.Catalog().LookupAlias(Bucket)
	if err != nil {
		return nil, err
	}
	t := n.Items().Table()
	var got []string
	err = t.ScanPartition(k2v.ItemPartition(bucket, pk), nil, func(_, v []byte) (bool, error) {
		it, err := t.Decode(v)
		if err != nil {
			return false, err
		}
		if it.Bucket == bucket && it.Partition == pk && it.Sort == sk {
			for _, v := range it.Values() {
				got = append(got, string(v.Data))
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return got, fmt.Errorf("node %d holds %q, want %q", i, got, want)
	}
	return got, nil
}

func values(it *k2vc.Item) []string {
	var out []string
	for _, v := range it.Values {
		out = append(out, string(v.Data))
	}
	slices.Sort(out)
	return out
}
