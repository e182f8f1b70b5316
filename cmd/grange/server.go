package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/cluster/clock"
	"github.com/grangeio/grange/cmd/grange/node"
)

// shutdownTimeout bounds the graceful part of a shutdown: requests in
// progress get this long to finish.
const shutdownTimeout = 30 * time.Second

type serverFlags struct {
	singleNode                bool
	defaultKey, defaultSecret string
	defaultBucket             string
}

func newServerCommand(g *globals) *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a grange node",
		Long: `Run a grange node.

Without -c, a single-node cluster keeps its data under --data-dir
(./grange-data) and serves the K2V API on :3904 and the admin API on
127.0.0.1:3903. On first start it prints a new access key and its secret,
once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(g, f, cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.singleNode, "single-node", false, "assign this node every partition on first start (implied without -c)")
	fl.StringVar(&f.defaultKey, "default-access-key", os.Getenv("GRANGE_DEFAULT_ACCESS_KEY"), "create this access key at start if absent (env GRANGE_DEFAULT_ACCESS_KEY)")
	fl.StringVar(&f.defaultSecret, "default-secret-key", os.Getenv("GRANGE_DEFAULT_SECRET_KEY"), "its secret (env GRANGE_DEFAULT_SECRET_KEY)")
	fl.StringVar(&f.defaultBucket, "default-bucket", os.Getenv("GRANGE_DEFAULT_BUCKET"), "create this bucket at start if absent, with all permissions for the default key (env GRANGE_DEFAULT_BUCKET)")
	return cmd
}

// nodeConfig resolves the node configuration from the flags and the file.
func nodeConfig(g *globals, f *serverFlags) (node.Config, *Config, error) {
	var c *Config
	singleNode := f.singleNode
	if g.configFile == "" {
		c = zeroConfig(g.dataDir)
		if err := applyEnvToConfig(c); err != nil {
			return node.Config{}, nil, err
		}
		c.K2VAPI.APIBindAddr = orDefault(c.K2VAPI.APIBindAddr, ":3904")
		c.Admin.APIBindAddr = orDefault(c.Admin.APIBindAddr, "127.0.0.1:3903")
		singleNode = true
		// the environment may have set anything a file sets
		if err := c.validate(); err != nil {
			return node.Config{}, nil, err
		}
	} else {
		var err error
		if c, err = loadConfig(g.configFile); err != nil {
			return node.Config{}, nil, err
		}
	}
	c.withDefaults()
	token, err := c.adminToken()
	if err != nil {
		return node.Config{}, nil, fmt.Errorf("admin token: %w", err)
	}
	secret, err := c.rpcSecret()
	if err != nil {
		return node.Config{}, nil, err
	}
	// One clock stamps everything this node stores or compares with other
	// nodes; GRANGE_CLOCK_OFFSET shifts it, for tests only.
	now, offset, err := clock.FromEnv(os.LookupEnv)
	if err != nil {
		return node.Config{}, nil, err
	}
	c.clockOffset = offset
	dirs, err := c.dataDirs()
	if err != nil {
		return node.Config{}, nil, err
	}
	nc := node.Config{
		Version:        version,
		RPCSecret:      secret,
		RPCBindAddr:    c.RPCBindAddr,
		RPCPublicAddr:  c.RPCPublicAddr,
		BootstrapPeers: c.BootstrapPeers,
		MetadataDir:    c.MetadataDir,
		DataDirs:       dirs,
		NoDataFsync:    !*c.DataFsync,
		DataDirectIO:   c.DataDirectIO,
		Blocks: blocks.Config{
			BlockSize:        int(*c.BlockSize),
			CompressionLevel: int(*c.CompressionLevel),
			RAMBufferMax:     int64(*c.BlockRAMBufferMax),
		},
		NoMetadataFsync:   !*c.MetadataFsync,
		ReplicationFactor: c.ReplicationFactor,
		ConsistencyMode:   c.ConsistencyMode,
		SingleNode:        singleNode,
		Region:            c.S3API.S3Region,
		K2VAddr:           c.K2VAPI.APIBindAddr,
		AdminAddr:         c.Admin.APIBindAddr,
		AdminToken:        token,
		DefaultAccessKey:  f.defaultKey,
		DefaultSecretKey:  f.defaultSecret,
		DefaultBucket:     f.defaultBucket,
		Now:               now,
	}
	return nc, c, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// applyEnvToConfig applies GRANGE_* variables to a configuration that did
// not come from a file.
func applyEnvToConfig(c *Config) error {
	return applyEnv(reflect.ValueOf(c).Elem(), os.LookupEnv)
}

func runServer(g *globals, f *serverFlags, out io.Writer) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	nc, c, err := nodeConfig(g, f)
	if err != nil {
		return err
	}
	nc.Logger = log
	// Profiles until the shutdown completes (also on the second signal's
	// exit below, which calls stopProfile first).
	stopProfile := startCPUProfile("server")
	defer stopProfile()
	if c.clockOffset != 0 {
		log.Warn("clock offset set: this node's timestamps are shifted; a testing knob, never for production",
			"env", clock.EnvOffset, "offset", c.clockOffset.String())
	}
	n, err := node.New(nc)
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		n.Close(context.Background())
		return err
	}
	printBanner(out, n, c, g)

	// The first signal shuts down gracefully; a second one exits at once.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig := <-sigs
	log.Info("shutting down", "signal", sig.String())
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		done <- n.Close(ctx)
	}()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: %w", err)
		}
		log.Info("stopped")
		return nil
	case sig := <-sigs:
		log.Warn("second signal: exiting without waiting", "signal", sig.String())
		stopProfile()
		os.Exit(1)
		return nil
	}
}

func printBanner(w io.Writer, n *node.Node, c *Config, g *globals) {
	fmt.Fprintf(w, "grange %s, node %s\n", version, n.ID())
	if a := n.K2VAddr(); a != "" {
		fmt.Fprintf(w, "  K2V API    http://%s  (listening on %s, region %q)\n", reachable(a), a, n.Region())
	} else {
		fmt.Fprintln(w, "  K2V API    disabled (no [k2v_api] api_bind_addr)")
	}
	if a := n.AdminAddr(); a != "" {
		fmt.Fprintf(w, "  admin API  http://%s\n", reachable(a))
	}
	if cl := n.Cluster(); cl.RPCEnabled() {
		fmt.Fprintf(w, "  cluster    RPC on %s, public address %s\n", cl.ListenAddr(), orDefault(cl.PublicAddr(), "unknown (set rpc_public_addr)"))
		fmt.Fprintf(w, "  node       %s@%s\n", n.ID(), orDefault(cl.PublicAddr(), "?"))
		if l := cl.Layout(); l.Version == 0 {
			fmt.Fprintln(w, "  layout     none yet: connect the nodes (grange node connect) and assign roles (grange layout assign)")
		} else {
			fmt.Fprintf(w, "  layout     version %d, %d storage nodes\n", l.Version, len(l.StorageNodes()))
		}
	} else {
		fmt.Fprintln(w, "  cluster    RPC disabled (no rpc_secret): this node runs alone")
	}
	fmt.Fprintln(w, "  S3 API and web endpoint: not available in this version")
	fmt.Fprintf(w, "  metadata   %s\n", c.MetadataDir)
	printDataDirs(w, c)
	if c.clockOffset != 0 {
		fmt.Fprintf(w, "  clock      offset %s (%s): for tests only; SigV4 dates are checked against this clock\n", c.clockOffset, clock.EnvOffset)
	}
	if cr := n.FirstStart; cr != nil {
		cli := "grange"
		if g.configFile != "" {
			cli += " -c " + g.configFile
		} else if g.dataDir != "grange-data" {
			cli += " --data-dir " + g.dataDir
		}
		fmt.Fprintf(w, `
