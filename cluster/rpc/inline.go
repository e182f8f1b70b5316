package rpc

import (
	"sync"
	"sync/atomic"
	"time"
)

// Inline handlers.
//
// Handing a request from the read loop to a new goroutine costs a thread
// wakeup and a stack growth, a large part of a small call's latency. So the
// read loop runs the last complete request of a record itself when nothing
// else is waiting to be read. A watchdog guards the connection: if the
// handler is still running at two consecutive ticks of the transport's
// monitor (inlineTick apart: it blocks on disk, on a nested call, on a full
// socket...), the monitor starts a new goroutine that takes over reading,
// and the old one exits once its handler returns. The read loop therefore
// never stops for more than about two ticks, so the deadlock of two peers
// blocked writing while neither reads cannot happen. An endpoint whose
// handler was taken over is then spawned for its next requests (64, then
// twice as many after each takeover, up to 4096), since it evidently
// blocks.
//
// The monitor is one goroutine per transport that ticks only while inline
// runs happen; a timer per run would cost a thread wakeup each.
//
// inlineState holds a generation (one per inline run) and a phase, so that
// a goroutine whose run was taken over cannot mistake a later run for its
// own, nor the monitor a later run for the one it saw.
const (
	inlineTick       = 200 * time.Microsecond
	monitorIdleTicks = 50 // stop after this many ticks without inline runs
	minBackoff       = 64
	maxBackoff       = 4096
	maxEndpointStats = 1024

	phaseIdle    = 0
	phaseRunning = 1
	phaseTaken   = 2
	phaseMask    = 3
)

// endpointStat remembers that an endpoint's handlers block.
type endpointStat struct {
	skip    atomic.Int32 // spawn this many requests before trying inline again
	backoff atomic.Int32
}

type endpointStats struct {
	m sync.Map // endpoint name → *endpointStat
	n atomic.Int32
}

// get returns the stat of an endpoint, or nil if too many endpoints exist
// (a peer inventing names must not grow the map without bound).
func (s *endpointStats) get(name string) *endpointStat {
	if v, ok := s.m.Load(name); ok {
		return v.(*endpointStat)
	}
	if s.n.Load() >= maxEndpointStats {
		return nil
	}
	v, loaded := s.m.LoadOrStore(name, new(endpointStat))
	if !loaded {
		s.n.Add(1)
	}
	return v.(*endpointStat)
}

// queueHandler runs ss's handler, inline if possible. Read loop only.
func (c *Conn) queueHandler(ss *serverStream) {
	st := c.t.endpoints.get(ss.hdr.Endpoint)
	if ss.in.rs != nil || st == nil || st.skip.Load() > 0 {
		if st != nil && st.skip.Load() > 0 {
			st.skip.Add(-1)
		}
		c.spawnHandler(ss)
		return
	}
	ss.stat = st
	if prev := c.inline; prev != nil {
		c.spawnHandler(prev) // only the last request of a record runs inline
	}
	c.inline = ss
}

func (c *Conn) spawnHandler(ss *serverStream) {
	if !c.t.spawn(func() { c.serve(ss) }) {
		ss.hctx.cancel(ErrClosed)
	}
}

// runPending runs the request kept for inline execution, if any. It
// reports false if another goroutine took over reading meanwhile: the
// caller must then return without touching the read state.
func (c *Conn) runPending() bool {
	ss := c.inline
	if ss == nil {
		return true
	}
	c.inline = nil
	if c.rw > c.rr {
		c.spawnHandler(ss) // more bytes are here already: keep reading
		return true
	}
	c.inlineGen++
	// After serve, read state belongs to us only if the CAS succeeds:
	// compute both values before.
	running, idle := c.inlineGen<<2|phaseRunning, c.inlineGen<<2|phaseIdle
	c.inlineStat.Store(ss.stat)
	c.inlineState.Store(running)
	c.t.inlineRuns.Add(1)
	c.t.ensureMonitor()
	c.serve(ss)
	return c.inlineState.CompareAndSwap(running, idle)
}

// takeOver moves reading to a new goroutine if the inline run seen in
// state s is still running.
func (c *Conn) takeOver(s uint64) {
	if !c.inlineState.CompareAndSwap(s, s&^phaseMask|phaseTaken) {
		return
	}
	if st := c.inlineStat.Load(); st != nil {
		b := min(max(2*st.backoff.Load(), minBackoff), maxBackoff)
		st.backoff.Store(b)
		st.skip.Store(b)
	}
	if !c.t.spawn(func() { c.readLoop(nil) }) {
		c.closeWith(ErrClosed)
	}
}

func (t *Transport) ensureMonitor() {
	if t.monitorOn.Load() || !t.monitorOn.CompareAndSwap(false, true) {
		return
	}
	if !t.spawn(t.monitor) {
		t.monitorOn.Store(false)
	}
}

// monitor is the watchdog of inline runs.
func (t *Transport) monitor() {
	tick := time.NewTicker(inlineTick)
	defer tick.Stop()
	seen := make(map[*Conn]uint64)
	var conns []*Conn
	lastRuns, idle := t.inlineRuns.Load(), 0
	for {
		select {
		case <-tick.C:
		case <-t.done:
			return
		}
		conns = conns[:0]
		t.mu.RLock()
		for c := range t.mu.all {
			conns = append(conns, c)
		}
		t.mu.RUnlock()
		for _, c := range conns {
			s := c.inlineState.Load()
			if s&phaseMask != phaseRunning {
				delete(seen, c)
				continue
			}
			if seen[c] == s {
				delete(seen, c)
				c.takeOver(s)
			} else {
				seen[c] = s
			}
		}
		for c := range seen {
			if c.isClosed() {
				delete(seen, c)
			}
		}
		if runs := t.inlineRuns.Load(); runs != lastRuns || len(seen) > 0 {
			lastRuns, idle = runs, 0
			continue
		}
		if idle++; idle < monitorIdleTicks {
			continue
		}
		// Stop; but a run may have started since the last look, with
		// ensureMonitor seeing the monitor still on.
		t.monitorOn.Store(false)
		if t.inlineRuns.Load() == lastRuns || !t.monitorOn.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}
