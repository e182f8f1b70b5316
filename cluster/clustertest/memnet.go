package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// MemNet is an in-memory network of nodes: no sockets, and no clock but
// the time package's, so that it runs inside a testing/synctest bubble
// where time is fake. Connections are byte streams like TCP: buffered
// (writes never block), ordered, with deadlines, and with a one-way
// latency per ordered pair of nodes. Closing one end lets the other read
// what was sent before it, then io.EOF (after the latency), as with a FIN;
// writes to a closed peer fail, as after a reset.
//
// As with FaultNet, each node takes its own Host, so that a connection
// knows both of its nodes.
type MemNet struct {
	// Latency returns the one-way latency from node from to node to (listen
	// addresses); nil means none. It is read at every write.
	Latency func(from, to string) time.Duration

	mu struct {
		sync.Mutex
		listeners map[string]*memListener
		next      int
	}
}

// NewMemNet returns a MemNet with the given latency (nil: none).
func NewMemNet(latency func(from, to string) time.Duration) *MemNet {
	m := &MemNet{Latency: latency}
	m.mu.listeners = map[string]*memListener{}
	return m
}

// Host returns the Network of one node.
func (m *MemNet) Host() *MemHost { return &MemHost{m: m} }

func (m *MemNet) latency(from, to string) time.Duration {
	if m.Latency == nil {
		return 0
	}
	return m.Latency(from, to)
}

// MemHost is one node's view of a MemNet; it implements cluster.Network.
type MemHost struct {
	m    *MemNet
	mu   sync.Mutex
	addr string
}

// Addr returns the node's listen address ("" before Listen).
func (h *MemHost) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Listen binds addr. Port 0 (as in "127.0.0.1:0") picks a fresh address
// "10.0.x.y:3901", so that each node has its own host.
func (h *MemHost) Listen(addr string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if port == "0" {
		m.mu.next++
		addr = fmt.Sprintf("10.0.%d.%d:3901", m.mu.next/250, m.mu.next%250+1)
	}
	if m.mu.listeners[addr] != nil {
		return nil, &net.OpError{Op: "listen", Net: "mem", Addr: memAddr(addr), Err: errors.New("address already in use")}
	}
	l := &memListener{m: m, addr: addr, accept: make(chan *memConn, 64), done: make(chan struct{})}
	m.mu.listeners[addr] = l
	h.mu.Lock()
	h.addr = addr
	h.mu.Unlock()
	return l, nil
}

// Dial connects to the listener at addr. The connection is established
// at once; the latency applies to the bytes.
func (h *MemHost) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := h.m
	m.mu.Lock()
	l := m.mu.listeners[addr]
	m.mu.Unlock()
	refused := &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr), Err: errors.New("connection refused")}
	if l == nil {
		return nil, refused
	}
	self := h.Addr()
	ab, ba := newMemPipe(), newMemPipe()
	local := &memConn{m: m, self: self, peer: addr, rd: ba, wr: ab}
	remote := &memConn{m: m, self: addr, peer: self, rd: ab, wr: ba}
	select {
	case l.accept <- remote:
		return local, nil
	case <-l.done:
		return nil, refused
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

type memListener struct {
	m      *MemNet
	addr   string
	accept chan *memConn
	once   sync.Once
	done   chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.accept:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.m.mu.Lock()
		if l.m.mu.listeners[l.addr] == l {
			delete(l.m.mu.listeners, l.addr)
		}
		l.m.mu.Unlock()
		// refuse what was queued but not accepted
		for {
			select {
			case c := <-l.accept:
				c.Close()
			default:
				return
			}
		}
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr(l.addr) }

// memPipe is one direction of a connection: chunks in order, each
// readable from its due time. An eof chunk marks the writer's close.
type memPipe struct {
	mu     sync.Mutex
	chunks []memChunk
	// wake has a token when the reader should look again (new data, close,
	// new deadline).
	wake chan struct{}
	// readerClosed: the reading end closed; writes to it fail.
	readerClosed bool
}

type memChunk struct {
	b   []byte
	due time.Time
	eof bool
}

func newMemPipe() *memPipe { return &memPipe{wake: make(chan struct{}, 1)} }

func (p *memPipe) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// push appends a chunk due after latency, never before the last one.
func (p *memPipe) push(b []byte, eof bool, latency time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readerClosed && !eof {
		return errors.New("clustertest: memnet: broken pipe")
	}
	due := time.Now().Add(latency)
	if n := len(p.chunks); n > 0 && p.chunks[n-1].due.After(due) {
		due = p.chunks[n-1].due
	}
	p.chunks = append(p.chunks, memChunk{b: b, due: due, eof: eof})
	p.signal()
	return nil
}

// memConn is one end of a connection.
type memConn struct {
	m          *MemNet
	self, peer string
	rd, wr     *memPipe

	mu       sync.Mutex
	closed   bool
	rdl, wdl time.Time // deadlines
}

var errMemClosed = net.ErrClosed

func (c *memConn) Read(b []byte) (int, error) {
	p := c.rd
	for {
		c.mu.Lock()
		closed, dl := c.closed, c.rdl
		c.mu.Unlock()
		if closed {
			return 0, c.opErr("read", errMemClosed)
		}
		now := time.Now()
		if !dl.IsZero() && !now.Before(dl) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		var wait time.Duration = -1
		p.mu.Lock()
		if len(p.chunks) > 0 {
			h := &p.chunks[0]
			if !now.Before(h.due) {
				if h.eof {
					p.mu.Unlock()
					return 0, io.EOF
				}
				n := copy(b, h.b)
				h.b = h.b[n:]
				if len(h.b) == 0 {
					p.chunks = p.chunks[1:]
				}
				p.mu.Unlock()
				return n, nil
			}
			wait = h.due.Sub(now)
		}
		p.mu.Unlock()
		if !dl.IsZero() {
			if d := dl.Sub(now); wait < 0 || d < wait {
				wait = d
			}
		}
		if wait < 0 {
			<-p.wake
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-p.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (c *memConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	closed, dl := c.closed, c.wdl
	c.mu.Unlock()
	if closed {
		return 0, c.opErr("write", errMemClosed)
	}
	if !dl.IsZero() && !time.Now().Before(dl) {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	if len(b) == 0 {
		return 0, nil
	}
	if err := c.wr.push(append([]byte(nil), b...), false, c.m.latency(c.self, c.peer)); err != nil {
		return 0, c.opErr("write", err)
	}
	return len(b), nil
}

// Close sends the end of stream to the peer (after the latency) and makes
// the peer's later writes fail.
func (c *memConn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.wr.push(nil, true, c.m.latency(c.self, c.peer))
	c.rd.mu.Lock()
	c.rd.readerClosed = true
	c.rd.chunks = nil
	c.rd.mu.Unlock()
	c.rd.signal() // wake our own blocked Read
	return nil
}

func (c *memConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "mem", Source: memAddr(c.self), Addr: memAddr(c.peer), Err: err}
}

func (c *memConn) LocalAddr() net.Addr  { return memAddr(c.self) }
func (c *memConn) RemoteAddr() net.Addr { return memAddr(c.peer) }

func (c *memConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl, c.wdl = t, t
	c.mu.Unlock()
	c.rd.signal()
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	c.mu.Unlock()
	c.rd.signal()
	return nil
}

func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	c.mu.Unlock()
	return nil
}