First start: an access key was created. The secret is shown only this once:
  access key id      %s
  secret access key  %s
Create a bucket and let the key use it:
  %s bucket create my-bucket
  %s bucket allow --read --write --owner my-bucket --key %s
`, cr.AccessKeyID, cr.SecretAccessKey, cli, cli, cr.AccessKeyID)
	}
}

// printDataDirs writes the data directories and how blocks are stored
// there, for the banner.
func printDataDirs(w io.Writer, c *Config) {
	dirs, _ := c.dataDirs() // checked by nodeConfig
	for i, d := range dirs {
		label := "data"
		if i > 0 {
			label = ""
		}
		var note string
		switch {
		case d.ReadOnly:
			note = "  (read-only: being emptied, no new blocks)"
		case d.Capacity > 0:
			note = fmt.Sprintf("  (capacity %s)", formatBytes(uint64(d.Capacity)))
		}
		fmt.Fprintf(w, "  %-10s %s%s\n", label, d.Path, note)
	}
	fsync := "on"
	if !*c.DataFsync {
		fsync = "off (data_fsync = false: a crash may lose recent blocks)"
	}
	comp := "zstd level " + c.CompressionLevel.String()
	if *c.CompressionLevel == compressionNone {
		comp = "no compression"
	}
	fmt.Fprintf(w, "  blocks     %s each, %s, fsync %s\n", formatBinaryBytes(uint64(*c.BlockSize)), comp, fsync)
}

// reachable turns a listen address into one a local client can use.
func reachable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
