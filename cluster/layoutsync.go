package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
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

// HistoryView returns the installed layout history without copying it:
// an immutable snapshot that the caller must not modify (History returns
// a copy to modify). Reads and writes of the tables use it on every
// request.
func (c *Cluster) HistoryView() *layout.History {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.history
}

// BeginWrite starts a write to the replica sets of a layout history: it
// returns the installed history (an immutable snapshot: do not modify it)
// and a function to call once the write is over. While writes that began
// under a version are in progress, this node does not acknowledge a newer
// one: an acknowledgement promises that every write this node still makes
// goes to the replica sets of the new version too, which is what lets the
// nodes of that version start syncing without missing a write (Garage's
// layout "ack lock").
func (c *Cluster) BeginWrite() (*layout.History, func()) {
	c.mu.Lock()
	h := c.mu.history
	v := h.Current().Version
	c.mu.inflight[v]++
	c.mu.Unlock()
	var once sync.Once
	return h, func() { once.Do(func() { c.endWrite(v) }) }
}

func (c *Cluster) endWrite(v uint64) {
	c.mu.Lock()
	c.mu.inflight[v]--
	drained := c.mu.inflight[v] == 0
	if drained {
		delete(c.mu.inflight, v)
	}
	advance := drained && c.ackableLocked() > c.mu.history.Trackers.Ack[c.id]
	c.mu.Unlock()
	if advance {
		c.spawn(c.advanceAck)
	}
}

// ackableLocked is the highest version this node may acknowledge: the
// installed current version, unless writes that began under an older one
// are still in progress. c.mu must be held.
func (c *Cluster) ackableLocked() uint64 {
	v := c.mu.history.Current().Version
	for u := range c.mu.inflight {
		v = min(v, u)
	}
	return v
}

// advanceAck recommits the history so that bookkeep raises this node's
// acknowledgement to what ackableLocked now allows.
func (c *Cluster) advanceAck() {
	c.updMu.Lock()
	defer c.updMu.Unlock()
	if _, err := c.commitLocked(c.History()); err != nil {
		c.log.Warn("recording the layout acknowledgement failed", "err", err)
		return
	}
	c.broadcastLayout()
}

// bookkeep advances this node's own trackers in h: it acknowledges the
// versions it may (see BeginWrite), marks them synced unless syncing is
// manual, acknowledges the versions every node has synced, and retires the
// versions nobody needs any more.
func (c *Cluster) bookkeep(h *layout.History) {
	c.mu.Lock()
	ack := min(h.Current().Version, c.ackableLocked())
	c.mu.Unlock()
	h.SetAck(c.id, ack)
	if !c.cfg.ManualSync {
		h.SetSync(c.id, ack)
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
	c.mu.Lock()
	advance := c.ackableLocked() > c.mu.history.Trackers.Ack[c.id]
	c.mu.Unlock()
	if advance {
		// The version just installed can be acknowledged now that no
		// write can begin under the previous one (unless writes that did
		// are still running: endWrite acknowledges it when they end).
		if _, err := c.commitLocked(c.History()); err != nil {
			return true, err
		}
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
