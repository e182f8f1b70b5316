package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/grangeio/grange/cluster/layout"
)

// Transport is a node's end of the RPC mesh: it accepts and dials
// connections, keeps at most one established connection per peer, and
// serves inbound requests with Config.Handler.
//
// Goroutines: Serve runs on its caller's goroutine; everything else
// (handshakes, each connection's reader and writer, handlers, stream pumps,
// the callback dispatcher) is started by the Transport and waited for by
// Close.
//
// Lock order: Transport.mu, then Conn.mu, then writer.mu; evMu is a leaf.
type Transport struct {
	cfg    Config
	id     layout.NodeID
	static noise.DHKey
	log    *slog.Logger

	handshakes chan struct{} // semaphore of inbound handshakes

	mu struct {
		sync.RWMutex
		closed    bool
		conns     map[layout.NodeID]*Conn // the established one per peer
		all       map[*Conn]struct{}      // including those draining
		listeners map[net.Listener]struct{}
		pending   map[net.Conn]struct{} // handshakes in progress
		dials     map[layout.NodeID]*dialCall
	}
	wg   sync.WaitGroup
	done chan struct{} // closed by Close

	endpoints  endpointStats // inline.go
	inlineRuns atomic.Uint64
	monitorOn  atomic.Bool

	evMu      sync.Mutex
	events    []func()
	evRunning bool

	// idle hands work to spawned goroutines that finished theirs and wait
	// for more (see spawn).
	idle chan func()
}

type dialCall struct {
	done chan struct{}
	c    *Conn
	err  error
}

// New returns a Transport. It starts nothing: Serve accepts, Dial dials.
func New(cfg Config) (*Transport, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:        cfg,
		handshakes: make(chan struct{}, cfg.MaxPendingHandshakes),
		done:       make(chan struct{}),
		idle:       make(chan func()),
	}
	copy(t.id[:], cfg.Key.PublicKey().Bytes())
	t.static = noise.DHKey{Private: cfg.Key.Bytes(), Public: cfg.Key.PublicKey().Bytes()}
	t.log = cfg.Logger.With("node", t.id)
	t.mu.conns = make(map[layout.NodeID]*Conn)
	t.mu.all = make(map[*Conn]struct{})
	t.mu.listeners = make(map[net.Listener]struct{})
	t.mu.pending = make(map[net.Conn]struct{})
	t.mu.dials = make(map[layout.NodeID]*dialCall)
	return t, nil
}

// ID returns this node's ID: its public key.
func (t *Transport) ID() layout.NodeID { return t.id }

// spawnIdle is how long a goroutine of spawn waits for more work once it
// finished its function.
const spawnIdle = time.Second

// spawn runs f on a goroutine that Close waits for, unless closing began.
// The goroutine is one that finished an earlier f, if one is idle: its
// stack has already grown to what handlers need (a new goroutine's stack
// growth through a pebble read costs more than the read), and no goroutine
// is created.
func (t *Transport) spawn(f func()) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.mu.closed {
		return false
	}
	select {
	case t.idle <- f:
		return true
	default:
	}
	t.wg.Add(1)
	go t.worker(f)
	return true
}

// worker runs f, then the functions handed to it while it is idle, until
// it has been idle for spawnIdle or the transport closes.
func (t *Transport) worker(f func()) {
	defer t.wg.Done()
	timer := time.NewTimer(spawnIdle)
	defer timer.Stop()
	for {
		f()
		f = nil
		timer.Reset(spawnIdle)
		select {
		case f = <-t.idle:
		case <-timer.C:
			return
		case <-t.done:
			return
		}
	}
}

