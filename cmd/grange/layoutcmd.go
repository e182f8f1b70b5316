package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newLayoutCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "layout",
		Short: "Assign roles to nodes and apply new versions of the cluster layout",
		Long: `The layout says which nodes store data, in which zone and with which
capacity. Changes are staged first (assign, remove, config), reviewed with
"layout show", then applied as a new layout version with "layout apply".`,
	}

	show := &cobra.Command{
		Use:   "show",
		Short: "Show the current layout, the staged changes and what applying them would give",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var l adminapi.GetClusterLayoutResponse
			if err := g.call("GET", "GetClusterLayout", nil, nil, &l); err != nil {
				return err
			}
			var preview *adminapi.PreviewClusterLayoutChangesResponse
			if hasStaged(&l) {
				preview = &adminapi.PreviewClusterLayoutChangesResponse{}
				if err := g.call("POST", "PreviewClusterLayoutChanges", nil, nil, preview); err != nil {
					return err
				}
			}
			renderLayout(cmd.OutOrStdout(), &l, preview)
			return nil
		},
	}

	var (
		zone, capacity string
		tags           []string
		gateway        bool
	)
	assign := &cobra.Command{
		Use:   "assign [-z ZONE] [-c CAPACITY | -g] [-t TAG]... [NODE_ID...]",
		Short: "Stage a role for nodes: their zone and capacity (or gateway), and tags",
		Long: `Stage a role for the given nodes (by ID or a prefix of it; this node when
none is given). For a node that already has a role, the flags not given keep
their value. CAPACITY is what the node offers, like 500G, 2T, 1.5T or 800GiB
(K, M, G, T are powers of 1000; KiB, MiB, GiB, TiB powers of 1024).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var spec roleSpec
			if fl.Changed("zone") {
				spec.zone = &zone
			}
			if fl.Changed("tag") {
				spec.tags = &tags
			}
			if gateway && fl.Changed("capacity") {
				return errors.New("-g (gateway) and -c (capacity) exclude each other: a gateway node stores nothing")
			}
			spec.gateway = gateway
			if fl.Changed("capacity") {
				c, err := parseCapacity(capacity)
				if err != nil {
					return err
				}
				if c == 0 {
					return errors.New("capacity 0: use -g for a node that stores nothing (a gateway)")
				}
				spec.capacity = &c
			}
			return g.assign(cmd.OutOrStdout(), args, spec)
		},
	}
	af := assign.Flags()
	af.StringVarP(&zone, "zone", "z", "", "zone of the node (a site, a building: replicas go to distinct zones)")
	af.StringVarP(&capacity, "capacity", "c", "", "storage capacity the node offers, like 500G or 2T")
	af.BoolVarP(&gateway, "gateway", "g", false, "make the node a gateway: it serves requests but stores no data")
	af.StringSliceVarP(&tags, "tag", "t", nil, "tag of the node (repeat or separate with commas; replaces the previous tags)")
	// -c is the capacity here, as in Garage; the configuration file is
	// --config, or -c before the verb: grange -c FILE layout assign ...
	af.StringVar(&g.configFile, "config", "", "configuration file (TOML); also -c FILE before the word layout")

	remove := &cobra.Command{
		Use:   "remove NODE_ID...",
		Short: "Stage the removal of nodes from the layout",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ids, err := g.resolveNodeIDs(args)
			if err != nil {
				return err
			}
			req := adminapi.UpdateClusterLayoutRequest{}
			for _, id := range ids {
				req.Roles = append(req.Roles, adminapi.NodeRoleChange{ID: id, Remove: true})
			}
			var l adminapi.GetClusterLayoutResponse
			if err := g.call("POST", "UpdateClusterLayout", nil, req, &l); err != nil {
				return err
			}
			for _, id := range ids {
				fmt.Fprintf(cmd.OutOrStdout(), "Removal of node %s staged.\n", shortID(id))
			}
			stagedHint(cmd.OutOrStdout(), &l)
			return nil
		},
	}

	var redundancy string
	config := &cobra.Command{
		Use:   "config -r N|maximum",
		Short: "Stage layout parameters: the zone redundancy",
		Long: `Stage the zone redundancy of the next layout version: the number of
distinct zones each partition is stored in, at most the replication factor,
or "maximum" (as many as possible, the default).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("redundancy") {
				return errors.New("nothing to change: give the zone redundancy with -r N or -r maximum")
			}
			zr, err := parseZoneRedundancy(redundancy)
			if err != nil {
				return err
			}
			var l adminapi.GetClusterLayoutResponse
			req := adminapi.UpdateClusterLayoutRequest{Parameters: &adminapi.LayoutParameters{ZoneRedundancy: zr}}
			if err := g.call("POST", "UpdateClusterLayout", nil, req, &l); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Zone redundancy %s staged.\n", zr)
			stagedHint(cmd.OutOrStdout(), &l)
			return nil
		},
	}
	config.Flags().StringVarP(&redundancy, "redundancy", "r", "", `zone redundancy: a number of zones, or "maximum"`)

	var version uint64
	apply := &cobra.Command{
		Use:   "apply --version N",
		Short: "Apply the staged changes as layout version N (the current version plus one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res adminapi.ApplyClusterLayoutResponse
			if err := g.call("POST", "ApplyClusterLayout", nil, adminapi.ApplyClusterLayoutRequest{Version: version}, &res); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(res.Message) > 0 {
				printMessages(w, res.Message)
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "Layout version %d is applied: the nodes learn it from each other, and data moves to the nodes that now store it. See the layout with `grange layout show` and the moves with `grange layout history`.\n", res.Layout.Version)
			return nil
		},
	}
	apply.Flags().Uint64Var(&version, "version", 0, "the version the staged changes become: the current version plus one (required)")
	apply.MarkFlagRequired("version")

	revert := &cobra.Command{
		Use:   "revert",
		Short: "Drop every staged change",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var before adminapi.GetClusterLayoutResponse
			if err := g.call("GET", "GetClusterLayout", nil, nil, &before); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if !hasStaged(&before) {
				fmt.Fprintln(w, "Nothing is staged: the layout is unchanged.")
				return nil
			}
			var after adminapi.GetClusterLayoutResponse
			if err := g.call("POST", "RevertClusterLayout", nil, nil, &after); err != nil {
				return err
			}
			fmt.Fprintln(w, "Dropped these staged changes:")
			renderStaged(w, &before)
			return nil
		},
	}

	var skipVersion uint64
	var allowMissing bool
	skip := &cobra.Command{
		Use:   "skip-dead-nodes --version N",
		Short: "Let a layout change finish without the storage nodes that are down for good",
		Long: `A new layout version stays in transition until every storage node of
every active version has acknowledged and synced it. A node that is gone for
good (a dead disk, a machine replaced by a new one) would hold it back
forever: this marks the storage nodes that are down now as having
acknowledged version N and, when they no longer store data in it, synced
it. With --allow-missing-data, dead nodes that still store data in version N
are marked synced too: writes that only they held are then lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res adminapi.ClusterLayoutSkipDeadNodesResponse
			if err := g.call("POST", "ClusterLayoutSkipDeadNodes", nil, adminapi.ClusterLayoutSkipDeadNodesRequest{Version: skipVersion, AllowMissingData: allowMissing}, &res); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(res.AckUpdated)+len(res.SyncUpdated) == 0 {
				fmt.Fprintln(w, "No storage node is down: nothing to skip.")
				return nil
			}
			for _, id := range res.AckUpdated {
				fmt.Fprintf(w, "Acknowledged version %d for %s.\n", skipVersion, id)
			}
			for _, id := range res.SyncUpdated {
				fmt.Fprintf(w, "Marked version %d synced for %s.\n", skipVersion, id)
			}
			return nil
		},
	}
	skip.Flags().Uint64Var(&skipVersion, "version", 0, "the current layout version (required)")
	skip.Flags().BoolVar(&allowMissing, "allow-missing-data", false, "also mark dead nodes that store data in this version as synced")
	skip.MarkFlagRequired("version")

	history := &cobra.Command{
		Use:   "history",
		Short: "Show the layout versions and how far each node has followed them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var h adminapi.GetClusterLayoutHistoryResponse
			if err := g.call("GET", "GetClusterLayoutHistory", nil, nil, &h); err != nil {
				return err
			}
			renderHistory(cmd.OutOrStdout(), &h)
			return nil
		},
	}

	cmd.AddCommand(show, assign, remove, config, apply, revert, skip, history)
	return cmd
}

func hasStaged(l *adminapi.GetClusterLayoutResponse) bool {
	return len(l.StagedRoleChanges) > 0 || l.StagedParameters != nil
}

func stagedHint(w io.Writer, l *adminapi.GetClusterLayoutResponse) {
	fmt.Fprintf(w, "Review the staged changes with `grange layout show`, apply them with `grange layout apply --version %d`.\n", l.Version+1)
}

func parseZoneRedundancy(s string) (adminapi.ZoneRedundancy, error) {
	if strings.EqualFold(s, "maximum") || strings.EqualFold(s, "max") {
		return adminapi.ZoneRedundancy{}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return adminapi.ZoneRedundancy{}, fmt.Errorf("zone redundancy %q: want a number of zones (1 or more) or \"maximum\"", s)
	}
	return adminapi.ZoneRedundancy{AtLeast: n}, nil
}

// roleSpec is what `layout assign` changes; nil fields keep the node's
// previous value.
type roleSpec struct {
	zone     *string
	capacity *uint64
	gateway  bool
	tags     *[]string
}

// apply merges the spec into a node's previous role (nil: none).
func (s roleSpec) apply(id string, prev *adminapi.NodeAssignedRole) (adminapi.NodeRoleChange, error) {
	ch := adminapi.NodeRoleChange{ID: id}
	if prev != nil {
		ch.Zone, ch.Capacity, ch.Tags = prev.Zone, prev.Capacity, prev.Tags
	}
	switch {
	case s.zone != nil:
		ch.Zone = *s.zone
	case prev == nil:
		return ch, fmt.Errorf("node %s has no role yet: give its zone with -z", shortID(id))
	}
	switch {
	case s.gateway:
		ch.Capacity = nil
	case s.capacity != nil:
		ch.Capacity = s.capacity
	case prev == nil:
		return ch, fmt.Errorf("node %s has no role yet: give its capacity with -c, or -g for a gateway node", shortID(id))
	}
	if s.tags != nil {
		ch.Tags = *s.tags
	}
	if ch.Zone == "" {
		return ch, fmt.Errorf("node %s: the zone must not be empty", shortID(id))
	}
	return ch, nil
}

// previousRoles are the roles `layout assign` starts from: the staged
// role of a node if it has one, else its current role.
func previousRoles(l *adminapi.GetClusterLayoutResponse) map[string]*adminapi.NodeAssignedRole {
	out := map[string]*adminapi.NodeAssignedRole{}
	for _, r := range l.Roles {
		out[r.ID] = &adminapi.NodeAssignedRole{Zone: r.Zone, Capacity: r.Capacity, Tags: r.Tags}
	}
	for _, c := range l.StagedRoleChanges {
		if c.Remove {
			delete(out, c.ID)
			continue
		}
		out[c.ID] = &adminapi.NodeAssignedRole{Zone: c.Zone, Capacity: c.Capacity, Tags: c.Tags}
	}
	return out
}

func (g *globals) assign(w io.Writer, args []string, spec roleSpec) error {
	st, l, err := g.clusterView()
	if err != nil {
		return err
	}
	var ids []string
	if len(args) == 0 {
		self, err := g.selfID()
		if err != nil {
			return err
		}
		ids = []string{self}
	}
	known := layoutNodeIDs(st, l)
	for _, a := range args {
		id, err := resolveNodeID(a, known)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	prev := previousRoles(l)
	req := adminapi.UpdateClusterLayoutRequest{}
	for _, id := range ids {
		ch, err := spec.apply(id, prev[id])
		if err != nil {
			return err
		}
		req.Roles = append(req.Roles, ch)
	}
	var res adminapi.GetClusterLayoutResponse
	if err := g.call("POST", "UpdateClusterLayout", nil, req, &res); err != nil {
		return err
	}
	for _, ch := range req.Roles {
		tags := ""
		if len(ch.Tags) > 0 {
			tags = ", tags " + strings.Join(ch.Tags, ",")
		}
		fmt.Fprintf(w, "Role of node %s staged: zone %s, capacity %s%s.\n", shortID(ch.ID), ch.Zone, capacityString(ch.Capacity), tags)
	}
	stagedHint(w, &res)
	return nil
}

// selfID is the ID of the node whose admin API is managed.
func (g *globals) selfID() (string, error) {
	var info adminapi.GetNodeInfoResponse
	if err := g.call("GET", "GetNodeInfo", url.Values{"node": {"self"}}, nil, &info); err != nil {
		return "", err
	}
	for id := range info.Success {
		return id, nil
	}
	return "", errors.New("GetNodeInfo did not name this node")
}

// resolveNodeIDs resolves ID prefixes against the nodes the managed node
// knows.
func (g *globals) resolveNodeIDs(args []string) ([]string, error) {
	known, err := g.knownNodeIDs()
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(args))
	for i, a := range args {
		if ids[i], err = resolveNodeID(a, known); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// renderLayout writes the current layout, the staged changes and, when
// there are some, the layout they would give (preview, which may hold the
// error that prevents computing it).
func renderLayout(w io.Writer, l *adminapi.GetClusterLayoutResponse, preview *adminapi.PreviewClusterLayoutChangesResponse) {
	if l.Version == 0 && len(l.Roles) == 0 {
		fmt.Fprintln(w, "==== NO CLUSTER LAYOUT YET (version 0) ====")
		fmt.Fprintln(w, "No node has a role: no node stores data yet.")
	} else {
		fmt.Fprintf(w, "==== CURRENT CLUSTER LAYOUT (version %d) ====\n", l.Version)
		renderRoles(w, l, nil)
	}
	if !hasStaged(l) {
		if l.Version == 0 {
			fmt.Fprintln(w, "\nGive nodes a role with `grange layout assign -z ZONE -c CAPACITY NODE_ID...` (see `grange status` for their IDs).")
		}
		return
	}
	fmt.Fprintln(w, "\n==== STAGED CHANGES ====")
	renderStaged(w, l)
	next := l.Version + 1
	switch {
	case preview == nil:
	case preview.NewLayout == nil:
		fmt.Fprintln(w, "\n==== THE STAGED CHANGES CANNOT BE APPLIED ====")
		fmt.Fprintln(w, preview.Error)
		fmt.Fprintln(w, "\nChange them with `grange layout assign`, `remove` or `config`, or drop them with `grange layout revert`.")
		return
	default:
		fmt.Fprintf(w, "\n==== NEW CLUSTER LAYOUT AFTER APPLYING THE CHANGES (version %d) ====\n", preview.NewLayout.Version)
		renderRoles(w, preview.NewLayout, l)
		if len(preview.Message) > 0 {
			fmt.Fprintln(w)
			printMessages(w, preview.Message)
		}
		next = preview.NewLayout.Version
	}
	fmt.Fprintf(w, "\nApply the changes with `grange layout apply --version %d`, or drop them with `grange layout revert`.\n", next)
}

// renderRoles writes the roles of a layout version and its capacity by
// zone. When old is set, partition counts show the change from it and the
// nodes that leave are listed.
func renderRoles(w io.Writer, l *adminapi.GetClusterLayoutResponse, old *adminapi.GetClusterLayoutResponse) {
	oldParts := map[string]uint64{}
	if old != nil {
		for _, r := range old.Roles {
			oldParts[r.ID] = deref(r.StoredPartitions)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tZONE\tCAPACITY\tPARTITIONS\tUSABLE CAPACITY\tTAGS")
	type zoneSum struct {
		nodes            int
		capacity, usable uint64
	}
	zones := map[string]*zoneSum{}
	var zoneNames []string
	gateways := 0
	for _, r := range l.Roles {
		if r.Capacity == nil {
			gateways++
			fmt.Fprintf(tw, "%s\t%s\tgateway\t-\t-\t%s\n", shortID(r.ID), r.Zone, tagsString(r.Tags))
			continue
		}
		parts, usable := deref(r.StoredPartitions), deref(r.UsableCapacity)
		partStr := strconv.FormatUint(parts, 10)
		if old != nil {
			if d := int64(parts) - int64(oldParts[r.ID]); d != 0 {
				partStr += fmt.Sprintf(" (%+d)", d)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shortID(r.ID), r.Zone, formatBytes(*r.Capacity), partStr, usableString(usable, *r.Capacity), tagsString(r.Tags))
		z := zones[r.Zone]
		if z == nil {
			z = &zoneSum{}
			zones[r.Zone] = z
			zoneNames = append(zoneNames, r.Zone)
		}
		z.nodes++
		z.capacity += *r.Capacity
		z.usable += usable
	}
	tw.Flush()
	if old != nil {
		for _, r := range old.Roles {
			if slices.ContainsFunc(l.Roles, func(n adminapi.LayoutNodeRole) bool { return n.ID == r.ID }) {
				continue
			}
			if p := deref(r.StoredPartitions); r.Capacity != nil && p > 0 {
				fmt.Fprintf(w, "%s leaves the layout: its %d partitions move to other nodes.\n", shortID(r.ID), p)
			} else {
				fmt.Fprintf(w, "%s leaves the layout.\n", shortID(r.ID))
			}
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintf(w, "Zone redundancy: %s\n", l.Parameters.ZoneRedundancy)
	if len(zones) == 0 {
		fmt.Fprintln(w, "No storage node: the cluster cannot store data.")
		return
	}
	if old != nil && old.PartitionSize != l.PartitionSize && old.PartitionSize != 0 {
		fmt.Fprintf(w, "Partition size: %s (now %s)\n", formatBytes(l.PartitionSize), formatBytes(old.PartitionSize))
	} else {
		fmt.Fprintf(w, "Partition size: %s\n", formatBytes(l.PartitionSize))
	}
	fmt.Fprintf(w, "Data the cluster can hold: %s (256 partitions of %s, each stored on several nodes)\n", formatBytes(256*l.PartitionSize), formatBytes(l.PartitionSize))
	slices.Sort(zoneNames)
	fmt.Fprintln(w, "\nUsable capacity by zone:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tSTORAGE NODES\tCAPACITY\tUSABLE CAPACITY")
	for _, name := range zoneNames {
		z := zones[name]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", name, z.nodes, formatBytes(z.capacity), usableString(z.usable, z.capacity))
	}
	tw.Flush()
	if gateways > 0 {
		fmt.Fprintf(w, "Gateway nodes: %d\n", gateways)
	}
}

// printMessages writes the report of a layout computation: free text
// whose tab-separated lines are table rows.
func printMessages(w io.Writer, msgs []string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range msgs {
		fmt.Fprintln(tw, m)
	}
	tw.Flush()
}

func usableString(usable, capacity uint64) string {
	if capacity == 0 {
		return formatBytes(usable)
	}
	return fmt.Sprintf("%s (%.1f%%)", formatBytes(usable), 100*float64(usable)/float64(capacity))
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// renderStaged writes the staged role changes and parameters of l.
func renderStaged(w io.Writer, l *adminapi.GetClusterLayoutResponse) {
	current := map[string]adminapi.LayoutNodeRole{}
	for _, r := range l.Roles {
		current[r.ID] = r
	}
	if len(l.StagedRoleChanges) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCHANGE\tZONE\tCAPACITY\tTAGS\tNOW")
		for _, c := range l.StagedRoleChanges {
			cur, had := current[c.ID]
			now := "no role"
			if had {
				now = fmt.Sprintf("%s, %s, %s", cur.Zone, capacityString(cur.Capacity), tagsString(cur.Tags))
			}
			switch {
			case c.Remove:
				fmt.Fprintf(tw, "%s\tremove\t-\t-\t-\t%s\n", shortID(c.ID), now)
			case had:
				fmt.Fprintf(tw, "%s\tupdate\t%s\t%s\t%s\t%s\n", shortID(c.ID), c.Zone, capacityString(c.Capacity), tagsString(c.Tags), now)
			default:
				fmt.Fprintf(tw, "%s\tadd\t%s\t%s\t%s\t%s\n", shortID(c.ID), c.Zone, capacityString(c.Capacity), tagsString(c.Tags), now)
			}
		}
		tw.Flush()
	}
	if p := l.StagedParameters; p != nil {
		fmt.Fprintf(w, "Zone redundancy: %s (now %s)\n", p.ZoneRedundancy, l.Parameters.ZoneRedundancy)
	}
}

// renderHistory writes the layout versions, newest first, and, while
// several are active, how far each node has followed them.
func renderHistory(w io.Writer, h *adminapi.GetClusterLayoutHistoryResponse) {
	fmt.Fprintln(w, "==== LAYOUT HISTORY ====")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATUS\tSTORAGE NODES\tGATEWAY NODES")
	draining := 0
	for _, v := range h.Versions {
		if v.Status == adminapi.LayoutDraining {
			draining++
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\n", v.Version, strings.ToLower(v.Status), v.StorageNodes, v.GatewayNodes)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if draining == 0 && h.MinAck >= h.CurrentVersion {
		fmt.Fprintf(w, "Only version %d is active and every node acknowledged it: no data is moving between nodes.\n", h.CurrentVersion)
		return
	}
	if draining > 0 {
		fmt.Fprintf(w, "%d older version(s) still active: data moves to the nodes of version %d, and requests also go to the older nodes until it has.\n", draining, h.CurrentVersion)
	}
	fmt.Fprintf(w, "Every node acknowledged version %d or newer.\n", h.MinAck)
	ids := make([]string, 0, len(h.UpdateTrackers))
	for id := range h.UpdateTrackers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fmt.Fprintln(w, "\nUpdate trackers (the newest version each node acknowledged, holds all data of, and saw synced everywhere):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACK\tSYNC\tSYNC ACK")
	for _, id := range ids {
		t := h.UpdateTrackers[id]
		mark := ""
		if t.Ack < h.CurrentVersion || t.Sync < h.CurrentVersion || t.SyncAck < h.CurrentVersion {
			mark = "  *"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d%s\n", shortID(id), t.Ack, t.Sync, t.SyncAck, mark)
	}
	tw.Flush()
	fmt.Fprintf(w, "* behind version %d\n", h.CurrentVersion)
}
