package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/bench"
	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newBenchCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure a running node"}
	cfg := bench.K2VConfig{}
	var ops string
	k2v := &cobra.Command{
		Use:   "k2v",
		Short: "Measure InsertItem, ReadItem and ReadBatch with concurrent clients",
		Long: `Measure InsertItem, ReadItem and ReadBatch against a running node with
concurrent clients, and report ops/s and latency percentiles.

Without --key, the key "grange-bench" and the bucket "grange-bench" are
created (or reused) through the admin API of the node (found as for the
other verbs: -c FILE, --admin-addr/--admin-token, or a local zero-config
server).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Ops = strings.Split(ops, ",")
			if cfg.AccessKeyID == "" {
				if err := g.benchCredentials(&cfg); err != nil {
					return err
				}
			}
			defer startCPUProfile("bench")()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "K2V at %s, bucket %s, %d clients, %d-byte values, %v per operation\n",
				orDefault(cfg.Endpoint, "http://127.0.0.1:3904"), cfg.Bucket, max(cfg.Concurrency, 16), max(cfg.ValueBytes, 100), cfg.Duration)
			results, err := bench.RunK2V(ctx, cfg)
			for _, r := range results {
				fmt.Fprintln(out, r)
			}
			return err
		},
	}
	f := k2v.Flags()
	f.StringVar(&cfg.Endpoint, "endpoint", "http://127.0.0.1:3904", "K2V API endpoint")
	f.StringVar(&cfg.Region, "region", "garage", "region")
	f.StringVar(&cfg.AccessKeyID, "key", "", "access key ID (default: provision one through the admin API)")
	f.StringVar(&cfg.SecretAccessKey, "secret", os.Getenv("GRANGE_BENCH_SECRET"), "secret key (env GRANGE_BENCH_SECRET)")
	f.StringVar(&cfg.Bucket, "bucket", "grange-bench", "bucket")
	f.StringVar(&ops, "ops", "insert,read,readbatch", "operations to measure, in order")
	f.IntVarP(&cfg.Concurrency, "concurrency", "n", 16, "concurrent clients")
	f.DurationVarP(&cfg.Duration, "duration", "d", 10*time.Second, "measurement time per operation")
	f.IntVar(&cfg.ValueBytes, "value-size", 100, "bytes per inserted value")
	f.IntVar(&cfg.Partitions, "partitions", 100, "partition keys of the data set")
	f.IntVar(&cfg.ItemsPerPartition, "items", 100, "items per partition key of the data set")
	f.IntVar(&cfg.Batch, "batch", 10, "items per ReadBatch")
	cmd.AddCommand(k2v, newBenchK2VClusterCommand())
	return cmd
}

func newBenchK2VClusterCommand() *cobra.Command {
	cfg := bench.K2VClusterConfig{}
	w := &cfg.Workload
	var ops string
	var fsync, verbose bool
	cmd := &cobra.Command{
		Use:   "k2v-cluster",
		Short: "Compare K2V throughput on one node and on a local cluster of N nodes",
		Long: `Start a one-node cluster of grange servers on 127.0.0.1, measure K2V
operations on it, stop it; start a cluster of --nodes servers with
replication factor --nodes, measure the same with the clients spread over
the nodes' K2V APIs (client i talks to node i mod N), stop it; print both
figures and their ratio.

Both clusters are configured the same way (a TOML file per node, RPC on,
layout assigned and applied with this binary's CLI, a key and bucket
created with it) and run this binary as their servers, so they differ only
by their number of nodes. Their files are in a temporary directory removed
at the end, unless --dir is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w.Ops = strings.Split(ops, ",")
			cfg.Cluster.NoMetadataFsync = !fsync
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Cluster.Binary = bin
			out := cmd.OutOrStdout()
			if verbose {
				cfg.Cluster.Logf = func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }
			}
			defer startCPUProfile("bench")()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			fmt.Fprintf(out, "K2V on 1 node, then on %d nodes (replication factor %d) on 127.0.0.1: %d clients, %d-byte values, %v per operation, metadata_fsync = %v\n",
				cfg.Nodes, cfg.Nodes, w.Concurrency, w.ValueBytes, w.Duration, fsync)
			res, err := bench.RunK2VCluster(ctx, cfg)
			if res == nil {
				return err
			}
			printK2VCluster(out, res)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Rounds, "rounds", 1, "repeat the comparison on fresh clusters and report the median ratios")
	f.IntVar(&cfg.Nodes, "nodes", 3, "nodes (and replication factor) of the cluster compared with one node")
	f.StringVar(&ops, "ops", "insert,read", "operations to measure, in order: insert, read, readbatch")
	f.IntVarP(&w.Concurrency, "concurrency", "n", 16, "concurrent clients")
	f.DurationVarP(&w.Duration, "duration", "d", 5*time.Second, "measurement time per operation")
	f.IntVar(&w.ValueBytes, "value-size", 100, "bytes per inserted value")
	f.IntVar(&w.Partitions, "partitions", 100, "partition keys of the data set")
	f.IntVar(&w.ItemsPerPartition, "items", 100, "items per partition key of the data set")
	f.IntVar(&w.Batch, "batch", 10, "items per ReadBatch")
	f.BoolVar(&fsync, "metadata-fsync", true, "metadata_fsync of the servers")
	f.StringVar(&cfg.Cluster.Dir, "dir", "", "keep the clusters' configurations, data and logs in this directory (default: a temporary one, removed)")
	f.StringVar(&cfg.Cluster.LogLevel, "server-log-level", "warn", "log level of the servers (their logs are nodeN.log in the cluster directory)")
	f.BoolVarP(&verbose, "verbose", "v", false, "report the progress of each cluster's start")
	return cmd
}

