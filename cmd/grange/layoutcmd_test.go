package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/grangeio/grange/cluster/clustertest"
	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	clustertest.Golden(t, name, got, *update)
}

// Node IDs of the fixtures: nid(1) is 64 hex digits starting "1111".
func nid(i int) string {
	return strings.Repeat(string("0123456789abcdef"[i]), 4) + strings.Repeat("0", 59) + string("0123456789abcdef"[i])
}

func u64(v uint64) *uint64 { return &v }

// storageRole is a node of a layout version with its computed share.
func storageRole(i int, zone string, capacity, parts, partSize uint64, tags ...string) adminapi.LayoutNodeRole {
	return adminapi.LayoutNodeRole{ID: nid(i), Zone: zone, Tags: nonNilTags(tags), Capacity: u64(capacity), StoredPartitions: u64(parts), UsableCapacity: u64(parts * partSize)}
}

func gatewayRole(i int, zone string) adminapi.LayoutNodeRole {
	return adminapi.LayoutNodeRole{ID: nid(i), Zone: zone, Tags: []string{}, StoredPartitions: u64(0), UsableCapacity: u64(0)}
}

func nonNilTags(t []string) []string {
	if t == nil {
		return []string{}
	}
	return t
}

func add(i int, zone string, capacity *uint64, tags ...string) adminapi.NodeRoleChange {
	return adminapi.NodeRoleChange{ID: nid(i), Zone: zone, Capacity: capacity, Tags: nonNilTags(tags)}
}

const (
	tb = 1_000_000_000_000
	gb = 1_000_000_000
)

// threeZones is version 1 of a three-node cluster, one node per zone.
func threeZones() *adminapi.GetClusterLayoutResponse {
	const ps = 1_953_125_000 // 500 GB / 256
	return &adminapi.GetClusterLayoutResponse{
		Version: 1,
		Roles: []adminapi.LayoutNodeRole{
			storageRole(1, "dc1", 500*gb, 256, ps, "ssd"),
			storageRole(2, "dc2", 1*tb, 256, ps),
			storageRole(3, "dc3", 500*gb, 256, ps, "ssd", "rack4"),
		},
		PartitionSize:     ps,
		StagedRoleChanges: []adminapi.NodeRoleChange{},
	}
}

func TestRenderLayoutGolden(t *testing.T) {
	maxZR := adminapi.LayoutParameters{}
	atLeast2 := adminapi.LayoutParameters{ZoneRedundancy: adminapi.ZoneRedundancy{AtLeast: 2}}
	for _, tt := range []struct {
		name    string
		layout  *adminapi.GetClusterLayoutResponse
		preview *adminapi.PreviewClusterLayoutChangesResponse
	}{
		{
			name:   "no_layout",
			layout: &adminapi.GetClusterLayoutResponse{Roles: []adminapi.LayoutNodeRole{}, StagedRoleChanges: []adminapi.NodeRoleChange{}},
		},
		{
			name: "first_layout_staged",
			layout: &adminapi.GetClusterLayoutResponse{
				Roles: []adminapi.LayoutNodeRole{},
				StagedRoleChanges: []adminapi.NodeRoleChange{
					add(1, "dc1", u64(500*gb), "ssd"),
					add(2, "dc2", u64(1*tb)),
					add(3, "dc3", u64(500*gb), "ssd", "rack4"),
				},
			},
			preview: &adminapi.PreviewClusterLayoutChangesResponse{
				Message: []string{
					"Partitions are replicated 3 times on at least 3 distinct zones.",
					"Optimal partition size: 2.0 GB",
					"Usable capacity / total cluster capacity: 1.5 TB / 2.0 TB (75.0 %)",
					"",
					"dc1\tTags\tPartitions\tCapacity\tUsable capacity",
					"  1111000000000000\tssd\t256 (256 new)\t500.0 GB\t500.0 GB (100.0%)",
					"  TOTAL\t\t256 (256 unique)\t500.0 GB\t500.0 GB (100.0%)",
				},
				NewLayout: threeZones(),
			},
		},
		{
			name:   "current_no_changes",
			layout: threeZones(),
		},
		{
			name: "gateway_and_capacity_change",
			layout: func() *adminapi.GetClusterLayoutResponse {
				l := threeZones()
				l.Version = 2
				l.Roles = append(l.Roles, gatewayRole(4, "dc1"))
				l.StagedRoleChanges = []adminapi.NodeRoleChange{
					add(3, "dc3", u64(2*tb), "ssd", "rack4"),
					add(5, "dc2", nil),
					add(6, "dc1", u64(1*tb)),
				}
				return l
			}(),
			preview: &adminapi.PreviewClusterLayoutChangesResponse{
				Message: []string{"A total of 170 new copies of partitions need to be transferred."},
				NewLayout: &adminapi.GetClusterLayoutResponse{
					Version: 3,
					Roles: []adminapi.LayoutNodeRole{
						storageRole(1, "dc1", 500*gb, 86, 3_906_250_000, "ssd"),
						storageRole(2, "dc2", 1*tb, 256, 3_906_250_000),
						storageRole(3, "dc3", 2*tb, 256, 3_906_250_000, "ssd", "rack4"),
						gatewayRole(4, "dc1"),
						gatewayRole(5, "dc2"),
						storageRole(6, "dc1", 1*tb, 170, 3_906_250_000),
					},
					PartitionSize:     3_906_250_000,
					StagedRoleChanges: []adminapi.NodeRoleChange{},
				},
			},
		},
		{
			name: "parameters_change",
			layout: func() *adminapi.GetClusterLayoutResponse {
				l := threeZones()
				l.StagedParameters = &atLeast2
				return l
			}(),
			preview: &adminapi.PreviewClusterLayoutChangesResponse{
				Message: []string{"Partitions are replicated 3 times on at least 2 distinct zones."},
				NewLayout: func() *adminapi.GetClusterLayoutResponse {
					l := threeZones()
					l.Version = 2
					l.Parameters = atLeast2
					return l
				}(),
			},
		},
		{
			name: "removal_cannot_apply",
			layout: func() *adminapi.GetClusterLayoutResponse {
				l := threeZones()
				l.Parameters = maxZR
				l.StagedRoleChanges = []adminapi.NodeRoleChange{{ID: nid(3), Remove: true}}
				return l
			}(),
			preview: &adminapi.PreviewClusterLayoutChangesResponse{Error: "layout: 2 storage nodes cannot hold 3 replicas of each partition"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			renderLayout(&b, tt.layout, tt.preview)
			checkGolden(t, "layout_show/"+tt.name+".txt", b.String())
		})
	}
}

