package nodetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
)

// Workload is concurrent K2V traffic over a few items of one partition
// key, recorded into a History for CheckLinearizable and
// CheckNoLostWrites. Each worker loops over: read then write with the
// read's token, read then delete with its token, blind write (no token),
// plain read. Values are unique ("w<worker>-<n>").
type Workload struct {
	// Workers and Items (sort keys "item-<j>"); defaults 4 and 3.
	Workers, Items int
	// OpsPerWorker bounds each worker's operations (default 50); Duration,
	// if set, bounds the run instead.
	OpsPerWorker int
	Duration     time.Duration
	// Until, if not nil, keeps the workers going past Duration until it
	// is closed (a test's faults or layout changes are then always
	// applied under load, however slow the machine).
	Until <-chan struct{}
	// Partition is the partition key (default "nodetest").
	Partition string
	// Client returns the client and node index a worker uses for its n-th
	// operation (spread workers over nodes with it).
	Client func(worker, n int) (*k2vc.Client, int)
	// OpTimeout bounds each request (default 5 s).
	OpTimeout time.Duration
	// Seed makes the choice of operations repeatable (0: random).
	Seed uint64
}

// Keys returns the sort keys of the items.
func (w *Workload) Keys() []string {
	w.defaults()
	keys := make([]string, w.Items)
	for j := range keys {
		keys[j] = fmt.Sprintf("item-%d", j)
	}
	return keys
}

func (w *Workload) defaults() {
	if w.Workers == 0 {
		w.Workers = 4
	}
	if w.Items == 0 {
		w.Items = 3
	}
	if w.OpsPerWorker == 0 && w.Duration == 0 {
		w.OpsPerWorker = 50
	}
	if w.Partition == "" {
		w.Partition = "nodetest"
	}
	if w.OpTimeout == 0 {
		w.OpTimeout = 5 * time.Second
	}
	if w.Seed == 0 {
		w.Seed = rand.Uint64()
	}
}

// until reports whether Until is nil or closed.
func (w *Workload) until() bool {
	if w.Until == nil {
		return true
	}
	select {
	case <-w.Until:
		return true
	default:
		return false
	}
}

// Run runs the workers until they are done or ctx ends, recording into h.
func (w *Workload) Run(ctx context.Context, h *History) {
	w.defaults()
	keys := w.Keys()
	var deadline time.Time
	if w.Duration > 0 {
		deadline = time.Now().Add(w.Duration)
	}
	var wg sync.WaitGroup
	for wk := range w.Workers {
		rng := rand.New(rand.NewPCG(w.Seed, uint64(wk)))
		wg.Go(func() {
			seq := 0
			for n := 0; ; n++ {
				if ctx.Err() != nil || (w.OpsPerWorker > 0 && n >= w.OpsPerWorker) || (!deadline.IsZero() && time.Now().After(deadline) && w.until()) {
					return
				}
				c, node := w.Client(wk, n)
				key := keys[rng.IntN(len(keys))]
				switch p := rng.IntN(100); {
				case p < 45: // read, then write with its token
					r := w.read(ctx, h, c, wk, node, key)
					if r.Err == nil {
						seq++
						w.write(ctx, h, c, wk, node, key, fmt.Sprintf("w%d-%d", wk, seq), r)
					}
				case p < 55: // read, then delete with its token
					r := w.read(ctx, h, c, wk, node, key)
					if r.Err == nil {
						w.delete(ctx, h, c, wk, node, key, r)
					}
				case p < 80: // blind write
					seq++
					w.write(ctx, h, c, wk, node, key, fmt.Sprintf("w%d-%d", wk, seq), nil)
				default:
					w.read(ctx, h, c, wk, node, key)
				}
			}
		})
	}
	wg.Wait()
}

func (w *Workload) read(ctx context.Context, h *History, c *k2vc.Client, wk, node int, key string) *Op {
	op := h.Begin(Op{Worker: wk, Node: node, Kind: Read, Key: key, FromRead: -1})
	ctx, cancel := context.WithTimeout(ctx, w.OpTimeout)
	defer cancel()
	it, err := c.ReadItem(ctx, w.Partition, key)
	if errors.Is(err, k2vc.ErrNoSuchKey) {
		h.End(op, nil)
		return op
	}
	if err == nil {
		op.Token = string(it.CausalityToken)
		for _, v := range it.Values {
			if v.Tombstone {
				op.Tombstone = true
			} else {
				op.Values = append(op.Values, string(v.Data))
			}
		}
	}
	h.End(op, err)
	return op
}

func (w *Workload) write(ctx context.Context, h *History, c *k2vc.Client, wk, node int, key, value string, from *Op) {
	op := h.Begin(Op{Worker: wk, Node: node, Kind: Write, Key: key, Value: value, FromRead: -1})
	if from != nil {
		op.FromRead, op.Token = from.ID, from.Token
	}
	ctx, cancel := context.WithTimeout(ctx, w.OpTimeout)
	defer cancel()
	h.End(op, c.InsertItem(ctx, w.Partition, key, []byte(value), k2vc.CausalityToken(op.Token)))
}

func (w *Workload) delete(ctx context.Context, h *History, c *k2vc.Client, wk, node int, key string, from *Op) {
	op := h.Begin(Op{Worker: wk, Node: node, Kind: Delete, Key: key, FromRead: from.ID, Token: from.Token})
	ctx, cancel := context.WithTimeout(ctx, w.OpTimeout)
	defer cancel()
	h.End(op, c.DeleteItem(ctx, w.Partition, key, k2vc.CausalityToken(op.Token)))
}

// ReadFinal reads every item of the workload through c, for
// CheckNoLostWrites.
func (w *Workload) ReadFinal(ctx context.Context, c *k2vc.Client) (Final, error) {
	w.defaults()
	out := Final{}
	for _, key := range w.Keys() {
		it, err := c.ReadItem(ctx, w.Partition, key)
		if errors.Is(err, k2vc.ErrNoSuchKey) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("final read of %s: %w", key, err)
		}
		for _, v := range it.Values {
			if !v.Tombstone {
				out[key] = append(out[key], string(v.Data))
			}
		}
	}
	return out, nil
}
