// Package node builds, starts and stops a whole grange node: storage,
// catalog, K2V items and the HTTP APIs. It is the only package that opens a
// node's directories; cmd/grange calls it with a resolved Config, and tests
// and benchmarks start real nodes in-process through it.
package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
	"github.com/grangeio/grange/k2v"
	"github.com/grangeio/grange/k2v/k2vhttp"
)

// Config is a node's resolved configuration. Zero fields take the defaults
// noted; cmd/grange fills it from flags, the TOML file and the environment.
type Config struct {
	// MetadataDir holds the node key, the layout and the pebble database.
	MetadataDir string
	// DataDir holds data blocks (S3 objects) when DataDirs is empty; ""
	// means MetadataDir/data.
	DataDir string
	// DataDirs are the data directories with their capacities (data_dir
	// as a list); nil means DataDir alone.
	DataDirs []blocks.Dir
	// NoDataFsync writes blocks without fsync (data_fsync = false).
	NoDataFsync bool
	// DataDirectIO writes and reads large blocks with direct I/O
	// (data_direct_io; needs data_fsync).
	DataDirectIO bool
	// Blocks tunes the block store (block_size, compression_level,
	// block_ram_buffer_max…); its cluster, database, store, clock and
	// logger are set by New.
	Blocks blocks.Config
	// FS replaces the file system of the pebble database (tests use
	// vfs.NewMem()); nil means the operating system's.
	FS k2v.FS
	// NoMetadataFsync acknowledges writes before they are synced to disk
	// (metadata_fsync = false).
	NoMetadataFsync bool
	// ReplicationFactor is the number of copies of each partition; 0 means 1.
	ReplicationFactor int
	// SingleNode assigns every partition to this node on first start.
	SingleNode bool
	// Zone of this node in a single-node layout; "" means "dc1".
	Zone string

	// RPCSecret is the cluster secret (rpc_secret); the zero value disables
	// RPC: the node then runs alone.
	RPCSecret [32]byte
	// RPCBindAddr is where RPC listens; "" means "[::]:3901".
	RPCBindAddr string
	// RPCPublicAddr is the address other nodes dial; "" means the bound
	// address when it names a host.
	RPCPublicAddr string
	// BootstrapPeers are "ID@host:port" nodes to connect to at start.
	BootstrapPeers []string
	// Network replaces TCP between nodes (tests inject faults through it).
	Network cluster.Network
	// Cluster tunes peering (ping interval…); its identity, secret,
	// addresses, directory and logger come from the fields above.
	Cluster cluster.Config
	// ConsistencyMode is consistency_mode: "consistent" (default),
	// "degraded" or "dangerous".
	ConsistencyMode string
	// Replication tunes the replicated tables (anti-entropy period, GC
	// delay…); its cluster, database, mode and logger are set by New.
	Replication k2v.ReplicatorConfig

	// Version is the software version the node reports; "" means the
	// module's build information.
	Version string

	// Region is the S3 and K2V region; "" means "garage".
	Region string
	// K2VAddr is the K2V API listen address; "" disables the K2V API.
	K2VAddr string
	// AdminAddr is the admin API listen address; "" disables it.
	AdminAddr string
	// AdminToken protects the admin API; "" means a token generated once
	// and kept in the admin token file of the metadata directory.
	AdminToken string
	// MaxK2VBodyBytes caps K2V request bodies; 0 means the default.
	MaxK2VBodyBytes int

	// Default* provision, idempotently at every start, an access key and a
	// bucket it may read, write and own.
	DefaultAccessKey string
	DefaultSecretKey string
	DefaultBucket    string

	// Now is the node's one clock: every timestamp it stores or compares
	// with other nodes (items, catalog, layout stamps, peer liveness, SigV4
	// dates) comes from it. nil means time.Now; cmd/grange passes
	// cluster/clock's, shifted by GRANGE_CLOCK_OFFSET in tests.
	Now func() time.Time
	// Logger; nil discards.
	Logger *slog.Logger
}

// Node is a running grange node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	key     cluster.NodeKey
	cluster *cluster.Cluster
	db      *k2v.DB
	rep     *k2v.Replicator
	store   *blocks.Store
	blocks  *blocks.Manager
	items   *k2v.Items
	catalog *k2v.Catalog

	adminToken string
	// FirstStart is set when this start created the node's database; it
	// holds the access key generated for the user, if one was.
	FirstStart *Credentials

	k2vAPI           *k2vhttp.Server
	k2vSrv, adminSrv *serverState
	closeOnce        sync.Once
}

