package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

func newNodeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Show this node's identity and connect it to other nodes"}

	var quiet bool
	id := &cobra.Command{
		Use:   "id",
		Short: "Print this node's ID@ADDRESS, which other nodes connect to",
		Long: `Print this node's ID@ADDRESS, the argument other nodes give to
"grange node connect" (or list in bootstrap_peers) to reach it.

When the node's admin API does not answer, the ID is read from the node key
in the metadata directory and the address from rpc_public_addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.nodeID(cmd.OutOrStdout(), cmd.ErrOrStderr(), quiet)
		},
	}
	id.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only ID@ADDRESS, without hints")

	connect := &cobra.Command{
		Use:   "connect ID@HOST:PORT...",
		Short: "Connect this node to other nodes (given by their full ID and RPC address)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res []adminapi.ConnectNodeResponse
			if err := g.call("POST", "ConnectClusterNodes", nil, args, &res); err != nil {
				return err
			}
			if len(res) != len(args) {
				return fmt.Errorf("ConnectClusterNodes answered %d results for %d nodes", len(res), len(args))
			}
			var errs []error
			for i, r := range res {
				if r.Success {
					fmt.Fprintf(cmd.OutOrStdout(), "Connected to %s.\n", args[i])
					continue
				}
				msg := "unknown error"
				if r.Error != nil {
					msg = *r.Error
				}
				errs = append(errs, fmt.Errorf("connect to %s: %s", args[i], msg))
			}
			return errors.Join(errs...)
		},
	}

	cmd.AddCommand(id, connect)
	return cmd
}

// nodeID prints ID@ADDR, from the running node when its admin API
// answers, else from its metadata directory and configuration.
func (g *globals) nodeID(stdout, stderr io.Writer, quiet bool) error {
	id, addr, err := g.nodeIDFromAPI()
	var apiErr *adminapi.Error
	if errors.As(err, &apiErr) {
		return err // the node answered: a wrong token is not a reason to guess
	}
	if err != nil {
		var ferr error
		if id, addr, ferr = g.nodeIDFromDisk(); ferr != nil {
			return fmt.Errorf("%w (and the node's admin API did not answer: %v)", ferr, err)
		}
		if !quiet {
			fmt.Fprintf(stderr, "The node's admin API did not answer (%v): this is read from its metadata directory and configuration.\n", err)
		}
	}
	if addr == "" {
		fmt.Fprintln(stdout, id)
		if !quiet {
			fmt.Fprintln(stderr, "Hint: this node's RPC address is unknown: set rpc_public_addr in its configuration to the host:port other nodes reach it at; they connect with `grange node connect "+id+"@HOST:PORT`.")
		}
		return nil
	}
	fmt.Fprintf(stdout, "%s@%s\n", id, addr)
	if !quiet {
		fmt.Fprintf(stderr, "To connect another node to this one, run on it: grange node connect %s@%s\n", id, addr)
	}
	return nil
}

func (g *globals) nodeIDFromAPI() (id, addr string, err error) {
	var info adminapi.GetNodeInfoResponse
	if err := g.call("GET", "GetNodeInfo", url.Values{"node": {"self"}}, nil, &info); err != nil {
		return "", "", err
	}
	for k := range info.Success {
		id = k
	}
	if len(info.Success) != 1 {
		return "", "", fmt.Errorf("GetNodeInfo answered for %d nodes, want 1", len(info.Success))
	}
	var st adminapi.GetClusterStatusResponse
	if err := g.call("GET", "GetClusterStatus", nil, nil, &st); err != nil {
		return "", "", err
	}
	for _, n := range st.Nodes {
		if n.ID == id && n.Addr != nil {
			addr = *n.Addr
		}
	}
	return id, addr, nil
}

// nodeIDFromDisk reads the node ID from the key file, without ever
// creating one, and the address from the configuration.
func (g *globals) nodeIDFromDisk() (id, addr string, err error) {
	var c *Config
	if g.configFile != "" {
		if c, err = loadConfig(g.configFile); err != nil {
			return "", "", err
		}
	} else {
		c = zeroConfig(g.dataDir)
		if err := applyEnvToConfig(c); err != nil {
			return "", "", err
		}
	}
	k, err := cluster.ReadNodeKey(c.MetadataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("no node key in %s: start the node once with `grange server` to create it", c.MetadataDir)
	}
	if err != nil {
		return "", "", err
	}
	return k.ID().String(), c.RPCPublicAddr, nil
}

// clusterView fetches the managed node's view of the cluster: its peers
// and the layout with the staged changes.
func (g *globals) clusterView() (*adminapi.GetClusterStatusResponse, *adminapi.GetClusterLayoutResponse, error) {
	var st adminapi.GetClusterStatusResponse
	if err := g.call("GET", "GetClusterStatus", nil, nil, &st); err != nil {
		return nil, nil, err
	}
	var l adminapi.GetClusterLayoutResponse
	if err := g.call("GET", "GetClusterLayout", nil, nil, &l); err != nil {
		return nil, nil, err
	}
	return &st, &l, nil
}

// knownNodeIDs lists the IDs of the nodes the managed node knows: its
// peers, and the nodes of the layout and of the staged changes.
func (g *globals) knownNodeIDs() ([]string, error) {
	st, l, err := g.clusterView()
	if err != nil {
		return nil, err
	}
	return layoutNodeIDs(st, l), nil
}

func layoutNodeIDs(st *adminapi.GetClusterStatusResponse, l *adminapi.GetClusterLayoutResponse) []string {
	var ids []string
	for _, n := range st.Nodes {
		ids = append(ids, n.ID)
	}
	for _, r := range l.Roles {
		ids = append(ids, r.ID)
	}
	for _, c := range l.StagedRoleChanges {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// resolveNodeID finds the node ID that prefix abbreviates among known. A
// full ID is accepted even when unknown, so that a role can be staged for
// a node before it connects.
func resolveNodeID(prefix string, known []string) (string, error) {
	p := strings.ToLower(strings.TrimSpace(prefix))
	if p == "" || len(p) > 64 || strings.Trim(p, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%q is not a node ID or the start of one (hex digits)", prefix)
	}
	var matches []string
	for _, id := range known {
		if strings.HasPrefix(id, p) && !slices.Contains(matches, id) {
			matches = append(matches, id)
		}
	}
	switch {
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) > 1:
		short := make([]string, len(matches))
		for i, m := range matches {
			short[i] = m[:min(len(p)+4, 64)] + "…"
		}
		return "", fmt.Errorf("node ID prefix %q is ambiguous: it matches %s (give more digits)", prefix, strings.Join(short, ", "))
	case len(p) == 64:
		return p, nil
	}
	return "", fmt.Errorf("no known node has an ID starting with %q (see `grange status`; give a node that has not connected yet by its full ID)", prefix)
}