// Serve accepts connections on ln until Close, which closes ln; it then
// returns nil. Inbound handshakes beyond MaxPendingHandshakes are dropped.
func (t *Transport) Serve(ln net.Listener) error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		ln.Close()
		return nil
	}
	t.mu.listeners[ln] = struct{}{}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.mu.listeners, ln)
		t.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if t.closing() {
				return nil
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				t.log.Warn("rpc: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("rpc: accept: %w", err)
		}
		backoff = 0
		select {
		case t.handshakes <- struct{}{}:
		default:
			t.log.Debug("rpc: too many pending handshakes", "remote", nc.RemoteAddr())
			nc.Close()
			continue
		}
		if !t.spawn(func() {
			defer func() { <-t.handshakes }()
			t.accept(nc)
		}) {
			<-t.handshakes
			nc.Close()
			return nil
		}
	}
}

func (t *Transport) closing() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.mu.closed
}

// track registers a connection in handshake so that Close can abort it.
func (t *Transport) track(nc net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.mu.pending[nc] = struct{}{}
	return true
}

func (t *Transport) untrack(nc net.Conn) {
	t.mu.Lock()
	delete(t.mu.pending, nc)
	t.mu.Unlock()
}

// accept runs the responder's handshake. The connection counts only once
// the initiator's hello has arrived; until then nothing is registered and
// nothing but msg2 is sent.
func (t *Transport) accept(nc net.Conn) {
	if !t.track(nc) {
		nc.Close()
		return
	}
	defer t.untrack(nc)
	nc.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	peer, send, recv, err := t.serverHandshake(nc)
	if err != nil {
		t.log.Debug("rpc: inbound handshake failed", "remote", nc.RemoteAddr(), "err", err)
		nc.Close()
		return
	}
	c := t.newConn(nc, peer, true, send, recv)
	rest, err := c.readHello()
	if err != nil {
		t.log.Debug("rpc: no hello after handshake", "remote", nc.RemoteAddr(), "peer", peer, "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	t.register(c, rest)
}

// Dial returns the established connection to id if there is one, and
// otherwise dials addr and runs the handshake, expecting the node id there.
// Concurrent Dials to one node share one attempt. The error wraps
// ErrHandshake if the node at addr is not id, lacks the cluster secret or
// does not speak the protocol. If deduplication prefers a connection id
// dialed at the same time, Dial returns that one.
func (t *Transport) Dial(ctx context.Context, id layout.NodeID, addr string) (*Conn, error) {
	if id == t.id {
		return nil, errors.New("rpc: dial: node is self")
	}
	for {
		if c := t.Conn(id); c != nil {
			return c, nil
		}
		t.mu.Lock()
		if t.mu.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		if d := t.mu.dials[id]; d != nil {
			t.mu.Unlock()
			select {
			case <-d.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if d.err != nil && ctx.Err() == nil &&
				(errors.Is(d.err, context.Canceled) || errors.Is(d.err, context.DeadlineExceeded)) {
				continue // the other dialer gave up; our ctx still allows a try
			}
			return d.c, d.err
		}
		d := &dialCall{done: make(chan struct{})}
		t.mu.dials[id] = d
		t.mu.Unlock()
		d.c, d.err = t.dial(ctx, id, addr)
		t.mu.Lock()
		delete(t.mu.dials, id)
		t.mu.Unlock()
		close(d.done)
		return d.c, d.err
	}
}

func (t *Transport) dial(ctx context.Context, id layout.NodeID, addr string) (*Conn, error) {
	nc, err := t.cfg.Network.Dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s at %s: %w", id.Short(), addr, err)
	}
	if !t.track(nc) {
		nc.Close()
		return nil, ErrClosed
	}
	defer t.untrack(nc)
	deadline := time.Now().Add(t.cfg.HandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	send, recv, err := t.clientHandshake(nc, id)
	var c *Conn
	if err == nil {
		c = t.newConn(nc, id, false, send, recv)
		// The hello is the first transport message; nothing else is queued.
		c.queueCtrl(frameHello, 0, []byte{1}, true)
		err = c.Err()
	}
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		nc.Close()
		if t.closing() {
			return nil, ErrClosed
		}
		if errors.Is(err, ErrConnLost) || ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %s at %s: %w", ErrHandshake, id.Short(), addr, err)
		}
		return nil, ctx.Err()
	}
	nc.SetDeadline(time.Time{})
	return t.register(c, nil)
}

// register makes c established and deduplicates: with two connections to
// one peer, both sides keep the one dialed by the node with the smaller
// ID, or, if one node dialed both, the newer (it dials only when it has no
// connection left). The loser drains: it stays open for the calls already
// running on it and then closes (see Conn.startDrain). An old connection
// the peer already sent goaway on always loses: the peer has given up on
// it, whatever the rule said on its side.
func (t *Transport) register(c *Conn, first []byte) (*Conn, error) {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		c.nc.Close()
		return nil, ErrClosed
	}
	winner, loser := c, (*Conn)(nil)
	if old := t.mu.conns[c.peer]; old != nil && !old.isClosed() {
		oi, ni := old.initiator(), c.initiator()
		if oi != ni && bytes.Compare(oi[:], ni[:]) < 0 && !old.peerLeft() {
			winner, loser = old, c
		} else {
			loser = old
		}
	}
	t.mu.conns[c.peer] = winner
	t.mu.all[c] = struct{}{}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		c.readLoop(first)
	}()
	go func() {
		defer t.wg.Done()
		c.writerLoop()
	}()
	if winner == c {
		c.announced = true
		if f := t.cfg.OnConnect; f != nil {
			t.queueEvent(func() { f(c) })
		}
	}
	t.mu.Unlock()
	c.log.Debug("rpc: connection established", "inbound", c.inbound, "remote", c.nc.RemoteAddr(), "duplicate", loser != nil)
	if loser != nil {
		loser.startDrain()
	}
	return winner, nil
}

