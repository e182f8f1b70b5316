package adminapi

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
)

// connectTimeout bounds each connection attempt of ConnectClusterNodes.
const connectTimeout = 15 * time.Second

// minCapacityBytes is the smallest capacity a storage node may have, as in
// Garage: smaller values are almost certainly a unit mistake.
const minCapacityBytes = 1024

// nowMs is the millisecond wall clock that stamps staged layout changes:
// the staging area is a last-writer-wins map merged between nodes, so
// stamps must be comparable across machines. The layout keeps a new stamp
// above the one it replaces whatever this clock says.
func (s *Server) nowMs() uint64 { return uint64(s.cfg.Now().UnixMilli()) }

func compareIDs(a, b cluster.NodeID) int { return strings.Compare(string(a[:]), string(b[:])) }

// sortedIDs returns the keys of a role map in ID order.
func sortedIDs[V any](m map[cluster.NodeID]V) []cluster.NodeID {
	ids := make([]cluster.NodeID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareIDs)
	return ids
}

func (s *Server) version() string {
	if s.cfg.Version != "" {
		return s.cfg.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "unknown"
}

func (s *Server) getClusterStatus(*fasthttp.RequestCtx) (any, error) {
	c := s.cfg.Cluster
	h := c.History()
	cur := h.Current()
	nodes := map[cluster.NodeID]*NodeResp{}
	node := func(id cluster.NodeID) *NodeResp {
		n := nodes[id]
		if n == nil {
			n = &NodeResp{ID: id.String()}
			nodes[id] = n
		}
		return n
	}
	t := s.cfg.Now() // LastSeen comes from the same clock
	for _, st := range c.Status() {
		n := node(st.ID)
		n.IsUp = st.Up
		n.Addr, n.Hostname = nonEmpty(st.Addr), nonEmpty(st.Hostname)
		if !st.LastSeen.IsZero() {
			secs := uint64(max(t.Sub(st.LastSeen), 0) / time.Second)
			n.LastSeenSecsAgo = &secs
		}
		if st.RTT > 0 {
			ms := float64(st.RTT.Microseconds()) / 1000
			n.RTTMs = &ms
		}
		if st.IsSelf {
			v := s.version()
			n.GarageVersion = &v
		}
	}
	for id, r := range cur.Roles {
		node(id).Role = assignedRole(r)
	}
	// Storage nodes of older versions still active hold data that is
	// being moved to the new ones.
	for _, v := range h.Versions {
		if v == cur {
			continue
		}
		for id, r := range v.Roles {
			if _, ok := cur.Roles[id]; !ok && r.CapacityBytes > 0 {
				node(id).Draining = true
			}
		}
	}
	out := &GetClusterStatusResponse{LayoutVersion: cur.Version, Nodes: make([]NodeResp, 0, len(nodes))}
	for _, id := range sortedIDs(nodes) {
		out.Nodes = append(out.Nodes, *nodes[id])
	}
	return out, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func assignedRole(r layout.Role) *NodeAssignedRole {
	return &NodeAssignedRole{Zone: r.Zone, Capacity: capacityOf(r), Tags: nonNil(r.Tags)}
}

// capacityOf is the wire form of a capacity: null for a gateway.
func capacityOf(r layout.Role) *uint64 {
	if r.CapacityBytes == 0 {
		return nil
	}
	c := r.CapacityBytes
	return &c
}

// clusterHealth summarises, as Garage does, whether every partition can
// be written: a partition has quorum when, in every active layout version,
// a write quorum (⌈(RF+1)/2⌉) of its replicas is up, and is all-ok when
// all of them are.
func (s *Server) clusterHealth() *GetClusterHealthResponse {
	c := s.cfg.Cluster
	h := c.History()
	up := map[cluster.NodeID]bool{}
	status := c.Status()
	for _, st := range status {
		if st.Up {
			up[st.ID] = true
		}
	}
	resp := &GetClusterHealthResponse{KnownNodes: len(status), ConnectedNodes: len(up), Partitions: layout.NumPartitions}
	storage := h.Current().StorageNodes()
	resp.StorageNodes = len(storage)
	for _, id := range storage {
		if up[id] {
			resp.StorageNodesOk++
		}
	}
	for p := range layout.NumPartitions {
		quorum, allOK, sets := true, true, 0
		for _, v := range h.Versions {
			reps := v.Replicas(layout.Partition(p))
			if len(reps) == 0 {
				continue // a version without storage nodes (version 0) stores nothing
			}
			sets++
			n := 0
			for _, id := range reps {
				if up[id] {
					n++
				}
			}
			if n < writeQuorum(v.ReplicationFactor, len(reps)) {
				quorum = false
			}
			if n < len(reps) {
				allOK = false
			}
		}
		if sets == 0 {
			continue
		}
		if quorum {
			resp.PartitionsQuorum++
		}
		if allOK {
			resp.PartitionsAllOk++
		}
	}
	switch {
	case resp.PartitionsQuorum == resp.Partitions && resp.StorageNodesOk == resp.StorageNodes:
		resp.Status = "healthy"
	case resp.PartitionsQuorum == resp.Partitions:
		resp.Status = "degraded"
	default:
		resp.Status = "unavailable"
	}
	return resp
}

// writeQuorum is ⌈(rf+1)/2⌉, capped by the number of replicas.
func writeQuorum(rf, replicas int) int {
	return max(min((rf+2)/2, replicas), 1)
}

func (s *Server) getClusterHealth(*fasthttp.RequestCtx) (any, error) { return s.clusterHealth(), nil }

func (s *Server) connectClusterNodes(rc *fasthttp.RequestCtx) (any, error) {
	var peers []string
	if err := decode(rc, &peers); err != nil {
		return nil, err
	}
	out := make([]ConnectNodeResponse, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			err := s.connect(p)
			out[i].Success = err == nil
			if err != nil {
				msg := err.Error()
				out[i].Error = &msg
			}
		})
	}
	wg.Wait()
	return out, nil
}