func trackers(ack, sync, syncAck uint64) adminapi.NodeUpdateTrackers {
	return adminapi.NodeUpdateTrackers{Ack: ack, Sync: sync, SyncAck: syncAck}
}

func TestRenderHistoryGolden(t *testing.T) {
	stable := &adminapi.GetClusterLayoutHistoryResponse{
		CurrentVersion: 1,
		MinAck:         1,
		Versions: []adminapi.ClusterLayoutVersion{
			{Version: 1, Status: adminapi.LayoutCurrent, StorageNodes: 3},
			{Version: 0, Status: adminapi.LayoutHistorical},
		},
		UpdateTrackers: map[string]adminapi.NodeUpdateTrackers{
			nid(1): trackers(1, 1, 1), nid(2): trackers(1, 1, 1), nid(3): trackers(1, 1, 1),
		},
	}
	moving := &adminapi.GetClusterLayoutHistoryResponse{
		CurrentVersion: 3,
		MinAck:         2,
		Versions: []adminapi.ClusterLayoutVersion{
			{Version: 3, Status: adminapi.LayoutCurrent, StorageNodes: 4, GatewayNodes: 1},
			{Version: 2, Status: adminapi.LayoutDraining, StorageNodes: 3, GatewayNodes: 1},
			{Version: 1, Status: adminapi.LayoutHistorical, StorageNodes: 3},
		},
		UpdateTrackers: map[string]adminapi.NodeUpdateTrackers{
			nid(1): trackers(3, 3, 2), nid(2): trackers(3, 2, 2), nid(3): trackers(2, 2, 2), nid(4): trackers(3, 3, 3), nid(6): trackers(3, 0, 0),
		},
	}
	for name, h := range map[string]*adminapi.GetClusterLayoutHistoryResponse{"stable": stable, "moving": moving} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			renderHistory(&b, h)
			checkGolden(t, "layout_history/"+name+".txt", b.String())
		})
	}
}

