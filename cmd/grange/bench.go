package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
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
	cmd.AddCommand(k2v, newBenchK2VClusterCommand(), newBenchBlocksCommand())
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

func newBenchBlocksCommand() *cobra.Command {
	cfg := bench.BlocksConfig{}
	var (
		nodes, data       string
		objectSize, total = byteSizeFlag(16 << 20), byteSizeFlag(1 << 30)
		blockSize         = byteSizeFlag(1 << 20)
		ramBuffer         = byteSizeFlag(0)
		rssStream         = byteSizeFlag(0)
		fsync, verify     bool
		verbose           bool
		logLevel          string
		compression       int
	)
	cmd := &cobra.Command{
		Use:   "blocks",
		Short: "Measure the block store: stream writes and reads on 1 and 3 in-process nodes",
		Long: `Start nodes in this process (RPC over TCP on 127.0.0.1 with a random
secret, one zone per node, replication factor = number of nodes), write
objects as block streams through their block managers with --streams
streams at once, adding a reference per block as S3 does, then read every
object back through the node that wrote it and check its SHA-256. Object k
goes through node k mod N. Print MiB/s and per-object p50/p99 for the
write and the read.

By default it runs 1 node then 3 nodes, each with random then text data
(Go source from GOROOT/src), and prints a table. Every block differs from
the others, so deduplication saves nothing. data_fsync and metadata_fsync
are on as in production (--fsync=false turns both off). Each object read is
hashed (SHA-256) as it is read and compared with the hash of the bytes
written, computed between the two phases by generating them again; that
hashing runs on the same CPUs as the nodes during the read (--verify=false
skips it; the nodes always check each block they read against its hash).
"w cpu" and "r cpu" are the CPU seconds the process used per GiB.

--rss-stream SIZE instead writes one stream of SIZE on one node, reads it
back, checks its SHA-256 and prints the peak RSS of this process (VmHWM):
the data is generated on the fly, so the figure is the node's.

The nodes' directories are in a temporary directory, removed at the end,
or under --dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			cfg.ObjectBytes, cfg.TotalBytes = int64(objectSize), int64(total)
			cfg.BlockSize, cfg.RAMBufferMax = int(blockSize), int64(ramBuffer)
			cfg.NoFsync, cfg.NoVerify = !fsync, !verify
			cfg.CompressionLevel = compressionLevel(compression)
			if cfg.Duration > 0 && !cmd.Flags().Changed("total") {
				cfg.TotalBytes = 0
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return err
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			if verbose {
				cfg.Logf = func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }
			}
			defer startCPUProfile("bench")()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if rssStream > 0 {
				cfg.Data = "random"
				if cmd.Flags().Changed("data") {
					cfg.Data = data
				}
				return runBlocksRSS(ctx, out, cfg, int64(rssStream))
			}
			var ns []int
			for _, f := range strings.Split(nodes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < 1 {
					return fmt.Errorf("--nodes %q: want node counts like 1,3", nodes)
				}
				ns = append(ns, n)
			}
			kinds := strings.Split(data, ",")
			fmt.Fprintf(out, "block store: %s objects, %d streams, %s per run, block_size %s, compression_level %d, fsync %v, verify %v, GOMAXPROCS %d\n",
				formatBinaryBytes(uint64(cfg.ObjectBytes)), max(cfg.Streams, 4), runLength(cfg), formatBinaryBytes(uint64(cfg.BlockSize)), max(compression, 0), fsync, verify, runtime.GOMAXPROCS(0))
			fmt.Fprintf(out, "%-5s %-6s %11s %8s %8s %6s %11s %8s %8s %6s %6s\n", "nodes", "data", "write", "w p50", "w p99", "w cpu", "read", "r p50", "r p99", "r cpu", "stored")
			for _, n := range ns {
				for _, kind := range kinds {
					c := cfg
					c.Nodes, c.Data = n, strings.TrimSpace(kind)
					res, err := bench.RunBlocks(ctx, c)
					if err != nil {
						return fmt.Errorf("%d nodes, %s data: %w", n, c.Data, err)
					}
					printBlocksRow(out, res)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&nodes, "nodes", "1,3", "node counts to run, in order (replication factor = node count)")
	f.StringVar(&data, "data", "random,text", "data kinds to run, in order: random, text")
	f.Var(&objectSize, "object-size", "bytes per object (one stream each)")
	f.IntVarP(&cfg.Streams, "streams", "n", 4, "streams written and read at once")
	f.Var(&total, "total", "bytes written per run, in whole objects")
	f.DurationVarP(&cfg.Duration, "duration", "d", 0, "write for this long instead of --total")
	f.Var(&blockSize, "block-size", "block_size")
	f.IntVar(&compression, "compression-level", 1, "compression_level (zstd; 0 or less: none)")
	f.Var(&ramBuffer, "ram-buffer-max", "block_ram_buffer_max (default: the node's, 256 MiB)")
	f.BoolVar(&fsync, "fsync", true, "data_fsync and metadata_fsync of the nodes")
	f.BoolVar(&cfg.DirectIO, "direct-io", false, "data_direct_io of the nodes (large blocks bypass the page cache; needs --fsync)")
	f.BoolVar(&verify, "verify", true, "check the SHA-256 of every object read against that of the bytes written")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the nodes' directories (default: a temporary one); they are removed at the end")
	f.Var(&rssStream, "rss-stream", "write and read back one stream of this size on one node, and print the peak RSS (e.g. 5GiB)")
	f.StringVar(&logLevel, "log-level", "warn", "level of the nodes' logs, written to stderr")
	f.BoolVarP(&verbose, "verbose", "v", false, "report progress")
	return cmd
}

// compressionLevel turns the flag's "0 or less: none" into the
// configuration's "negative: none".
func compressionLevel(flag int) int {
	if flag <= 0 {
		return -1
	}
	return flag
}

func runLength(cfg bench.BlocksConfig) string {
	if cfg.TotalBytes > 0 {
		return formatBinaryBytes(uint64(cfg.TotalBytes))
	}
	return cfg.Duration.String()
}

// printBlocksRow prints one run: throughput, per-object latency and CPU
// seconds per GiB of each phase, and the stored size over the raw size.
func printBlocksRow(out io.Writer, r *bench.BlocksResult) {
	fmt.Fprintf(out, "%-5d %-6s %5.0f MiB/s %8s %8s %6.2f %5.0f MiB/s %8s %8s %6.2f %6.2f\n",
		r.Config.Nodes, r.Config.Data,
		r.Write.MiBPerSec(), roundMs(r.Write.P50), roundMs(r.Write.P99), r.Write.CPUPerGiB(),
		r.Read.MiBPerSec(), roundMs(r.Read.P50), roundMs(r.Read.P99), r.Read.CPUPerGiB(),
		r.StoredRatio())
}

func roundMs(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

// runBlocksRSS writes and reads back one stream on one node and prints
// the peak RSS of the process.
func runBlocksRSS(ctx context.Context, out io.Writer, cfg bench.BlocksConfig, size int64) error {
	cfg.Nodes, cfg.Streams = 1, 1
	cfg.ObjectBytes, cfg.TotalBytes, cfg.Duration = size, size, 0
	if strings.Contains(cfg.Data, ",") {
		return fmt.Errorf("--rss-stream takes one --data kind, not %q", cfg.Data)
	}
	fmt.Fprintf(out, "one %s stream of %s data on one node, block_size %s, fsync %v, verify %v, GOMAXPROCS %d\n",
		formatBinaryBytes(uint64(size)), cfg.Data, formatBinaryBytes(uint64(cfg.BlockSize)), !cfg.NoFsync, !cfg.NoVerify, runtime.GOMAXPROCS(0))
	res, err := bench.RunBlocks(ctx, cfg)
	if err != nil {
		return err
	}
	peak, err := bench.PeakRSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "write %.0f MiB/s (%v), read %.0f MiB/s (%v), %d blocks, SHA-256 checked: %v\n",
		res.Write.MiBPerSec(), res.Write.Elapsed.Round(time.Millisecond), res.Read.MiBPerSec(), res.Read.Elapsed.Round(time.Millisecond), res.Blocks, !cfg.NoVerify)
	fmt.Fprintf(out, "peak RSS (VmHWM): %.1f MiB\n", float64(peak)/(1<<20))
	return nil
}

// byteSizeFlag is a byte count flag read by parseCapacity: 16MiB, 5GiB,
// 1G.
type byteSizeFlag uint64

func (b *byteSizeFlag) String() string {
	if *b == 0 {
		return "0"
	}
	return formatBinaryBytes(uint64(*b))
}

func (b *byteSizeFlag) Set(s string) error {
	n, err := parseCapacity(s)
	if err != nil {
		return err
	}
	*b = byteSizeFlag(n)
	return nil
}

func (b *byteSizeFlag) Type() string { return "size" }
