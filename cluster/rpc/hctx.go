package rpc

import (
	"context"
	"sync"
	"time"
)

// handlerCtx is a handler's context. It is cancelled when the caller
// resets the stream, when the caller's deadline passes, when the
// connection closes, and when the handler's stream ends. It is not derived
// from a parent with context.WithCancel: that costs allocations and a
// registration under the parent's lock for every request, which shows in
// the latency of small calls. It implements AfterFunc, so that contexts
// derived from it (context.WithTimeout...) need no goroutine either.
type handlerCtx struct {
	mu       sync.Mutex
	done     chan struct{} // created on demand
	err      error
	deadline time.Time
	timer    *time.Timer
	afters   []*afterFunc
}

type afterFunc struct {
	f    func()
	once sync.Once
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// start sets the deadline, if any. Called before the context is shared.
func (h *handlerCtx) start(deadline time.Time) {
	if deadline.IsZero() {
		return
	}
	h.deadline = deadline
	t := time.AfterFunc(time.Until(deadline), func() { h.cancel(context.DeadlineExceeded) })
	// under the lock: a connection closing may cancel the context already
	h.mu.Lock()
	h.timer = t
	h.mu.Unlock()
}

func (h *handlerCtx) Deadline() (time.Time, bool) { return h.deadline, !h.deadline.IsZero() }

func (h *handlerCtx) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done == nil {
		if h.err != nil {
			return closedChan
		}
		h.done = make(chan struct{})
	}
	return h.done
}

func (h *handlerCtx) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *handlerCtx) Value(key any) any { return nil }

// AfterFunc is what context.AfterFunc and derived contexts use.
func (h *handlerCtx) AfterFunc(f func()) func() bool {
	a := &afterFunc{f: f}
	h.mu.Lock()
	if h.err != nil {
		h.mu.Unlock()
		a.once.Do(func() { go f() })
		return func() bool { return false }
	}
	h.afters = append(h.afters, a)
	h.mu.Unlock()
	return func() bool {
		stopped := false
		a.once.Do(func() { stopped = true })
		if stopped {
			h.mu.Lock()
			for i, x := range h.afters {
				if x == a {
					h.afters = append(h.afters[:i], h.afters[i+1:]...)
					break
				}
			}
			h.mu.Unlock()
		}
		return stopped
	}
}

// cancel ends the context with err, once.
func (h *handlerCtx) cancel(err error) {
	h.mu.Lock()
	if h.err != nil {
		h.mu.Unlock()
		return
	}
	h.err = err
	if h.done != nil {
		close(h.done)
	}
	afters := h.afters
	h.afters = nil
	t := h.timer
	h.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	for _, a := range afters {
		a.once.Do(func() { go a.f() })
	}
}

func (h *handlerCtx) String() string { return "rpc.handlerCtx" }