// Credentials are an access key and its secret.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

type serverState struct {
	ln   net.Listener
	stop func(context.Context) error
	done chan error
}

// AdminTokenFile is the file of the metadata directory where a node keeps
// the admin API address and token when they were not configured, so that
// the CLI on the same machine finds them (mode 0600).
const AdminTokenFile = "admin-api.json"

// AdminEndpoint is the content of AdminTokenFile.
type AdminEndpoint struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

// New opens the node's storage and prepares it; Start serves the APIs.
func New(cfg Config) (n *Node, err error) {
	if cfg.MetadataDir == "" {
		return nil, errors.New("node: metadata directory not set")
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = 1
	}
	if cfg.Region == "" {
		cfg.Region = "garage"
	}
	if cfg.Zone == "" {
		cfg.Zone = "dc1"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.DataDirs) == 0 && cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(cfg.MetadataDir, "data")
	}
	if len(cfg.DataDirs) == 0 {
		cfg.DataDirs = []blocks.Dir{{Path: cfg.DataDir}}
	}
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.DataDirs[0].Path
	}
	n = &Node{cfg: cfg, log: cfg.Logger}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	for _, dir := range []string{cfg.MetadataDir, cfg.DataDir} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
	}
	if n.key, err = cluster.LoadOrCreateNodeKey(cfg.MetadataDir); err != nil {
		return nil, err
	}
	if err := n.initLayout(); err != nil {
		return nil, err
	}
	cc := cfg.Cluster
	cc.MetadataDir, cc.Key, cc.Secret = cfg.MetadataDir, n.key, cfg.RPCSecret
	cc.ReplicationFactor = cfg.ReplicationFactor
	cc.BindAddr, cc.PublicAddr, cc.BootstrapPeers = cfg.RPCBindAddr, cfg.RPCPublicAddr, cfg.BootstrapPeers
	cc.Network, cc.Now = cfg.Network, cfg.Now
	cc.Logger = n.log.With("component", "cluster")
	// the tables declare a layout version synced once they hold its data
	cc.ManualSync = true
	mode, err := k2v.ParseConsistencyMode(cfg.ConsistencyMode)
	if err != nil {
		return nil, err
	}
	if n.cluster, err = cluster.New(cc); err != nil {
		return nil, err
	}

	dbDir := filepath.Join(cfg.MetadataDir, "db")
	_, statErr := os.Stat(dbDir)
	fresh := errors.Is(statErr, fs.ErrNotExist)
	if cfg.FS != nil {
		fresh = false
		if _, err := cfg.FS.Stat(dbDir); err != nil {
			fresh = true
		}
	}
	n.db, err = k2v.Open(k2v.DBConfig{Dir: dbDir, FS: cfg.FS, NoFsync: cfg.NoMetadataFsync, Logger: n.log.With("component", "pebble")})
	if err != nil {
		return nil, err
	}
	db := n.db
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	rc := cfg.Replication
	rc.Cluster, rc.DB, rc.Consistency = n.cluster, n.db, mode
	rc.Logger = n.log.With("component", "tables")
	n.rep = k2v.NewReplicator(rc)
	n.store, err = blocks.OpenStore(blocks.StoreConfig{
		Dirs:       cfg.DataDirs,
		Fsync:      !cfg.NoDataFsync,
		DirectIO:   cfg.DataDirectIO,
		LayoutFile: filepath.Join(cfg.MetadataDir, "data_layout.json"),
		Logger:     n.log.With("component", "block_store"),
	})
	if err != nil {
		return nil, err
	}
	bc := cfg.Blocks
	bc.Cluster, bc.DB, bc.Replicator, bc.Store = n.cluster, n.db, n.rep, n.store
	bc.Now, bc.Logger = cfg.Now, n.log.With("component", "blocks")
	if n.blocks, err = blocks.New(bc); err != nil {
		return nil, err
	}
	n.items, err = k2v.NewItems(n.db, k2v.ItemsConfig{
		Replicator:    n.rep,
		Node:          n.key.ID(),
		IsStorageNode: func(id cluster.NodeID) bool { return n.cluster.Layout().IsStorageNode(id) },
		Now:           cfg.Now,
		Logger:        n.log,
	})
	if err != nil {
		return nil, err
	}
	n.catalog, err = k2v.NewCatalog(n.db, k2v.CatalogConfig{Now: cfg.Now, IsEmpty: n.items.BucketEmpty, Replicator: n.rep})
	if err != nil {
		return nil, err
	}
	if err := n.provision(fresh); err != nil {
		return nil, err
	}
	if err := n.loadAdminToken(); err != nil {
		return nil, err
	}
	return n, nil
}