// benchCredentials creates or reuses the benchmark key and bucket.
func (g *globals) benchCredentials(cfg *bench.K2VConfig) error {
	const name = "grange-bench"
	var key adminapi.GetKeyInfoResponse
	err := g.call("GET", "GetKeyInfo", url.Values{"search": {name}, "showSecretKey": {"true"}}, nil, &key)
	var apiErr *adminapi.Error
	if errors.As(err, &apiErr) && apiErr.Status == 404 {
		n := name
		err = g.call("POST", "CreateKey", nil, adminapi.CreateKeyRequest{Name: &n}, &key)
	}
	if err != nil {
		return fmt.Errorf("benchmark key: %w", err)
	}
	var bk adminapi.GetBucketInfoResponse
	err = g.call("GET", "GetBucketInfo", url.Values{"globalAlias": {cfg.Bucket}}, nil, &bk)
	if errors.As(err, &apiErr) && apiErr.Status == 404 {
		b := cfg.Bucket
		err = g.call("POST", "CreateBucket", nil, adminapi.CreateBucketRequest{GlobalAlias: &b}, &bk)
	}
	if err != nil {
		return fmt.Errorf("benchmark bucket: %w", err)
	}
	req := adminapi.BucketKeyPermChangeRequest{BucketID: bk.ID, AccessKeyID: key.AccessKeyID, Permissions: adminapi.BucketKeyPerm{Read: true, Write: true}}
	if err := g.call("POST", "AllowBucketKey", nil, req, nil); err != nil {
		return fmt.Errorf("benchmark permissions: %w", err)
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = key.AccessKeyID, *key.SecretAccessKey
	return nil
}

// printK2VCluster prints the figures of each round, their ratios and,
// after several rounds, the median ratios.
func printK2VCluster(out io.Writer, res *bench.K2VClusterResult) {
	for i, rd := range res.Rounds {
		prefix := ""
		if len(res.Rounds) > 1 {
			prefix = fmt.Sprintf("round %d, ", i+1)
		}
		fmt.Fprintf(out, "%s1 node:\n", prefix)
		for _, r := range rd.Single {
			fmt.Fprintln(out, " ", r)
		}
		if rd.Cluster == nil {
			continue
		}
		fmt.Fprintf(out, "%s%d nodes:\n", prefix, res.Nodes)
		for _, r := range rd.Cluster {
			fmt.Fprintln(out, " ", r)
		}
		fmt.Fprintf(out, "%s%d nodes / 1 node:\n", prefix, res.Nodes)
		// Both ran the same operations in the same order.
		for j, c := range rd.Cluster {
			note := ""
			if c.Errors > 0 {
				note = fmt.Sprintf("  (not comparable: %d errors on %d nodes)", c.Errors, res.Nodes)
			}
			fmt.Fprintf(out, "  %-10s %6.0f / %6.0f ops/s = %.2f%s\n", c.Op, c.OpsPerSec, rd.Single[j].OpsPerSec, rd.Ratio(c.Op), note)
		}
	}
	if res.ProvisionedPerNode {
		fmt.Fprintln(out, "(the key and bucket did not replicate between the nodes: they were created on each node)")
	}
	if len(res.Rounds) > 1 && res.Rounds[0].Cluster != nil {
		fmt.Fprintf(out, "median over %d rounds, %d nodes / 1 node:\n", len(res.Rounds), res.Nodes)
		for _, r := range res.Rounds[0].Cluster {
			fmt.Fprintf(out, "  %-10s %.2f\n", r.Op, res.Ratio(r.Op))
		}
	}
}
