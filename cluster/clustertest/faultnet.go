package clustertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// FaultNet is TCP on loopback whose links can fail at run time: per
// ordered pair of nodes it can drop traffic (a blackhole: reads stall and
// writes vanish, the connection stays open, as across a broken link) or
// delay it one way, and it can partition sets of nodes from each other.
//
// A node is named by its listen address. Each node takes its own Host
// (a cluster.Network): the Host knows its node's listen address, and
// every connection it dials starts with a small preamble naming that
// address, so the accepting side knows which node dialled. Faults are
// checked at every Read and Write, so they apply to connections already
// open.
//
// A FaultNet is safe for concurrent use. The zero value is not usable:
// call NewFaultNet.
type FaultNet struct {
	mu struct {
		sync.Mutex
		drop  map[link]bool
		delay map[link]time.Duration
		group map[string]int // partition group of each listed node; unlisted nodes are group 0
		parts bool           // a partition is in force
	}
}

type link struct{ from, to string }

// NewFaultNet returns a FaultNet without faults.
func NewFaultNet() *FaultNet {
	f := &FaultNet{}
	f.mu.drop = map[link]bool{}
	f.mu.delay = map[link]time.Duration{}
	return f
}

// Host returns the Network of one node. Use one Host per node; a Host
// may listen again after its listener closed (a restarted node).
func (f *FaultNet) Host() *FaultHost { return &FaultHost{f: f} }

// SetDrop starts (drop) or stops dropping the bytes sent from node from
// to node to. Bytes in flight when the drop starts are lost too.
func (f *FaultNet) SetDrop(from, to string, drop bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if drop {
		f.mu.drop[link{from, to}] = true
	} else {
		delete(f.mu.drop, link{from, to})
	}
}

// SetDelay delays by d the bytes sent from node from to node to (0 ends
// the delay). Bytes keep their order on a connection: a shorter delay
// set later does not let new bytes overtake older ones.
func (f *FaultNet) SetDelay(from, to string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d > 0 {
		f.mu.delay[link{from, to}] = d
	} else {
		delete(f.mu.delay, link{from, to})
	}
}

// Partition cuts the network into groups: nodes of different groups
// cannot exchange bytes. Nodes named in no group form one more group
// together, so Partition([]string{a}) isolates a from the rest. It
// replaces the previous partition.
func (f *FaultNet) Partition(groups ...[]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.group = map[string]int{}
	for i, g := range groups {
		for _, addr := range g {
			f.mu.group[addr] = i + 1
		}
	}
	f.mu.parts = true
}

// Isolate cuts node addr off from every other node.
func (f *FaultNet) Isolate(addr string) { f.Partition([]string{addr}) }

// Heal ends the partition and every drop. Delays stay (SetDelay 0 ends
// them).
func (f *FaultNet) Heal() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.group, f.mu.parts = nil, false
	clear(f.mu.drop)
}

// dropped reports whether bytes from → to are lost now.
func (f *FaultNet) dropped(from, to string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.drop[link{from, to}] {
		return true
	}
	return f.mu.parts && f.mu.group[from] != f.mu.group[to]
}

func (f *FaultNet) delayOf(from, to string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.delay[link{from, to}]
}

// FaultHost is one node's view of a FaultNet; it implements
// cluster.Network.
type FaultHost struct {
	f  *FaultNet
	mu sync.Mutex
	// addr is the node's listen address, set by Listen.
	addr string
}

// Addr returns the node's listen address ("" before Listen).
func (h *FaultHost) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Listen listens on TCP; the bound address names the node.
func (h *FaultHost) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.addr = ln.Addr().String()
	h.mu.Unlock()
	return &faultListener{Listener: ln, f: h.f, self: ln.Addr().String()}, nil
}

// Dial connects to the node listening on addr and sends the preamble
// naming this node.
func (h *FaultHost) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	self := h.Addr()
	if len(self) > 255 {
		c.Close()
		return nil, errors.New("clustertest: address too long")
	}
	if _, err := c.Write(append([]byte{byte(len(self))}, self...)); err != nil {
		c.Close()
		return nil, err
	}
	return newFaultConn(c, h.f, self, addr), nil
}

