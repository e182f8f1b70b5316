package main

import (
	"bytes"
	"testing"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func str(s string) *string { return &s }

func f64(v float64) *float64 { return &v }

func TestRenderStatusGolden(t *testing.T) {
	healthy := &adminapi.GetClusterHealthResponse{Status: "healthy", KnownNodes: 3, ConnectedNodes: 3, StorageNodes: 3, StorageNodesOk: 3, Partitions: 256, PartitionsQuorum: 256, PartitionsAllOk: 256}
	dc1 := &adminapi.NodeAssignedRole{Zone: "dc1", Capacity: u64(500 * gb), Tags: []string{"ssd"}}
	dc2 := &adminapi.NodeAssignedRole{Zone: "dc2", Capacity: u64(1 * tb), Tags: []string{}}
	dc3 := &adminapi.NodeAssignedRole{Zone: "dc3", Capacity: u64(500 * gb), Tags: []string{}}
	gw := &adminapi.NodeAssignedRole{Zone: "dc1", Tags: []string{}}
	for _, tt := range []struct {
		name   string
		status *adminapi.GetClusterStatusResponse
		layout *adminapi.GetClusterLayoutResponse
		health *adminapi.GetClusterHealthResponse
	}{
		{
			name: "fresh_node",
			status: &adminapi.GetClusterStatusResponse{Nodes: []adminapi.NodeResp{
				{ID: nid(1), GarageVersion: str("dev"), Addr: str("192.0.2.1:3901"), Hostname: str("alpha"), IsUp: true, LastSeenSecsAgo: u64(0)},
			}},
			layout: &adminapi.GetClusterLayoutResponse{Roles: []adminapi.LayoutNodeRole{}, StagedRoleChanges: []adminapi.NodeRoleChange{}},
			health: &adminapi.GetClusterHealthResponse{Status: "unavailable", KnownNodes: 1, ConnectedNodes: 1, Partitions: 256},
		},
		{
			name: "three_nodes_staged",
			status: &adminapi.GetClusterStatusResponse{Nodes: []adminapi.NodeResp{
				{ID: nid(1), GarageVersion: str("dev"), Addr: str("192.0.2.1:3901"), Hostname: str("alpha"), IsUp: true, LastSeenSecsAgo: u64(0)},
				{ID: nid(2), Addr: str("192.0.2.2:3901"), Hostname: str("beta"), IsUp: true, LastSeenSecsAgo: u64(1), RTTMs: f64(0.42)},
				{ID: nid(3), Addr: str("192.0.2.3:3901"), Hostname: str("gamma"), IsUp: true, LastSeenSecsAgo: u64(0), RTTMs: f64(12.3)},
			}},
			layout: &adminapi.GetClusterLayoutResponse{
				Roles:             []adminapi.LayoutNodeRole{},
				StagedRoleChanges: []adminapi.NodeRoleChange{add(1, "dc1", u64(500*gb)), add(2, "dc2", u64(tb)), add(3, "dc3", u64(500*gb))},
			},
			health: &adminapi.GetClusterHealthResponse{Status: "unavailable", KnownNodes: 3, ConnectedNodes: 3, Partitions: 256},
		},
		{
			name: "degraded",
			status: &adminapi.GetClusterStatusResponse{LayoutVersion: 3, Nodes: []adminapi.NodeResp{
				{ID: nid(1), GarageVersion: str("dev"), Role: dc1, Addr: str("192.0.2.1:3901"), Hostname: str("alpha"), IsUp: true, LastSeenSecsAgo: u64(0)},
				{ID: nid(2), Role: dc2, Addr: str("192.0.2.2:3901"), Hostname: str("beta"), IsUp: false, LastSeenSecsAgo: u64(754), RTTMs: f64(0.4)},
				{ID: nid(3), Role: dc3, Addr: str("[2001:db8::3]:3901"), IsUp: false},
				{ID: nid(4), Role: gw, Addr: str("192.0.2.4:3901"), Hostname: str("gate"), IsUp: true, LastSeenSecsAgo: u64(2), RTTMs: f64(1.25)},
				{ID: nid(5), Draining: true, Addr: str("192.0.2.5:3901"), Hostname: str("old"), IsUp: true, LastSeenSecsAgo: u64(1), RTTMs: f64(3)},
				{ID: nid(6), Draining: true},
				{ID: nid(7), Addr: str("192.0.2.7:3901"), Hostname: str("spare"), IsUp: true, LastSeenSecsAgo: u64(0), RTTMs: f64(0.3)},
				{ID: nid(8), Addr: str("192.0.2.8:3901"), IsUp: false},
			}},
			layout: threeZones(),
			health: &adminapi.GetClusterHealthResponse{Status: "degraded", KnownNodes: 8, ConnectedNodes: 4, StorageNodes: 3, StorageNodesOk: 1, Partitions: 256, PartitionsQuorum: 256, PartitionsAllOk: 0},
		},
		{
			name: "healthy",
			status: &adminapi.GetClusterStatusResponse{LayoutVersion: 1, Nodes: []adminapi.NodeResp{
				{ID: nid(1), GarageVersion: str("dev"), Role: dc1, Addr: str("192.0.2.1:3901"), Hostname: str("alpha"), IsUp: true, LastSeenSecsAgo: u64(0)},
				{ID: nid(2), Role: dc2, Addr: str("192.0.2.2:3901"), Hostname: str("beta"), IsUp: true, LastSeenSecsAgo: u64(0), RTTMs: f64(0.4)},
				{ID: nid(3), Role: dc3, Addr: str("192.0.2.3:3901"), Hostname: str("gamma"), IsUp: true, LastSeenSecsAgo: u64(1), RTTMs: f64(0.5)},
			}},
			layout: threeZones(),
			health: healthy,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			renderStatus(&b, tt.status, tt.layout, tt.health)
			checkGolden(t, "status/"+tt.name+".txt", b.String())
		})
	}
}
