package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newStatusCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the nodes of the cluster, their roles and whether they are up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, l, err := g.clusterView()
			if err != nil {
				return err
			}
			var h adminapi.GetClusterHealthResponse
			if err := g.call("GET", "GetClusterHealth", nil, nil, &h); err != nil {
				return err
			}
			renderStatus(cmd.OutOrStdout(), st, l, &h)
			return nil
		},
	}
}

// shortID is the 16-hex-digit form of a node ID used in tables.
func shortID(id string) string { return id[:min(len(id), 16)] }

// neverSeen reports a node no contact was ever made with.
func neverSeen(n *adminapi.NodeResp) bool { return !n.IsUp && n.LastSeenSecsAgo == nil }

// renderStatus writes the status of the cluster: the nodes this node knows
// and the nodes of the layout it never reached. l and h may be nil.
func renderStatus(w io.Writer, st *adminapi.GetClusterStatusResponse, l *adminapi.GetClusterLayoutResponse, h *adminapi.GetClusterHealthResponse) {
	fmt.Fprintf(w, "==== NODES (layout version %d) ====\n", st.LayoutVersion)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tADDRESS\tZONE\tCAPACITY\tSTATUS\tRTT")
	var unseen []*adminapi.NodeResp
	noRole := 0
	for i := range st.Nodes {
		n := &st.Nodes[i]
		if neverSeen(n) && (n.Role != nil || n.Draining) {
			unseen = append(unseen, n)
			continue
		}
		zone, capacity := roleColumns(n)
		if n.Role == nil && !n.Draining && n.IsUp {
			noRole++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", shortID(n.ID), strOr(n.Hostname, "?"), strOr(n.Addr, "?"), zone, capacity, nodeState(n), rtt(n.RTTMs))
	}
	tw.Flush()

	if len(unseen) > 0 {
		fmt.Fprintln(w, "\n==== NODES OF THE LAYOUT NEVER SEEN SINCE THIS NODE STARTED ====")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tADDRESS\tZONE\tCAPACITY")
		for _, n := range unseen {
			zone, capacity := roleColumns(n)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", shortID(n.ID), strOr(n.Addr, "unknown"), zone, capacity)
		}
		tw.Flush()
		fmt.Fprintln(w, "Connect to them with `grange node connect ID@HOST:PORT` (`grange node id` on each prints it).")
	}

	if h != nil {
		fmt.Fprintf(w, "\nHealth: %s (%d of %d nodes connected, %d of %d storage nodes up, %d of %d partitions with a write quorum up, %d with all their nodes up)\n",
			h.Status, h.ConnectedNodes, h.KnownNodes, h.StorageNodesOk, h.StorageNodes, h.PartitionsQuorum, h.Partitions, h.PartitionsAllOk)
	}

	if l == nil {
		return
	}
	staged := len(l.StagedRoleChanges) > 0 || l.StagedParameters != nil
	switch {
	case staged:
		fmt.Fprintf(w, "\nThere are staged layout changes: review them with `grange layout show`, apply them with `grange layout apply --version %d`.\n", l.Version+1)
	case l.Version == 0:
		fmt.Fprintln(w, "\nNo layout yet: give nodes a role with `grange layout assign -z ZONE -c CAPACITY NODE_ID...`, then `grange layout apply --version 1`.")
	case noRole > 0:
		fmt.Fprintf(w, "\n%d connected node(s) have no role: give them one with `grange layout assign -z ZONE -c CAPACITY NODE_ID...`.\n", noRole)
	}
}

// roleColumns are the zone and capacity columns of a node.
func roleColumns(n *adminapi.NodeResp) (zone, capacity string) {
	switch {
	case n.Role != nil:
		return n.Role.Zone, capacityString(n.Role.Capacity)
	case n.Draining:
		return "-", "draining"
	}
	return "-", "no role"
}

func capacityString(c *uint64) string {
	if c == nil {
		return "gateway"
	}
	return formatBytes(*c)
}

func nodeState(n *adminapi.NodeResp) string {
	switch {
	case n.IsUp:
		return "up"
	case n.LastSeenSecsAgo == nil:
		return "down, never seen"
	}
	return "down, seen " + formatSecs(*n.LastSeenSecsAgo) + " ago"
}

func formatSecs(s uint64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%ds", s)
	case s < 2*3600:
		return fmt.Sprintf("%dm", s/60)
	case s < 2*86400:
		return fmt.Sprintf("%dh", s/3600)
	}
	return fmt.Sprintf("%dd", s/86400)
}

func rtt(ms *float64) string {
	if ms == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f ms", *ms)
}

func strOr(s *string, def string) string {
	if s == nil || *s == "" {
		return def
	}
	return *s
}

func tagsString(tags []string) string {
	if len(tags) == 0 {
		return "-"
	}
	return strings.Join(tags, ",")
}