// connClosed forgets a closed connection.
func (t *Transport) connClosed(c *Conn, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mu.all, c)
	if t.mu.conns[c.peer] == c {
		delete(t.mu.conns, c.peer)
	}
	if c.announced {
		if f := t.cfg.OnDisconnect; f != nil {
			t.queueEvent(func() { f(c, err) })
		}
	}
}

// queueEvent runs f after the events queued before it, on the dispatcher
// goroutine. Called with t.mu held, which orders events.
func (t *Transport) queueEvent(f func()) {
	t.evMu.Lock()
	defer t.evMu.Unlock()
	t.events = append(t.events, f)
	if t.evRunning {
		return
	}
	t.evRunning = true
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for {
			t.evMu.Lock()
			if len(t.events) == 0 {
				t.evRunning = false
				t.evMu.Unlock()
				return
			}
			f := t.events[0]
			t.events[0] = nil
			t.events = t.events[1:]
			t.evMu.Unlock()
			f()
		}
	}()
}

// Conn returns the established connection to id, or nil.
func (t *Transport) Conn(id layout.NodeID) *Conn {
	t.mu.RLock()
	c := t.mu.conns[id]
	t.mu.RUnlock()
	if c == nil || c.isClosed() {
		return nil // closing; connClosed will forget it
	}
	return c
}

// Conns returns the established connections, one per peer.
func (t *Transport) Conns() []*Conn {
	t.mu.RLock()
	defer t.mu.RUnlock()
	cs := make([]*Conn, 0, len(t.mu.conns))
	for _, c := range t.mu.conns {
		if !c.isClosed() {
			cs = append(cs, c)
		}
	}
	return cs
}

// Close stops Serve, aborts handshakes, closes every connection (pending
// calls fail with ErrClosed) and waits for all goroutines of the
// transport, including running handlers, which see their context
// cancelled. Safe to call more than once.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.mu.closed = true
	close(t.done)
	var lns []net.Listener
	for ln := range t.mu.listeners {
		lns = append(lns, ln)
	}
	var pending []net.Conn
	for nc := range t.mu.pending {
		pending = append(pending, nc)
	}
	var conns []*Conn
	for c := range t.mu.all {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, nc := range pending {
		nc.Close()
	}
	for _, c := range conns {
		c.closeWith(ErrClosed)
	}
	t.wg.Wait()
	return nil
}