func (s *Server) connect(peer string) error {
	id, addr, err := cluster.ParsePeer(peer)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	return s.cfg.Cluster.Connect(ctx, id, addr)
}

func (s *Server) getNodeInfo(rc *fasthttp.RequestCtx) (any, error) {
	return forNode(s, rc, "GetNodeInfo", func() (LocalGetNodeInfoResponse, error) {
		return LocalGetNodeInfoResponse{
			NodeID:        s.cfg.Cluster.ID().String(),
			GarageVersion: s.version(),
			RustVersion:   runtime.Version(),
			DBEngine:      "pebble",
		}, nil
	})
}

// forNode answers an operation addressed with ?node= for this node only:
// grange does not forward admin requests to other nodes. An error of fn
// is this node's entry in the error map, as Garage reports a node that
// failed; an apiError (a bad request) is returned as such.
func forNode[T any](s *Server, rc *fasthttp.RequestCtx, op string, fn func() (T, error)) (*MultiResponse[T], error) {
	node := string(rc.QueryArgs().Peek("node"))
	if node == "" {
		return nil, badRequest("query parameter node is required: self, * or a node ID")
	}
	self := s.cfg.Cluster.ID().String()
	out := &MultiResponse[T]{Success: map[string]T{}, Error: map[string]string{}}
	switch node {
	case "self", "*", self:
		v, err := fn()
		var ae *apiError
		switch {
		case errors.As(err, &ae):
			return nil, err
		case err != nil:
			s.log.Error("admin request failed", "op", op, "err", err)
			out.Error[self] = err.Error()
		default:
			out.Success[self] = v
		}
	default:
		if _, err := layout.ParseNodeID(node); err != nil {
			return nil, badRequest("query parameter node: want self, * or a full node ID")
		}
		out.Error[node] = fmt.Sprintf("grange answers %s for the node it runs on only: ask that node's admin API", op)
	}
	return out, nil
}

