// Package bench holds grange's load generators. A workload is a Config and
// a Run function; cmd/grange binds them to `grange bench` flags, and Go
// benchmarks in this package run them against in-process nodes. They drive
// nodes only through their public APIs: the SDK in clients/ for the K2V
// workloads, and for the block store (blocks.go), which no HTTP API
// exposes yet, the block manager of in-process nodes (cmd/grange/node).
package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
)

// K2VConfig configures RunK2V. A zero field means its default.
type K2VConfig struct {
	// Client settings of the node under test.
	Endpoint string // default "http://127.0.0.1:3904"
	// Endpoints, when set, replaces Endpoint: the K2V APIs of several
	// nodes of one cluster. Client i (and the loading of partition i) goes
	// to Endpoints[i % len(Endpoints)], so the load is spread evenly and
	// each client keeps its connection to one node.
	Endpoints       []string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	Bucket          string
	// Ops are the operations to measure, one after the other: "insert",
	// "read" (ReadItem, JSON) and "readbatch" (ReadBatch of Batch items of
	// one partition). Default: all three.
	Ops []string
	// Concurrency is the number of concurrent clients; default 16.
	Concurrency int
	// Duration of each operation's measurement; default 10s.
	Duration time.Duration
	// ValueBytes is the size of inserted values; default 100.
	ValueBytes int
	// Partitions and ItemsPerPartition shape the data set that reads use;
	// inserts add to it. Defaults 100 and 100.
	Partitions        int
	ItemsPerPartition int
	// Batch is the number of items one ReadBatch returns; default 10.
	Batch int
}