func TestParseCapacity(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
	}{
		{"500G", 500 * gb},
		{"500GB", 500 * gb},
		{"500 gb", 500 * gb},
		{"2T", 2 * tb},
		{"1.5T", 1500 * gb},
		{"1.5t", 1500 * gb},
		{"100M", 100_000_000},
		{"4096", 4096},
		{"4096B", 4096},
		{"1K", 1000},
		{"1KiB", 1024},
		{"1ki", 1024},
		{"800GiB", 800 << 30},
		{"1.5TiB", 3 << 39},
		{"2MiB", 2 << 20},
		{"1PB", 1_000_000_000_000_000},
		{".5G", 500_000_000},
		{"1.0000000001K", 1000}, // fractions of a byte round down
		{"18446744073709551615", 1<<64 - 1},
	} {
		got, err := parseCapacity(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseCapacity(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "G", "12X", "5 GBs", "-5G", "1.2.3G", "1e9", "20EB", "18446744073709551616", "99999999P", "five"} {
		if got, err := parseCapacity(in); err == nil {
			t.Errorf("parseCapacity(%q) = %d, want an error", in, got)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tt := range []struct {
		in   uint64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1.0 KB"}, {500 * gb, "500.0 GB"},
		{1_953_125_000, "2.0 GB"}, {999_960_000, "1.0 GB"}, {1500 * gb, "1.5 TB"}, {1<<64 - 1, "18.4 EB"},
	} {
		if got := formatBytes(tt.in); got != tt.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestResolveNodeID(t *testing.T) {
	a := "abcd" + strings.Repeat("0", 60)
	b := "abce" + strings.Repeat("1", 60)
	c := "1234" + strings.Repeat("2", 60)
	known := []string{a, b, c, a}
	for _, tt := range []struct {
		in, want, err string
	}{
		{in: "1", want: c},
		{in: "abcd", want: a},
		{in: "ABCE", want: b},
		{in: " abce1 ", want: b},
		{in: a, want: a},
		{in: "abc", err: "ambiguous"},
		{in: "ff", err: "no known node"},
		{in: "f" + strings.Repeat("0", 63), want: "f" + strings.Repeat("0", 63)}, // full ID of a node not connected yet
		{in: "xyz", err: "not a node ID"},
		{in: "", err: "not a node ID"},
		{in: a + "0", err: "not a node ID"},
		{in: a + "@127.0.0.1:3901", err: "not a node ID"},
	} {
		got, err := resolveNodeID(tt.in, known)
		switch {
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("resolveNodeID(%q) = %q, %v, want an error with %q", tt.in, got, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("resolveNodeID(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// layout assign keeps what is not given, from the staged role first.
func TestRoleSpecApply(t *testing.T) {
	l := threeZones()
	l.StagedRoleChanges = []adminapi.NodeRoleChange{add(2, "dc9", nil, "new"), {ID: nid(3), Remove: true}}
	prev := previousRoles(l)
	zone, tags := "dc7", []string{"x", "y"}
	for _, tt := range []struct {
		name string
		id   string
		spec roleSpec
		want adminapi.NodeRoleChange
		err  string
	}{
		{name: "capacity only keeps zone and tags", id: nid(1), spec: roleSpec{capacity: u64(2 * tb)}, want: add(1, "dc1", u64(2*tb), "ssd")},
		{name: "zone only keeps the staged gateway role", id: nid(2), spec: roleSpec{zone: &zone}, want: add(2, "dc7", nil, "new")},
		{name: "tags replace", id: nid(1), spec: roleSpec{tags: &tags}, want: add(1, "dc1", u64(500*gb), "x", "y")},
		{name: "gateway", id: nid(1), spec: roleSpec{gateway: true}, want: add(1, "dc1", nil, "ssd")},
		{name: "staged removal counts as no role", id: nid(3), spec: roleSpec{capacity: u64(tb)}, err: "-z"},
		{name: "new node needs a zone", id: nid(7), spec: roleSpec{capacity: u64(tb)}, err: "-z"},
		{name: "new node needs a capacity", id: nid(7), spec: roleSpec{zone: &zone}, err: "-c"},
		{name: "new node", id: nid(7), spec: roleSpec{zone: &zone, capacity: u64(tb)}, want: adminapi.NodeRoleChange{ID: nid(7), Zone: "dc7", Capacity: u64(tb)}},
	} {
		got, err := tt.spec.apply(tt.id, prev[tt.id])
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err = %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		gj, _ := got.MarshalJSON()
		wj, _ := tt.want.MarshalJSON()
		if err != nil || !bytes.Equal(gj, wj) {
			t.Errorf("%s: got %s, %v, want %s", tt.name, gj, err, wj)
		}
	}
}

func TestParseZoneRedundancy(t *testing.T) {
	for in, want := range map[string]int{"maximum": 0, "MAX": 0, "1": 1, "3": 3} {
		got, err := parseZoneRedundancy(in)
		if err != nil || got.AtLeast != want {
			t.Errorf("parseZoneRedundancy(%q) = %v, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1", "two"} {
		if _, err := parseZoneRedundancy(in); err == nil {
			t.Errorf("parseZoneRedundancy(%q) accepted", in)
		}
	}
}
