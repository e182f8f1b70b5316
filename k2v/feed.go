package k2v

import (
	"sync"
	"sync/atomic"
)

// The change feed tells in-memory consumers which partition keys a commit
// touched: long polls wait on it, caches invalidate from it. It is not
// durable; consumers that must not miss a change across restarts (Merkle
// trees) keep their own state in the same batch as the change.

// maxPendingSorts bounds the sort keys a Watch remembers between two reads;
// beyond it the Watch reports an overflow and the reader rescans.
const maxPendingSorts = 1024

type change struct {
	table string
	hash  [32]byte
	sort  []byte
	// listeners of the table, called synchronously after commit
	listeners []func(hash [32]byte, sort []byte)
}

type watchKey struct {
	table string
	hash  [32]byte
}

type feed struct {
	n  atomic.Int64 // number of open watches, to skip the lock when zero
	mu sync.Mutex
	// watches of each partition key; guarded by mu
	watches map[watchKey]map[*Watch]struct{}
}

// Watch receives the changes committed to one partition key of one table
// after it was opened. Open the watch first, then read the current state:
// a change that lands in between is then reported, never lost.
type Watch struct {
	// C receives a value after one or more commits touched the partition
	// key. Signals coalesce: one receive may stand for several commits.
	C <-chan struct{}

	c    chan struct{}
	f    *feed
	key  watchKey
	once sync.Once

	mu struct {
		sync.Mutex
		sorts    [][]byte
		overflow bool
	}
}

func (f *feed) watch(table string, hash [32]byte) *Watch {
	c := make(chan struct{}, 1)
	w := &Watch{C: c, c: c, f: f, key: watchKey{table, hash}}
	f.mu.Lock()
	if f.watches == nil {
		f.watches = map[watchKey]map[*Watch]struct{}{}
	}
	set := f.watches[w.key]
	if set == nil {
		set = map[*Watch]struct{}{}
		f.watches[w.key] = set
	}
	set[w] = struct{}{}
	f.mu.Unlock()
	f.n.Add(1)
	return w
}

// Changed returns the sort keys changed since the previous call and
// forgets them. overflow means more changed than were remembered: the
// caller must treat every sort key as possibly changed.
func (w *Watch) Changed() (sorts [][]byte, overflow bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sorts, overflow = w.mu.sorts, w.mu.overflow
	w.mu.sorts, w.mu.overflow = nil, false
	return sorts, overflow
}

// Close stops the watch. It is safe to call twice.
func (w *Watch) Close() {
	w.once.Do(func() {
		f := w.f
		f.mu.Lock()
		if set := f.watches[w.key]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(f.watches, w.key)
			}
		}
		f.mu.Unlock()
		f.n.Add(-1)
	})
}

func (w *Watch) notify(sort []byte) {
	w.mu.Lock()
	if !w.mu.overflow {
		if len(w.mu.sorts) >= maxPendingSorts {
			w.mu.sorts, w.mu.overflow = nil, true
		} else {
			w.mu.sorts = append(w.mu.sorts, sort)
		}
	}
	w.mu.Unlock()
	select {
	case w.c <- struct{}{}:
	default:
	}
}

func (f *feed) publish(changes []change) {
	for _, c := range changes {
		for _, l := range c.listeners {
			l(c.hash, c.sort)
		}
	}
	if f.n.Load() == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range changes {
		for w := range f.watches[watchKey{c.table, c.hash}] {
			w.notify(c.sort)
		}
	}
}
