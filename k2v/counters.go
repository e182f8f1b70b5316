package k2v

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// publishDelay is how long the publisher lets changes accumulate before it
// writes them: many inserts into one partition key then cost one counter
// table write instead of one each.
const publishDelay = 20 * time.Millisecond

// counterPublisher copies this node's local index counters into the
// counter table, asynchronously and coalesced, as in the reference scheme
// of k2v-api.md §11. The local counters are written in the same batch as
// the items they count and are the truth; the counter table is derived from
// them. Pending publications live in memory: after a crash, NewItems marks
// every local counter for publication again (a merge that changes nothing
// writes nothing).
//
// With replication, publish sends the slots to the counter partition's
// replicas instead of merging them locally.
type counterPublisher struct {
	db       *DB
	counters *Table[CounterEntry]
	log      *slog.Logger
	// insert, when set, publishes through the replicated counter table
	// instead of merging into the local one.
	insert func(ctx context.Context, entries []*CounterEntry) error
	// timeout bounds a replicated publication (nanoseconds; 0: a minute).
	timeout atomic.Int64

	mu struct {
		sync.Mutex
		dirty map[string]struct{} // local counter keys (without the space byte)
	}
	// local caches the local counters, which only this node writes, so
	// that an insert does not read its partition's counter back from
	// pebble. Only touched inside DB.Update callbacks and their abort
	// hooks, which the apply lock serialises.
	local map[string]CounterSlot
	// flushMu serialises flushes, so that a flush that returns has
	// published everything marked before it started.
	flushMu sync.Mutex
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	started bool
}

func newCounterPublisher(db *DB, counters *Table[CounterEntry], log *slog.Logger) *counterPublisher {
	p := &counterPublisher{db: db, counters: counters, log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	p.mu.dirty = map[string]struct{}{}
	p.local = map[string]CounterSlot{}
	return p
}

// localCacheMax bounds the local counter cache; past it, it starts over.
const localCacheMax = 1 << 16

func (p *counterPublisher) cached(key string) (CounterSlot, bool) {
	s, ok := p.local[key]
	return s, ok
}

func (p *counterPublisher) cache(key string, s CounterSlot) {
	if len(p.local) >= localCacheMax {
		clear(p.local)
	}
	p.local[key] = s
}

func (p *counterPublisher) uncache(key string) { delete(p.local, key) }

// markDirty records that a local counter changed. It is called inside an
// Update (a failed one only causes a publication that changes nothing).
func (p *counterPublisher) markDirty(bucket BucketID, pk string) {
	p.mu.Lock()
	p.mu.dirty[string(localCounterKey(bucket, pk))] = struct{}{}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// markAllDirty marks every local counter for publication.
func (p *counterPublisher) markAllDirty() error {
	return p.db.scanLocal([]byte("cnt"), func(key, _ []byte) error {
		p.mu.Lock()
		p.mu.dirty[string(key)] = struct{}{}
		p.mu.Unlock()
		return nil
	})
}

func (p *counterPublisher) start() {
	p.started = true
	go p.loop()
}

func (p *counterPublisher) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.wake:
		case <-p.stop:
			return
		}
		select {
		case <-time.After(publishDelay):
		case <-p.stop:
			return
		}
		if err := p.flush(); err != nil {
			p.log.Warn("publishing index counters failed; will retry", "err", err)
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
}

// close stops the loop and publishes what is pending. With replication a
// publication that cannot reach its replicas is only logged: the local
// counters are the durable truth, published again at the next start.
func (p *counterPublisher) close() error {
	p.once.Do(func() {
		close(p.stop)
		if p.started {
			<-p.done
		}
	})
	if p.insert == nil {
		return p.flush()
	}
	p.timeout.Store(int64(5 * time.Second))
	if err := p.flush(); err != nil {
		p.log.Warn("index counters not published at shutdown; they will be at the next start", "err", err)
	}
	return nil
}

// flush publishes every pending counter now.
func (p *counterPublisher) flush() error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	p.mu.Lock()
	dirty := p.mu.dirty
	if len(dirty) == 0 {
		p.mu.Unlock()
		return nil
	}
	p.mu.dirty = map[string]struct{}{}
	p.mu.Unlock()
	var err error
	if p.insert != nil {
		err = p.publishReplicated(dirty)
	} else {
		err = p.publishLocal(dirty)
	}
	if err != nil {
		// put them back for the next try
		p.mu.Lock()
		for key := range dirty {
			p.mu.dirty[key] = struct{}{}
		}
		p.mu.Unlock()
	}
	return err
}

// publishReplicated sends this node's slots to the replicas of the counter
// table.
func (p *counterPublisher) publishReplicated(dirty map[string]struct{}) error {
	var entries []*CounterEntry
	// Read through a batch, which writes nothing: it runs after every
	// update that marked a key dirty has applied its batch, so that the
	// counts read are at least those that marked it (a plain read could
	// run between the marking and the apply, and publish the older counts).
	err := p.db.Update(func(b *Batch) error {
		var err error
		entries, err = readSlots(b, dirty)
		return err
	})
	if err != nil || len(entries) == 0 {
		return err
	}
	timeout := time.Duration(p.timeout.Load())
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return p.insert(ctx, entries)
}

func (p *counterPublisher) publishLocal(dirty map[string]struct{}) error {
	return p.db.Update(func(b *Batch) error {
		entries, err := readSlots(b, dirty)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := p.counters.MergeIn(b, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// readSlots reads the local counters under keys as counter table entries
// holding this node's slot.
func readSlots(b *Batch, keys map[string]struct{}) ([]*CounterEntry, error) {
	var entries []*CounterEntry
	for key := range keys {
		v, err := b.GetLocal([]byte(key))
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		slot, err := decodeCounterSlot(v)
		if err != nil {
			return nil, err
		}
		var bucket BucketID
		copy(bucket[:], key[3:35])
		entries = append(entries, &CounterEntry{Bucket: bucket, Partition: key[35:], Slots: []CounterSlot{slot}})
	}
	return entries, nil
}
