package bench

import (
	"context"
	"testing"
	"time"
)

// The comparison of `grange bench k2v-cluster`, with short measurements:
// one node, then three processes with replication factor 3, clients
// spread over them.
//
//	go test ./bench -run K2VCluster -v
func TestK2VCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grange and runs 4 server processes")
	}
	ctx := context.Background()
	bin, err := BuildGrange(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunK2VCluster(ctx, K2VClusterConfig{
		Cluster: LocalClusterConfig{Binary: bin, Dir: t.TempDir(), Logf: t.Logf},
		Nodes:   3,
		Workload: K2VConfig{
			Ops: []string{"insert", "read"}, Concurrency: 16, Duration: 500 * time.Millisecond,
			Partitions: 20, ItemsPerPartition: 50,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rounds) != 1 {
		t.Fatalf("%d rounds, want 1", len(res.Rounds))
	}
	rd := res.Rounds[0]
	if len(rd.Single) != 2 || len(rd.Cluster) != 2 {
		t.Fatalf("%d single-node and %d cluster results, want 2 and 2", len(rd.Single), len(rd.Cluster))
	}
	for _, r := range rd.Single {
		t.Logf("1 node:  %s", r)
		if r.Ops == 0 || r.Errors > 0 {
			t.Errorf("1 node: %s", r)
		}
	}
	for _, r := range rd.Cluster {
		t.Logf("3 nodes: %s", r)
		switch {
		case r.Ops == 0:
			t.Errorf("3 nodes: %s", r)
		case r.Errors > 0 && res.ProvisionedPerNode:
			// Catalogs that do not replicate: each node has its own
			// bucket, so reads through one node miss what was loaded
			// through another.
			t.Logf("3 nodes: %d errors, expected while the catalog is not replicated", r.Errors)
		case r.Errors > 0:
			t.Errorf("3 nodes: %s", r)
		}
	}
	for _, op := range []string{"insert", "read"} {
		t.Logf("%s: 3 nodes / 1 node = %.2f", op, res.Ratio(op))
	}
}