// initLayout creates the single-node layout on first start when asked
// to. Otherwise a node without a layout starts with the empty version 0
// and waits for the operator to assign it a role (grange layout assign).
func (n *Node) initLayout() error {
	h, err := cluster.LoadHistory(n.cfg.MetadataDir)
	if err != nil || h != nil || !n.cfg.SingleNode {
		return err
	}
	if n.cfg.ReplicationFactor != 1 {
		return fmt.Errorf("node: a single-node cluster needs replication_factor = 1, not %d", n.cfg.ReplicationFactor)
	}
	l := layout.SingleNode(n.key.ID(), layout.Role{Zone: n.cfg.Zone, CapacityBytes: dataCapacity(n.cfg.DataDirs)})
	if err := cluster.SaveHistory(n.cfg.MetadataDir, layout.HistoryFrom(l)); err != nil {
		return err
	}
	n.log.Info("single-node layout created", "node", n.key.ID(), "zone", n.cfg.Zone)
	return nil
}

// provision creates the default key and bucket, and on first start a key
// for the user when none was configured.
func (n *Node) provision(fresh bool) error {
	c := n.catalog
	var keyID string
	switch {
	case n.cfg.DefaultAccessKey != "" || n.cfg.DefaultSecretKey != "":
		if n.cfg.DefaultAccessKey == "" || n.cfg.DefaultSecretKey == "" {
			return errors.New("node: the default access key and secret key must be given together")
		}
		k, err := c.EnsureKey(n.cfg.DefaultAccessKey, n.cfg.DefaultSecretKey, "default")
		if err != nil {
			return fmt.Errorf("node: default access key: %w", err)
		}
		keyID = k.ID
	case fresh:
		k, err := c.CreateKey("default")
		if err != nil {
			return err
		}
		keyID = k.ID
		n.FirstStart = &Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}
	}
	if n.cfg.DefaultBucket == "" {
		return nil
	}
	id, err := c.LookupAlias(n.cfg.DefaultBucket)
	if errors.Is(err, k2v.ErrNoSuchBucket) {
		bk, cerr := c.CreateBucket(n.cfg.DefaultBucket, nil)
		if cerr != nil {
			return fmt.Errorf("node: default bucket: %w", cerr)
		}
		id, err = bk.ID, nil
	}
	if err != nil {
		return fmt.Errorf("node: default bucket: %w", err)
	}
	if k, _ := c.Key(keyID); k != nil && k.Buckets[id].Value == (k2v.Perm{Read: true, Write: true, Owner: true}) {
		return nil // already granted: a restart writes nothing
	}
	if keyID != "" {
		if _, err := c.SetPermissions(id, keyID, k2v.Perm{Read: true, Write: true, Owner: true}, true); err != nil {
			return fmt.Errorf("node: default bucket permissions: %w", err)
		}
	}
	return nil
}

func (n *Node) loadAdminToken() error {
	if n.cfg.AdminToken != "" {
		n.adminToken = n.cfg.AdminToken
		return nil
	}
	path := filepath.Join(n.cfg.MetadataDir, AdminTokenFile)
	var ep AdminEndpoint
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &ep); err != nil || ep.Token == "" {
			return fmt.Errorf("node: admin token file %s is damaged: delete it to get a new token", path)
		}
		n.adminToken = ep.Token
		return nil
	}
	var b [32]byte
	rand.Read(b[:])
	n.adminToken = hex.EncodeToString(b[:])
	return nil
}

