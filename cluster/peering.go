package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grangeio/grange/cluster/rpc"
)

// peer is what this node knows of another node. Guarded by Cluster.mu.
type peer struct {
	id       NodeID
	addr     string // dialable address; "" when unknown
	hostname string
	up       bool
	failed   int           // consecutive failed pings
	rtt      time.Duration // smoothed round-trip time; 0 when never measured
	lastSeen time.Time     // last successful contact

	dialing   bool
	nextDial  time.Time
	backoff   time.Duration
	lastPing  time.Time
	pinging   bool
	layoutVer uint64 // the current layout version it reported
}

// NodeStatus is one node as seen from this one.
type NodeStatus struct {
	ID       NodeID
	Addr     string
	Hostname string
	// Up is true for this node and for peers with a live connection that
	// answers pings.
	Up bool
	// LastSeen is the last successful contact (zero if never).
	LastSeen time.Time
	// RTT is the smoothed ping round-trip time (zero if never measured).
	RTT time.Duration
	// LayoutVersion is the current layout version the node reported.
	LayoutVersion uint64
	IsSelf        bool
}

// Status lists this node and every known peer, sorted by ID.
func (c *Cluster) Status() []NodeStatus {
	now := c.cfg.Now()
	c.mu.Lock()
	out := []NodeStatus{{ID: c.id, Addr: c.cfg.PublicAddr, Hostname: c.cfg.Hostname, Up: true, LastSeen: now, LayoutVersion: c.mu.history.Current().Version, IsSelf: true}}
	for _, p := range c.mu.peers {
		out = append(out, NodeStatus{ID: p.id, Addr: p.addr, Hostname: p.hostname, Up: p.up, LastSeen: p.lastSeen, RTT: p.rtt, LayoutVersion: p.layoutVer})
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b NodeStatus) int { return strings.Compare(string(a.ID[:]), string(b.ID[:])) })
	return out
}

// IsUp reports whether a node is reachable now (this node always is).
func (c *Cluster) IsUp(id NodeID) bool {
	if id == c.id {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.mu.peers[id]
	return p != nil && p.up
}

// RTT returns the smoothed round-trip time to a node (0 for this node or
// when unknown).
func (c *Cluster) RTT(id NodeID) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.mu.peers[id]; p != nil {
		return p.rtt
	}
	return 0
}

// Connect records addr as the address of node id and connects to it now.
// It fails if the node cannot be reached, is not id, or lacks the cluster
// secret.
func (c *Cluster) Connect(ctx context.Context, id NodeID, addr string) error {
	if c.tr == nil {
		return ErrRPCDisabled
	}
	if id == c.id {
		return errors.New("cluster: cannot connect a node to itself")
	}
	c.mu.Lock()
	c.learnPeerLocked(id, addr, true)
	c.mu.Unlock()
	_, err := c.dial(ctx, id)
	return err
}

// learnPeerLocked records a peer and, if override or none is known, its
// address.
func (c *Cluster) learnPeerLocked(id NodeID, addr string, override bool) *peer {
	if id == c.id {
		return nil
	}
	p := c.mu.peers[id]
	if p == nil {
		p = &peer{id: id}
		c.mu.peers[id] = p
		c.wake()
	}
	if addr != "" && (override || p.addr == "" || !p.up) && p.addr != addr {
		c.setAddrLocked(p, addr)
		p.nextDial = time.Time{}
		p.backoff = 0
		c.wake()
	}
	return p
}

func (c *Cluster) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// dial connects to a known peer, or returns its current connection.
func (c *Cluster) dial(ctx context.Context, id NodeID) (*rpc.Conn, error) {
	if conn := c.tr.Conn(id); conn != nil {
		return conn, nil
	}
	c.mu.Lock()
	p := c.mu.peers[id]
	addr := ""
	if p != nil {
		addr = p.addr
	}
	c.mu.Unlock()
	if addr == "" {
		return nil, fmt.Errorf("%w %s", ErrUnknownPeer, id.Short())
	}
	conn, err := c.tr.Dial(ctx, id, addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to %s at %s: %w", id.Short(), addr, err)
	}
	return conn, nil
}

// onConnect runs when a connection to a peer becomes established.
func (c *Cluster) onConnect(conn *rpc.Conn) {
	id := conn.Peer()
	c.mu.Lock()
	p := c.learnPeerLocked(id, "", false)
	if !conn.Inbound() && conn.RemoteAddr() != nil && p.addr == "" {
		c.setAddrLocked(p, conn.RemoteAddr().String())
	}
	wasUp := p.up
	p.up, p.failed, p.backoff, p.nextDial = true, 0, 0, time.Time{}
	p.lastSeen = c.cfg.Now()
	c.mu.Unlock()
	if !wasUp {
		c.log.Info("peer up", "peer", id, "inbound", conn.Inbound())
	}
	// Exchange status, layout and peers at once rather than at the next
	// tick, so that a new node learns the cluster quickly.
	c.spawn(func() {
		c.ping(id)
		c.exchangePeers(id)
	})
}

