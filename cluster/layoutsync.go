package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/cluster/rpc"
)

// The endpoints of the cluster layer itself.
const (
	epPing   = "cluster/ping"
	epPeers  = "cluster/peers"
	epLayout = "cluster/layout"
)

func (c *Cluster) registerHandlers() {
	c.Handle(epPing, HandlerFunc(c.servePing))
	c.Handle(epPeers, HandlerFunc(c.servePeers))
	c.Handle(epLayout, HandlerFunc(c.serveLayout))
}

// Layout returns the current applied layout version. It is an immutable
// snapshot: never modify it.
func (c *Cluster) Layout() *layout.Layout { return c.layout.Load() }

// History returns a copy of the layout history: the active versions, the
// trackers and the staged changes.
func (c *Cluster) History() *layout.History {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.history.Clone()
}

// OnLayoutChange registers fn, called with the new history after every
// change of the history, local or learnt from a peer (not under a lock;
// calls do not overlap; fn must not change the layout itself). Register
// before Start.
func (c *Cluster) OnLayoutChange(fn func(*layout.History)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.listeners = append(c.mu.listeners, fn)
}

// UpdateLayout applies fn to a copy of the history (stage a role, apply,
// revert…), persists the result, makes it current and sends it to every
// connected peer. An error from fn changes nothing.
func (c *Cluster) UpdateLayout(fn func(h *layout.History) error) (*layout.History, error) {
	c.updMu.Lock()
	defer c.updMu.Unlock()
	h := c.History()
	if err := fn(h); err != nil {
		return nil, err
	}
	if _, err := c.commitLocked(h); err != nil {
		return nil, err
	}
	c.broadcastLayout()
	return h.Clone(), nil
}

// MarkSynced records that this node holds every entry it should for
// layout version v. Until tables replicate over the cluster, nodes do not
// call it: Config.ManualSync is off and a version counts as synced as soon
// as it is acknowledged, since there is no data to move.
func (c *Cluster) MarkSynced(v uint64) error {
	c.updMu.Lock()
	defer c.updMu.Unlock()
	h := c.History()
	if !h.SetSync(c.id, v) {
		return nil
	}
	if _, err := c.commitLocked(h); err != nil {
		return err
	}
	c.broadcastLayout()
	return nil
}

// bookkeep advances this node's own trackers in h: it acknowledges the
// current version, marks it synced unless syncing is manual, acknowledges
// the versions every node has synced, and retires the versions nobody
// needs any more.
func (c *Cluster) bookkeep(h *layout.History) {
	cur := h.Current().Version
	h.SetAck(c.id, cur)
	if !c.cfg.ManualSync {
		h.SetSync(c.id, cur)
	}
	if m := h.MinSync(); m > 0 {
		h.SetSyncAck(c.id, m)
	}
	h.Prune()
}

// commitLocked makes h the node's history if it differs from the current
// one: it persists it first, then publishes it. It reports whether h was
// new. c.updMu must be held.
func (c *Cluster) commitLocked(h *layout.History) (bool, error) {
	c.bookkeep(h)
	enc := h.Encode(nil)
	c.mu.Lock()
	same := bytes.Equal(enc, c.mu.encoded)
	c.mu.Unlock()
	if same {
		return false, nil
	}
	if err := saveEncodedHistory(c.cfg.MetadataDir, enc); err != nil {
		return false, err
	}
	old := c.Layout()
	c.mu.Lock()
	c.setHistoryLocked(h, enc)
	listeners := c.mu.listeners
	snapshot := c.mu.history
	c.mu.Unlock()
	if cur := h.Current(); cur.Version != old.Version {
		c.log.Info("layout version now current", "version", cur.Version, "previous", old.Version, "nodes", len(cur.Roles))
	}
	for _, fn := range listeners {
		fn(snapshot.Clone())
	}
	return true, nil
}

// setHistoryLocked installs h, encoded as enc, as the node's history.
// c.mu must be held.
func (c *Cluster) setHistoryLocked(h *layout.History, enc []byte) {
	c.mu.history = h
	c.mu.encoded = enc
	c.mu.digest = sha256.Sum256(enc)
	c.layout.Store(h.Current())
}

// broadcastLayout sends the history to every live peer.
func (c *Cluster) broadcastLayout() {
	if c.tr == nil {
		return
	}
	for _, conn := range c.tr.Conns() {
		id := conn.Peer()
		c.spawn(func() { c.pushLayout(id) })
	}
}

// pushLayout sends our history to a peer, which merges it and answers
// with its merged history, which we merge in turn: one round trip leaves
// both with the join of their histories.
func (c *Cluster) pushLayout(id NodeID) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	c.mu.Lock()
	body := c.mu.encoded
	c.mu.Unlock()
	resp, err := c.tr.Call(ctx, id, &rpc.Request{Endpoint: epLayout, Priority: rpc.Normal, Body: body})
	if err != nil {
		c.log.Debug("layout push failed", "peer", id, "err", err)
		return
	}
	if bytes.Equal(resp.Body, body) {
		return
	}
	if _, err := c.mergeHistory(resp.Body); err != nil {
		c.log.Warn("layout from peer rejected", "peer", id, "err", err)
	}
}

func (c *Cluster) serveLayout(_ context.Context, from NodeID, req *Incoming) (*Response, error) {
	changed, err := c.mergeHistory(req.Body)
	if err != nil {
		c.log.Warn("layout from peer rejected", "peer", from, "err", err)
		return nil, err
	}
	if changed {
		c.broadcastLayout()
	}
	c.mu.Lock()
	body := c.mu.encoded
	c.mu.Unlock()
	return &Response{Body: body}, nil
}

// mergeHistory joins an encoded history from a peer into ours.
func (c *Cluster) mergeHistory(b []byte) (bool, error) {
	other, err := layout.DecodeHistory(b)
	if err != nil {
		return false, err
	}
	if rf := other.Current().ReplicationFactor; other.Current().Version > 0 && rf != c.cfg.ReplicationFactor {
		return false, fmt.Errorf("cluster: peer's layout has replication factor %d, ours is %d", rf, c.cfg.ReplicationFactor)
	}
	c.updMu.Lock()
	defer c.updMu.Unlock()
	h := c.History()
	h.Merge(other)
	return c.commitLocked(h)
}