// writeAdminTokenFile records where the admin API listens and its token.
func (n *Node) writeAdminTokenFile(addr string) error {
	if n.cfg.AdminToken != "" {
		return nil // configured: the CLI reads it from the same configuration
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "" || net.ParseIP(host).IsUnspecified()) {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	b, _ := json.MarshalIndent(AdminEndpoint{Addr: addr, Token: n.adminToken}, "", "  ")
	path := filepath.Join(n.cfg.MetadataDir, AdminTokenFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Start launches the background work, binds the configured listeners and
// serves the APIs.
func (n *Node) Start() error {
	if err := n.cluster.Start(); err != nil {
		return err
	}
	n.rep.Start()
	n.blocks.Start()
	n.items.Start()
	n.k2vAPI = k2vhttp.New(k2vhttp.Config{
		Region:       n.cfg.Region,
		Items:        n.items,
		Catalog:      n.catalog,
		MaxBodyBytes: n.cfg.MaxK2VBodyBytes,
		Now:          n.cfg.Now,
		Logger:       n.log.With("component", "k2v_api"),
	})
	if n.cfg.K2VAddr != "" {
		st, err := serve(n.cfg.K2VAddr, n.k2vAPI.Serve, n.k2vAPI.Shutdown)
		if err != nil {
			return fmt.Errorf("node: K2V API: %w", err)
		}
		n.k2vSrv = st
	}
	if n.cfg.AdminAddr != "" {
		srv, err := adminapi.NewServer(adminapi.Config{
			Token:   n.adminToken,
			Region:  n.cfg.Region,
			Catalog: n.catalog,
			Cluster: n.cluster,
			Repair:  n.rep,
			Blocks:  n.blocks,
			Version: n.cfg.Version,
			Now:     n.cfg.Now,
			Logger:  n.log.With("component", "admin_api"),
		})
		if err != nil {
			return err
		}
		st, err := serve(n.cfg.AdminAddr, srv.Serve, srv.Shutdown)
		if err != nil {
			n.stopServers(context.Background())
			return fmt.Errorf("node: admin API: %w", err)
		}
		n.adminSrv = st
		if err := n.writeAdminTokenFile(st.ln.Addr().String()); err != nil {
			n.stopServers(context.Background())
			return fmt.Errorf("node: admin token file: %w", err)
		}
	}
	return nil
}

func serve(addr string, run func(net.Listener) error, stop func(context.Context) error) (*serverState, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	st := &serverState{ln: ln, stop: stop, done: make(chan error, 1)}
	go func() { st.done <- run(ln) }()
	return st, nil
}

func (n *Node) stopServers(ctx context.Context) error {
	var errs []error
	for _, st := range []*serverState{n.k2vSrv, n.adminSrv} {
		if st == nil {
			continue
		}
		if err := st.stop(ctx); err != nil {
			errs = append(errs, err)
		}
		<-st.done
	}
	n.k2vSrv, n.adminSrv = nil, nil
	return errors.Join(errs...)
}

// Close stops the HTTP servers (requests in progress finish, long polls end
// at once, until ctx expires) and then closes the database. It is safe to
// call twice.
func (n *Node) Close(ctx context.Context) error {
	var err error
	n.closeOnce.Do(func() {
		err = n.stopServers(ctx)
		// items publish their last counters through the replicator
		err = errors.Join(err, n.items.Close())
		n.blocks.Close()
		n.rep.Close()
		err = errors.Join(err, n.cluster.Close(), n.db.Close())
	})
	return err
}

// Cluster returns the node's cluster layer.
func (n *Node) Cluster() *cluster.Cluster { return n.cluster }

// ID returns the node's ID.
func (n *Node) ID() cluster.NodeID { return n.key.ID() }

// K2VHandler returns the K2V API's request handler (after Start), for
// tests that serve requests without a socket.
func (n *Node) K2VHandler() fasthttp.RequestHandler { return n.k2vAPI.Handle }

// K2VAddr returns the address the K2V API listens on ("" when disabled).
func (n *Node) K2VAddr() string { return addrOf(n.k2vSrv) }

// AdminAddr returns the address the admin API listens on.
func (n *Node) AdminAddr() string { return addrOf(n.adminSrv) }

// AdminToken returns the admin API token.
func (n *Node) AdminToken() string { return n.adminToken }

// Replicator returns the node's table replication (anti-entropy, queues).
func (n *Node) Replicator() *k2v.Replicator { return n.rep }

// Blocks returns the node's block store.
func (n *Node) Blocks() *blocks.Manager { return n.blocks }

// Items returns the node's K2V item store.
func (n *Node) Items() *k2v.Items { return n.items }

// Catalog returns the node's bucket and key catalog.
func (n *Node) Catalog() *k2v.Catalog { return n.catalog }

// Region returns the configured region.
func (n *Node) Region() string { return n.cfg.Region }

func addrOf(st *serverState) string {
	if st == nil {
		return ""
	}
	return st.ln.Addr().String()
}
