package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// K2VClusterConfig configures RunK2VCluster. A zero field means its
// default.
type K2VClusterConfig struct {
	// Cluster sets the servers of both clusters (Binary is required);
	// its Nodes is ignored. A given Dir holds the two clusters in
	// Dir/1-node and Dir/N-nodes.
	Cluster LocalClusterConfig
	// Nodes is the size (and replication factor) of the cluster compared
	// with one node; default 3.
	Nodes int
	// Rounds repeats the comparison, each round on fresh clusters; default
	// 1. On a shared machine a burst of other work can hit one half of a
	// round: the median ratio over several rounds resists it.
	Rounds int
	// Workload is run unchanged against both clusters; its endpoints and
	// credentials are replaced by each cluster's. Defaults differ from
	// RunK2V's: Ops insert and read, Duration 5s.
	Workload K2VConfig
}

// K2VClusterResult holds the figures of one RunK2VCluster.
type K2VClusterResult struct {
	Nodes  int
	Rounds []K2VClusterRound
	// ProvisionedPerNode: the cluster's catalogs did not replicate the
	// benchmark key and bucket (see LocalCluster).
	ProvisionedPerNode bool
}

// K2VClusterRound is one measurement on one node and then on the cluster.
type K2VClusterRound struct {
	// Single is measured on one node (replication factor 1), Cluster on
	// Nodes nodes, each client bound to one of them round-robin. Both ran
	// the same operations in the same order.
	Single, Cluster []Result
}

// Ratio returns the median over the rounds of the cluster's throughput
// of op over the single node's; 0 when op was not measured.
func (r *K2VClusterResult) Ratio(op string) float64 {
	var ratios []float64
	for _, rd := range r.Rounds {
		if x := rd.Ratio(op); x > 0 {
			ratios = append(ratios, x)
		}
	}
	if len(ratios) == 0 {
		return 0
	}
	slices.Sort(ratios)
	if n := len(ratios); n%2 == 0 {
		return (ratios[n/2-1] + ratios[n/2]) / 2
	}
	return ratios[len(ratios)/2]
}

// Ratio returns the cluster's throughput of op over the single node's; 0
// when either was not measured.
func (r *K2VClusterRound) Ratio(op string) float64 {
	var single, cluster float64
	for _, s := range r.Single {
		if s.Op == op {
			single = s.OpsPerSec
		}
	}
	for _, c := range r.Cluster {
		if c.Op == op {
			cluster = c.OpsPerSec
		}
	}
	if single == 0 {
		return 0
	}
	return cluster / single
}

// RunK2VCluster measures the workload on a one-node cluster and then on a
// cluster of cfg.Nodes nodes with replication factor cfg.Nodes, both
// started from scratch with StartLocalCluster and stopped after their
// measurement, so that the two figures come from one run on the same
// machine. Both are configured clusters (RPC on, layout applied with the
// CLI): they differ only by their number of nodes.
func RunK2VCluster(ctx context.Context, cfg K2VClusterConfig) (*K2VClusterResult, error) {
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if len(cfg.Workload.Ops) == 0 {
		cfg.Workload.Ops = []string{"insert", "read"}
	}
	if cfg.Workload.Duration <= 0 {
		cfg.Workload.Duration = 5 * time.Second
	}
	res := &K2VClusterResult{Nodes: cfg.Nodes}
	for round := range max(cfg.Rounds, 1) {
		res.Rounds = append(res.Rounds, K2VClusterRound{})
		rd := &res.Rounds[round]
		for _, n := range []int{1, cfg.Nodes} {
			lcfg := cfg.Cluster
			lcfg.Nodes = n
			if cfg.Cluster.Dir != "" {
				lcfg.Dir = filepath.Join(cfg.Cluster.Dir, fmt.Sprintf("round%d-%dnode", round+1, n))
			}
			results, perNode, err := runOnLocalCluster(ctx, lcfg, cfg.Workload)
			if n == 1 {
				rd.Single = results
			} else {
				rd.Cluster = results
				res.ProvisionedPerNode = res.ProvisionedPerNode || perNode
			}
			if err != nil {
				return res, fmt.Errorf("round %d, %d-node cluster: %w", round+1, n, err)
			}
		}
	}
	return res, nil
}

func runOnLocalCluster(ctx context.Context, lcfg LocalClusterConfig, w K2VConfig) (_ []Result, perNode bool, err error) {
	lc, err := StartLocalCluster(ctx, lcfg)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if cerr := lc.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	c := lc.K2VConfig()
	w.Endpoint, w.Endpoints, w.Region = "", c.Endpoints, c.Region
	w.Bucket, w.AccessKeyID, w.SecretAccessKey = c.Bucket, c.AccessKeyID, c.SecretAccessKey
	results, err := RunK2V(ctx, w)
	return results, lc.ProvisionedPerNode, err
}