// layoutResponse describes the current version of h and the changes
// staged on top of it.
func layoutResponse(h *layout.History) *GetClusterLayoutResponse {
	cur := h.Current()
	out := layoutVersionResponse(cur)
	for _, id := range sortedIDs(h.Staging.Roles) {
		st := h.Staging.Roles[id]
		old, had := cur.Roles[id]
		switch {
		case st.Role == nil && !had:
			continue // removing a node that has no role changes nothing
		case st.Role == nil:
			out.StagedRoleChanges = append(out.StagedRoleChanges, NodeRoleChange{ID: id.String(), Remove: true})
		case had && sameRole(old, *st.Role):
			continue
		default:
			out.StagedRoleChanges = append(out.StagedRoleChanges, NodeRoleChange{ID: id.String(), Zone: st.Role.Zone, Capacity: capacityOf(*st.Role), Tags: nonNil(st.Role.Tags)})
		}
	}
	if p := h.Staging.Parameters; h.Staging.ParamStamp != 0 && p != cur.Parameters {
		out.StagedParameters = &LayoutParameters{ZoneRedundancy: ZoneRedundancy{AtLeast: p.ZoneRedundancy}}
	}
	return out
}

// layoutVersionResponse describes one layout version, without staged
// changes.
func layoutVersionResponse(l *layout.Layout) *GetClusterLayoutResponse {
	out := &GetClusterLayoutResponse{
		Version:           l.Version,
		Roles:             []LayoutNodeRole{},
		Parameters:        LayoutParameters{ZoneRedundancy: ZoneRedundancy{AtLeast: l.Parameters.ZoneRedundancy}},
		PartitionSize:     l.PartitionSize,
		StagedRoleChanges: []NodeRoleChange{},
	}
	for _, id := range sortedIDs(l.Roles) {
		r := l.Roles[id]
		parts := uint64(l.Partitions(id))
		usable := l.UsableBytes(id)
		out.Roles = append(out.Roles, LayoutNodeRole{
			ID:               id.String(),
			Zone:             r.Zone,
			Tags:             nonNil(r.Tags),
			Capacity:         capacityOf(r),
			StoredPartitions: &parts,
			UsableCapacity:   &usable,
		})
	}
	return out
}

func sameRole(a, b layout.Role) bool {
	return a.Zone == b.Zone && a.CapacityBytes == b.CapacityBytes && slices.Equal(a.Tags, b.Tags)
}

func (s *Server) getClusterLayout(*fasthttp.RequestCtx) (any, error) {
	return layoutResponse(s.cfg.Cluster.History()), nil
}

// stagedChange is a validated role change.
type stagedChange struct {
	id   cluster.NodeID
	role *layout.Role // nil: remove
}