type faultListener struct {
	net.Listener
	f    *FaultNet
	self string
}

// Accept returns the connection at once; its first Read or Write reads
// the dialler's preamble, so that a slow dialler cannot stall Accept.
func (l *faultListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	fc := newFaultConn(c, l.f, l.self, "")
	fc.needPreamble = true
	return fc, nil
}

// faultConn applies the faults of the link between self and peer.
type faultConn struct {
	net.Conn
	f    *FaultNet
	self string

	once         sync.Once
	needPreamble bool
	peer         string
	peerErr      error

	// wmu orders writes; queue holds delayed writes, sent by pump.
	wmu     sync.Mutex
	queue   []delayed
	pumping bool
	werr    error

	closeOnce sync.Once
	closed    chan struct{}
}

type delayed struct {
	b   []byte
	due time.Time
}

func newFaultConn(c net.Conn, f *FaultNet, self, peer string) *faultConn {
	return &faultConn{Conn: c, f: f, self: self, peer: peer, closed: make(chan struct{})}
}

// resolve reads the preamble on the accepting side.
func (c *faultConn) resolve() error {
	c.once.Do(func() {
		if !c.needPreamble {
			return
		}
		var n [1]byte
		if _, err := io.ReadFull(c.Conn, n[:]); err != nil {
			c.peerErr = err
			return
		}
		b := make([]byte, n[0])
		if _, err := io.ReadFull(c.Conn, b); err != nil {
			c.peerErr = err
			return
		}
		c.peer = string(b)
	})
	return c.peerErr
}

func (c *faultConn) Read(p []byte) (int, error) {
	if err := c.resolve(); err != nil {
		return 0, err
	}
	for {
		n, err := c.Conn.Read(p)
		if err != nil || !c.f.dropped(c.peer, c.self) {
			return n, err
		}
		// lost on the way: read on, so that the read stalls
	}
}

func (c *faultConn) Write(p []byte) (int, error) {
	if err := c.resolve(); err != nil {
		return 0, err
	}
	if c.f.dropped(c.self, c.peer) {
		return len(p), nil
	}
	d := c.f.delayOf(c.self, c.peer)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if d == 0 && len(c.queue) == 0 && !c.pumping {
		return c.Conn.Write(p)
	}
	// Delayed, or behind delayed bytes: queue in order.
	due := time.Now().Add(d)
	if n := len(c.queue); n > 0 && c.queue[n-1].due.After(due) {
		due = c.queue[n-1].due
	}
	c.queue = append(c.queue, delayed{b: append([]byte(nil), p...), due: due})
	if !c.pumping {
		c.pumping = true
		go c.pump()
	}
	return len(p), nil
}

// pump writes the queued bytes when they are due. It exits when the queue
// is empty or the connection closes.
func (c *faultConn) pump() {
	for {
		c.wmu.Lock()
		select {
		case <-c.closed:
			if c.werr == nil {
				c.werr = net.ErrClosed
			}
		default:
		}
		if len(c.queue) == 0 || c.werr != nil {
			c.pumping = false
			c.queue = nil
			c.wmu.Unlock()
			return
		}
		head := c.queue[0]
		c.wmu.Unlock()
		if wait := time.Until(head.due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.closed:
				t.Stop()
			}
		}
		var err error
		if !c.f.dropped(c.self, c.peer) {
			_, err = c.Conn.Write(head.b)
		}
		c.wmu.Lock()
		if len(c.queue) > 0 {
			c.queue = c.queue[1:]
		}
		if err != nil && c.werr == nil {
			c.werr = err
		}
		c.wmu.Unlock()
	}
}

// Close closes at once: delayed bytes not yet sent are lost. It takes no
// lock that a blocked Write holds.
func (c *faultConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *faultConn) String() string { return fmt.Sprintf("%s->%s", c.self, c.peer) }
