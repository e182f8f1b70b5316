package main

import (
	"context"
	"errors"
	"fmt"
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
	cmd.AddCommand(k2v)
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