func (s *Server) updateClusterLayout(rc *fasthttp.RequestCtx) (any, error) {
	var req UpdateClusterLayoutRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	// Validate everything before staging anything.
	changes := make([]stagedChange, 0, len(req.Roles))
	for _, ch := range req.Roles {
		id, err := layout.ParseNodeID(ch.ID)
		if err != nil {
			return nil, badRequest("invalid node identifier %q: want the full node ID (64 hex digits)", ch.ID)
		}
		if ch.Remove {
			changes = append(changes, stagedChange{id: id})
			continue
		}
		if ch.Zone == "" {
			return nil, badRequest("node %s: the zone must not be empty", id.Short())
		}
		r := &layout.Role{Zone: ch.Zone, Tags: ch.Tags}
		if ch.Capacity != nil {
			if *ch.Capacity < minCapacityBytes {
				return nil, badRequest("node %s: capacity %d bytes: it should be at least 1K (1024), or null for a gateway node", id.Short(), *ch.Capacity)
			}
			r.CapacityBytes = *ch.Capacity
		}
		changes = append(changes, stagedChange{id: id, role: r})
	}
	rf := s.cfg.Cluster.Layout().ReplicationFactor
	if p := req.Parameters; p != nil && p.ZoneRedundancy.AtLeast > rf {
		return nil, badRequest("the zone redundancy (%d) must not exceed the replication factor (%d)", p.ZoneRedundancy.AtLeast, rf)
	}
	t := s.nowMs()
	h, err := s.cfg.Cluster.UpdateLayout(func(h *layout.History) error {
		for _, ch := range changes {
			if err := h.StageRole(ch.id, ch.role, t); err != nil {
				return fmt.Errorf("node %s: %w", ch.id.Short(), err)
			}
		}
		if p := req.Parameters; p != nil {
			return h.StageParameters(layout.Parameters{ZoneRedundancy: p.ZoneRedundancy.AtLeast}, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return layoutResponse(h), nil
}

func (s *Server) previewClusterLayoutChanges(*fasthttp.RequestCtx) (any, error) {
	h := s.cfg.Cluster.History()
	p, err := h.Preview()
	if err != nil {
		// The computation is pure: every failure is a property of the
		// staged changes, reported in the body as Garage does.
		return &PreviewClusterLayoutChangesResponse{Error: err.Error()}, nil
	}
	return &PreviewClusterLayoutChangesResponse{Message: nonNil(p.Messages), NewLayout: layoutVersionResponse(p.Layout)}, nil
}

func (s *Server) applyClusterLayout(rc *fasthttp.RequestCtx) (any, error) {
	var req ApplyClusterLayoutRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	var p *layout.Preview
	h, err := s.cfg.Cluster.UpdateLayout(func(h *layout.History) error {
		var err error
		p, err = h.Apply(req.Version, s.nowMs())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ApplyClusterLayoutResponse{Message: nonNil(p.Messages), Layout: *layoutResponse(h)}, nil
}

func (s *Server) skipDeadNodes(rc *fasthttp.RequestCtx) (any, error) {
	var req ClusterLayoutSkipDeadNodesRequest
	if err := decode(rc, &req); err != nil {
		return nil, err
	}
	out := &ClusterLayoutSkipDeadNodesResponse{AckUpdated: []string{}, SyncUpdated: []string{}}
	c := s.cfg.Cluster
	_, err := c.UpdateLayout(func(h *layout.History) error {
		up := func(id cluster.NodeID) bool { return id == c.ID() || c.IsUp(id) }
		acked, synced, err := h.SkipDeadNodes(req.Version, up, req.AllowMissingData)
		for _, id := range acked {
			out.AckUpdated = append(out.AckUpdated, id.String())
		}
		for _, id := range synced {
			out.SyncUpdated = append(out.SyncUpdated, id.String())
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Server) revertClusterLayout(*fasthttp.RequestCtx) (any, error) {
	h, err := s.cfg.Cluster.UpdateLayout(func(h *layout.History) error {
		if err := h.Revert(s.nowMs()); !errors.Is(err, layout.ErrNoChanges) {
			return err
		}
		return nil // as in Garage, reverting nothing is not an error
	})
	if err != nil {
		return nil, err
	}
	return layoutResponse(h), nil
}

func (s *Server) getClusterLayoutHistory(*fasthttp.RequestCtx) (any, error) {
	h := s.cfg.Cluster.History()
	cur := h.Current()
	out := &GetClusterLayoutHistoryResponse{
		CurrentVersion: cur.Version,
		MinAck:         h.MinAck(),
		Versions:       []ClusterLayoutVersion{},
		UpdateTrackers: map[string]NodeUpdateTrackers{},
	}
	add := func(l *layout.Layout, status string) {
		storage := uint64(len(l.StorageNodes()))
		out.Versions = append(out.Versions, ClusterLayoutVersion{Version: l.Version, Status: status, StorageNodes: storage, GatewayNodes: uint64(len(l.Roles)) - storage})
	}
	for _, l := range slices.Backward(h.Versions) {
		status := LayoutDraining
		if l == cur {
			status = LayoutCurrent
		}
		add(l, status)
	}
	for _, l := range slices.Backward(h.OldVersions) {
		add(l, LayoutHistorical)
	}
	for _, id := range h.AllNodes() {
		out.UpdateTrackers[id.String()] = NodeUpdateTrackers{Ack: h.Trackers.Ack[id], Sync: h.Trackers.Sync[id], SyncAck: h.Trackers.SyncAck[id]}
	}
	return out, nil
}