// onDisconnect runs when a connection closes.
func (c *Cluster) onDisconnect(conn *rpc.Conn, err error) {
	id := conn.Peer()
	if c.tr.Conn(id) != nil {
		return // a duplicate connection closed; the peer is still reachable
	}
	c.mu.Lock()
	p := c.mu.peers[id]
	wasUp := p != nil && p.up
	if p != nil {
		p.up = false
	}
	closed := c.mu.closed
	c.mu.Unlock()
	if wasUp && !closed {
		c.log.Warn("peer down: connection lost", "peer", id, "err", err)
	}
	c.wake()
}

// spawn runs fn in a goroutine Close waits for, unless closing has begun.
func (c *Cluster) spawn(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return
	}
	c.wg.Go(fn)
}

// sawPeer notes a successful contact.
func (c *Cluster) sawPeer(id NodeID) {
	c.mu.Lock()
	if p := c.mu.peers[id]; p != nil {
		p.lastSeen = c.cfg.Now()
	}
	c.mu.Unlock()
}

// maintain is the peering loop: it redials down peers with backoff, pings
// live ones, exchanges peer lists and persists the peer list.
func (c *Cluster) maintain() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	nextExchange := c.cfg.Now().Add(c.cfg.ExchangeInterval)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		case <-c.kick:
		}
		now := c.cfg.Now()
		var toDial, toPing, live []NodeID
		c.mu.Lock()
		for id, p := range c.mu.peers {
			switch {
			case p.up:
				live = append(live, id)
				if !p.pinging && now.Sub(p.lastPing) >= c.cfg.PingInterval {
					p.pinging, p.lastPing = true, now
					toPing = append(toPing, id)
				}
			case !p.dialing && p.addr != "" && !now.Before(p.nextDial):
				p.dialing = true
				toDial = append(toDial, id)
			}
		}
		c.mu.Unlock()
		for _, id := range toDial {
			c.wg.Go(func() { c.redial(id) })
		}
		for _, id := range toPing {
			c.wg.Go(func() { c.ping(id) })
		}
		if !now.Before(nextExchange) && len(live) > 0 {
			nextExchange = now.Add(c.cfg.ExchangeInterval)
			id := live[rand.IntN(len(live))]
			c.wg.Go(func() { c.exchangePeers(id) })
		}
		c.savePeers()
	}
}

// redial tries once to reach a down peer and schedules the next attempt.
func (c *Cluster) redial(id NodeID) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	_, err := c.dial(ctx, id)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.mu.peers[id]
	if p == nil {
		return
	}
	p.dialing = false
	if err == nil {
		return
	}
	if p.backoff == 0 {
		p.backoff = 500 * time.Millisecond
	} else {
		p.backoff = min(2*p.backoff, c.cfg.MaxRedialDelay)
	}
	// jitter of ±25% so that restarted nodes do not dial in lockstep
	d := p.backoff*3/4 + rand.N(p.backoff/2+1)
	p.nextDial = c.cfg.Now().Add(d)
	if c.ctx.Err() == nil {
		c.log.Debug("peer unreachable", "peer", id, "addr", p.addr, "retry_in", d, "err", err)
	}
}

// ping measures the round trip to a peer and exchanges status (address,
// hostname, layout digest). A layout digest that differs from ours starts
// a layout exchange.
func (c *Cluster) ping(id NodeID) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.PingTimeout)
	defer cancel()
	start := time.Now()
	resp, err := c.tr.Call(ctx, id, &rpc.Request{Endpoint: epPing, Priority: rpc.Interactive, Body: c.statusMsg().encode(nil)})
	rtt := time.Since(start)
	var st statusMsg
	if err == nil {
		err = st.decode(resp.Body)
	}
	c.mu.Lock()
	p := c.mu.peers[id]
	if p == nil {
		c.mu.Unlock()
		return
	}
	p.pinging = false
	if err != nil {
		if c.ctx.Err() != nil {
			c.mu.Unlock()
			return
		}
		p.failed++
		failed := p.failed
		down := p.up && failed >= c.cfg.MaxFailedPings
		if down {
			p.up = false
		}
		c.mu.Unlock()
		c.log.Debug("ping failed", "peer", id, "failed", failed, "err", err)
		if down {
			c.log.Warn("peer down: missed pings", "peer", id, "missed", failed)
			if conn := c.tr.Conn(id); conn != nil {
				conn.Close()
			}
		}
		return
	}
	p.failed = 0
	p.lastSeen = c.cfg.Now()
	if p.rtt == 0 {
		p.rtt = rtt
	} else {
		p.rtt = (7*p.rtt + rtt) / 8
	}
	c.notePeerStatusLocked(p, &st)
	differs := st.digest != c.mu.digest
	c.mu.Unlock()
	if differs {
		c.pushLayout(id)
	}
}