func (c *K2VConfig) defaults() {
	if len(c.Endpoints) == 0 {
		c.Endpoints = []string{c.Endpoint}
	}
	c.Endpoints = slices.Clone(c.Endpoints) // the caller's stays as it was
	for i, e := range c.Endpoints {
		if e == "" {
			c.Endpoints[i] = "http://127.0.0.1:3904"
		}
	}
	if len(c.Ops) == 0 {
		c.Ops = []string{"insert", "read", "readbatch"}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.ValueBytes <= 0 {
		c.ValueBytes = 100
	}
	if c.Partitions <= 0 {
		c.Partitions = 100
	}
	if c.ItemsPerPartition <= 0 {
		c.ItemsPerPartition = 100
	}
	if c.Batch <= 0 {
		c.Batch = 10
	}
}

// Result is the measurement of one operation.
type Result struct {
	Op          string
	Concurrency int
	Ops         int
	Errors      int
	Elapsed     time.Duration
	OpsPerSec   float64
	P50         time.Duration
	P99         time.Duration
	P999        time.Duration
	// FirstError is the first error seen, if any.
	FirstError error
}

func (r Result) String() string {
	s := fmt.Sprintf("%-10s c=%-3d %8.0f ops/s  p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  (%d ops, %d errors)",
		r.Op, r.Concurrency, r.OpsPerSec, ms(r.P50), ms(r.P99), ms(r.P999), r.Ops, r.Errors)
	if r.FirstError != nil {
		s += "  first error: " + r.FirstError.Error()
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// RunK2V loads the data set, then measures each operation of cfg.Ops for
// cfg.Duration with cfg.Concurrency clients.
func RunK2V(ctx context.Context, cfg K2VConfig) ([]Result, error) {
	cfg.defaults()
	// One client (and so one connection pool) per endpoint.
	var clients []*k2vc.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, e := range cfg.Endpoints {
		c, err := k2vc.New(k2vc.Config{
			Endpoint: e, Region: cfg.Region, Bucket: cfg.Bucket,
			AccessKeyID: cfg.AccessKeyID, SecretAccessKey: cfg.SecretAccessKey,
		})
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
	}
	value := make([]byte, cfg.ValueBytes)
	rand.Read(value)
	if err := load(ctx, clients, cfg, value); err != nil {
		return nil, fmt.Errorf("load data set: %w", err)
	}
	var results []Result
	for _, op := range cfg.Ops {
		// fn runs one operation as client w, bound to clients[w%len].
		var fn func(ctx context.Context, w int, r *mrand.Rand) error
		switch op {
		case "insert":
			var seq atomic.Uint64
			fn = func(ctx context.Context, w int, r *mrand.Rand) error {
				pk := fmt.Sprintf("p%04d", r.IntN(cfg.Partitions))
				return clients[w%len(clients)].InsertItem(ctx, pk, fmt.Sprintf("new%012d", seq.Add(1)), value, "")
			}
		case "read":
			fn = func(ctx context.Context, w int, r *mrand.Rand) error {
				_, err := clients[w%len(clients)].ReadItem(ctx, fmt.Sprintf("p%04d", r.IntN(cfg.Partitions)), fmt.Sprintf("s%06d", r.IntN(cfg.ItemsPerPartition)))
				return err
			}
		case "readbatch":
			fn = func(ctx context.Context, w int, r *mrand.Rand) error {
				start := fmt.Sprintf("s%06d", r.IntN(max(1, cfg.ItemsPerPartition-cfg.Batch)))
				res, err := clients[w%len(clients)].ReadBatch(ctx, []k2vc.Search{{PartitionKey: fmt.Sprintf("p%04d", r.IntN(cfg.Partitions)), Start: start, Limit: cfg.Batch}})
				if err == nil && len(res[0].Items) != cfg.Batch {
					err = fmt.Errorf("ReadBatch returned %d items, want %d", len(res[0].Items), cfg.Batch)
				}
				return err
			}
		default:
			return results, fmt.Errorf("unknown operation %q (want insert, read or readbatch)", op)
		}
		res, err := measure(ctx, op, cfg.Concurrency, cfg.Duration, fn)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// load writes the data set read by "read" and "readbatch", partition p
// through clients[p%len(clients)].
func load(ctx context.Context, clients []*k2vc.Client, cfg K2VConfig, value []byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, cfg.Partitions)
	sem := make(chan struct{}, 8)
	for p := range cfg.Partitions {
		c := clients[p%len(clients)]
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			for i := 0; i < cfg.ItemsPerPartition; i += 500 {
				var ops []k2vc.InsertOp
				for j := i; j < min(i+500, cfg.ItemsPerPartition); j++ {
					ops = append(ops, k2vc.InsertOp{PartitionKey: fmt.Sprintf("p%04d", p), SortKey: fmt.Sprintf("s%06d", j), Value: k2vc.Bytes(value)})
				}
				if err := c.InsertBatch(ctx, ops); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// measure runs fn from n goroutines (fn's w is the goroutine's index) for
// d and reports throughput and latency percentiles.
func measure(ctx context.Context, op string, n int, d time.Duration, fn func(ctx context.Context, w int, r *mrand.Rand) error) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type worker struct {
		lat    []time.Duration
		errors int
		first  error
	}
	workers := make([]worker, n)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i := range workers {
		w := &workers[i]
		r := mrand.New(mrand.NewPCG(uint64(i), uint64(start.UnixNano())))
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(deadline) {
					return
				}
				err := fn(ctx, i, r)
				w.lat = append(w.lat, time.Since(t0))
				if err != nil {
					w.errors++
					if w.first == nil {
						w.first = err
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := Result{Op: op, Concurrency: n, Elapsed: elapsed}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		res.Errors += w.errors
		if res.FirstError == nil {
			res.FirstError = w.first
		}
	}
	if len(all) == 0 {
		return res, errors.New("no operation completed")
	}
	slices.Sort(all)
	res.Ops = len(all)
	res.OpsPerSec = float64(len(all)) / elapsed.Seconds()
	res.P50, res.P99, res.P999 = pct(all, 0.50), pct(all, 0.99), pct(all, 0.999)
	return res, ctx.Err()
}

func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