// setAddrLocked records a peer's address, to be persisted.
func (c *Cluster) setAddrLocked(p *peer, addr string) {
	p.addr = addr
	c.mu.peersDirty = true
}

// notePeerStatusLocked records what a peer said about itself.
func (c *Cluster) notePeerStatusLocked(p *peer, st *statusMsg) {
	p.hostname = st.hostname
	p.layoutVer = st.layoutVersion
	if st.addr != "" && st.addr != p.addr {
		c.setAddrLocked(p, st.addr)
	}
}

// statusMsg describes this node for a ping.
func (c *Cluster) statusMsg() *statusMsg {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &statusMsg{addr: c.cfg.PublicAddr, hostname: c.cfg.Hostname, layoutVersion: c.mu.history.Current().Version, digest: c.mu.digest}
}

// servePing answers a ping with this node's status.
func (c *Cluster) servePing(_ context.Context, from NodeID, req *Incoming) (*Response, error) {
	var st statusMsg
	if err := st.decode(req.Body); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if p := c.mu.peers[from]; p != nil {
		c.notePeerStatusLocked(p, &st)
	}
	c.mu.Unlock()
	return &Response{Body: c.statusMsg().encode(nil)}, nil
}

// exchangePeers sends our peer list to a peer and learns its list.
func (c *Cluster) exchangePeers(id NodeID) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	resp, err := c.tr.Call(ctx, id, &rpc.Request{Endpoint: epPeers, Priority: rpc.Normal, Body: encodePeerList(nil, c.peerList())})
	if err != nil {
		c.log.Debug("peer exchange failed", "peer", id, "err", err)
		return
	}
	list, err := decodePeerList(resp.Body)
	if err != nil {
		c.log.Warn("peer exchange: bad answer", "peer", id, "err", err)
		return
	}
	c.learnPeers(list)
}

func (c *Cluster) servePeers(_ context.Context, _ NodeID, req *Incoming) (*Response, error) {
	list, err := decodePeerList(req.Body)
	if err != nil {
		return nil, err
	}
	c.learnPeers(list)
	return &Response{Body: encodePeerList(nil, c.peerList())}, nil
}

// peerList is every node with a known address, this one included.
func (c *Cluster) peerList() []peerAddr {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []peerAddr
	if c.cfg.PublicAddr != "" {
		out = append(out, peerAddr{c.id, c.cfg.PublicAddr})
	}
	for _, p := range c.mu.peers {
		if p.addr != "" {
			out = append(out, peerAddr{p.id, p.addr})
		}
	}
	slices.SortFunc(out, func(a, b peerAddr) int { return strings.Compare(string(a.id[:]), string(b.id[:])) })
	return out
}

func (c *Cluster) learnPeers(list []peerAddr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pa := range list {
		c.learnPeerLocked(pa.id, pa.addr, false)
	}
}

// peerListFile keeps the known peers so that a restarted node finds the
// cluster without bootstrap_peers.
const peerListFile = "peer_list"

func (c *Cluster) loadPeers() error {
	b, err := os.ReadFile(filepath.Join(c.cfg.MetadataDir, peerListFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: peer list: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		id, addr, err := ParsePeer(line)
		if err != nil {
			c.log.Warn("peer list: skipping a bad line", "err", err)
			continue
		}
		c.learnPeerLocked(id, addr, false)
	}
	c.mu.peersDirty = false
	return nil
}

// savePeers rewrites the peer list file when an address changed.
func (c *Cluster) savePeers() {
	c.mu.Lock()
	dirty := c.mu.peersDirty
	c.mu.peersDirty = false
	c.mu.Unlock()
	if !dirty {
		return
	}
	var sb strings.Builder
	for _, pa := range c.peerList() {
		if pa.id != c.id {
			fmt.Fprintf(&sb, "%s@%s\n", pa.id, pa.addr)
		}
	}
	if err := writeFileAtomic(filepath.Join(c.cfg.MetadataDir, peerListFile), []byte(sb.String()), 0o600); err != nil {
		c.log.Warn("cannot save the peer list", "err", err)
		c.mu.Lock()
		c.mu.peersDirty = true // try again at the next tick
		c.mu.Unlock()
	}
}
