package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grangeio/grange/cluster/layout"
	"github.com/grangeio/grange/cluster/rpc"
)

// The RPC types of cluster/rpc, re-exported so that the layers above need
// only this package.
type (
	// Handler serves one RPC endpoint.
	Handler = rpc.Handler
	// HandlerFunc adapts a function to a Handler.
	HandlerFunc = rpc.HandlerFunc
	// Request is an outgoing RPC.
	Request = rpc.Request
	// Incoming is an RPC as its handler sees it.
	Incoming = rpc.Incoming
	// Response is the answer of a handler.
	Response = rpc.Response
	// Priority orders frames on a connection.
	Priority = rpc.Priority
	// Network is how nodes reach each other: TCP, or a fault-injecting
	// wrapper in tests.
	Network = rpc.Network
)

// RPC priorities.
const (
	PrioInteractive = rpc.Interactive
	PrioNormal      = rpc.Normal
	PrioBackground  = rpc.Background
)

// Config configures a Cluster. Zero fields take the defaults noted.
type Config struct {
	// MetadataDir keeps the layout history and the list of known peers.
	MetadataDir string
	// Key is this node's static key; its public half is the node ID.
	Key NodeKey
	// Secret is the cluster's rpc_secret. The zero secret disables RPC: the
	// node then runs alone (the zero-configuration single-node server).
	Secret [32]byte
	// ReplicationFactor of the cluster; it must match the persisted layout.
	ReplicationFactor int
	// BindAddr is where RPC listens (rpc_bind_addr); "" means "[::]:3901"
	// when RPC is enabled.
	BindAddr string
	// PublicAddr is the address other nodes dial to reach this one
	// (rpc_public_addr); "" means the bound address when it names a host.
	PublicAddr string
	// BootstrapPeers are "ID@host:port" nodes to connect to at start.
	BootstrapPeers []string
	// Network replaces TCP (tests inject faults through it).
	Network Network
	// Hostname is reported to peers; "" means os.Hostname.
	Hostname string

	// PingInterval is how often each connected peer is pinged (default
	// 2 s); after MaxFailedPings (default 3) consecutive failures of
	// PingTimeout (default 2 s) the peer is marked down and its connection
	// closed. A peer whose connection breaks is marked down at once.
	PingInterval   time.Duration
	PingTimeout    time.Duration
	MaxFailedPings int
	// ExchangeInterval is how often the peer list is exchanged with a
	// random connected peer (default 10 s).
	ExchangeInterval time.Duration
	// MaxRedialDelay caps the exponential backoff between attempts to
	// reach a down peer (default 10 s).
	MaxRedialDelay time.Duration

	// ManualSync leaves this node's sync tracker to MarkSynced. When off, a
	// layout version counts as synced on this node as soon as the node
	// knows it: right while tables are not replicated over the cluster.
	ManualSync bool

	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultRPCPort is the RPC port when rpc_bind_addr is not set.
const DefaultRPCPort = "3901"

// Errors.
var (
	// ErrRPCDisabled is returned by operations that need other nodes when
	// the node runs without an rpc_secret.
	ErrRPCDisabled = errors.New("cluster: RPC is disabled (no rpc_secret configured)")
	// ErrClosed is returned once Close has begun.
	ErrClosed = errors.New("cluster: closed")
	// ErrUnknownPeer is returned when no address is known for a node.
	ErrUnknownPeer = errors.New("cluster: no known address for node")
)

// Cluster is this node's view of the cluster: its RPC transport and peers,
// their liveness, and the layout history. It is safe for concurrent use.
type Cluster struct {
	cfg Config
	log *slog.Logger
	id  NodeID
	tr  *rpc.Transport // nil when RPC is disabled

	handlers map[string]Handler

	// updMu serialises changes of the layout history (it is held across
	// the write of the layout file; c.mu is not). Lock order: updMu, mu.
	updMu sync.Mutex
	// layout is the current applied version, for lock-free reads.
	layout atomic.Pointer[layout.Layout]

	mu struct {
		sync.Mutex
		history    *layout.History // immutable snapshot; replaced whole
		encoded    []byte          // history's encoding, as sent to peers
		digest     [32]byte        // of encoded
		peers      map[NodeID]*peer
		peersDirty bool // a peer address changed since the peer list was saved
		listeners  []func(*layout.History)
		// inflight counts the writes in progress (BeginWrite) by the
		// version that was current when they began.
		inflight map[uint64]int
		ln       net.Listener
		closed   bool
	}

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// kick wakes the maintenance loop early (new peer, connection lost).
	kick chan struct{}
}

// New loads the layout history and the known peers from cfg.MetadataDir
// and prepares the transport. Start begins listening and peering.
func New(cfg Config) (*Cluster, error) {
	if cfg.MetadataDir == "" {
		return nil, errors.New("cluster: metadata directory not set")
	}
	if cfg.Key.priv == nil {
		return nil, errors.New("cluster: node key not set")
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = 1
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 2 * time.Second
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = 2 * time.Second
	}
	if cfg.MaxFailedPings == 0 {
		cfg.MaxFailedPings = 3
	}
	if cfg.ExchangeInterval == 0 {
		cfg.ExchangeInterval = 10 * time.Second
	}
	if cfg.MaxRedialDelay == 0 {
		cfg.MaxRedialDelay = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	c := &Cluster{cfg: cfg, log: cfg.Logger, id: cfg.Key.ID(), handlers: map[string]Handler{}, kick: make(chan struct{}, 1)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.mu.peers = map[NodeID]*peer{}
	c.mu.inflight = map[uint64]int{}

	h, err := LoadHistory(cfg.MetadataDir)
	if err != nil {
		return nil, err
	}
	if h == nil {
		h = layout.NewHistory(cfg.ReplicationFactor)
	}
	if rf := h.Current().ReplicationFactor; h.Current().Version > 0 && rf != cfg.ReplicationFactor {
		return nil, fmt.Errorf("cluster: the layout in %s has replication factor %d but replication_factor is %d: changing it is not supported", cfg.MetadataDir, rf, cfg.ReplicationFactor)
	}
	c.setHistoryLocked(h, h.Encode(nil))

	if err := c.loadPeers(); err != nil {
		return nil, err
	}
	for _, s := range cfg.BootstrapPeers {
		id, addr, err := ParsePeer(s)
		if err != nil {
			return nil, err
		}
		c.learnPeerLocked(id, addr, false)
	}

	if cfg.Secret != ([32]byte{}) {
		if c.cfg.BindAddr == "" {
			c.cfg.BindAddr = net.JoinHostPort("::", DefaultRPCPort)
		}
		c.tr, err = rpc.New(rpc.Config{
			Key:          cfg.Key.priv,
			Secret:       cfg.Secret,
			Network:      cfg.Network,
			Handler:      rpc.HandlerFunc(c.serveRPC),
			OnConnect:    c.onConnect,
			OnDisconnect: c.onDisconnect,
			Logger:       c.log.With("component", "rpc"),
		})
		if err != nil {
			return nil, err
		}
	}
	c.registerHandlers()
	return c, nil
}

// Handle registers the handler of an endpoint. It must be called before
// Start; endpoint names are "layer/name" ("k2v/insert").
func (c *Cluster) Handle(endpoint string, h Handler) {
	if _, dup := c.handlers[endpoint]; dup {
		panic("cluster: endpoint registered twice: " + endpoint)
	}
	c.handlers[endpoint] = h
}

// serveRPC dispatches an inbound request to its endpoint's handler.
func (c *Cluster) serveRPC(ctx context.Context, from NodeID, req *Incoming) (*Response, error) {
	h := c.handlers[req.Endpoint]
	if h == nil {
		return nil, fmt.Errorf("cluster: no handler for endpoint %q", req.Endpoint)
	}
	c.sawPeer(from)
	return h.ServeRPC(ctx, from, req)
}

// Start listens for RPC (when enabled) and starts peering, pings and layout
// gossip.
func (c *Cluster) Start() error {
	if c.tr != nil {
		network := c.cfg.Network
		if network == nil {
			network = rpc.TCP
		}
		ln, err := network.Listen(c.cfg.BindAddr)
		if err != nil {
			return fmt.Errorf("cluster: RPC listen: %w", err)
		}
		c.mu.Lock()
		c.mu.ln = ln
		c.mu.Unlock()
		if c.cfg.PublicAddr == "" {
			if host, _, _ := net.SplitHostPort(ln.Addr().String()); host != "" && !net.ParseIP(host).IsUnspecified() {
				c.cfg.PublicAddr = ln.Addr().String()
			} else {
				c.log.Warn("rpc_public_addr is not set and RPC listens on every interface: other nodes will not learn how to reach this one until it connects to them", "bind", ln.Addr().String())
			}
		}
		c.wg.Go(func() {
			if err := c.tr.Serve(ln); err != nil {
				c.log.Error("RPC listener stopped", "err", err)
			}
		})
		c.wg.Go(c.maintain)
	}
	c.log.Info("cluster started", "node", c.id, "rpc", c.cfg.BindAddr, "public_addr", c.cfg.PublicAddr, "layout_version", c.Layout().Version)
	return nil
}

// Close stops peering and closes every connection. It is safe to call twice.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	c.cancel()
	var err error
	if c.tr != nil {
		err = c.tr.Close()
	}
	c.wg.Wait()
	return err
}

// ID returns this node's ID.
func (c *Cluster) ID() NodeID { return c.id }

// RPCEnabled reports whether the node talks to other nodes.
func (c *Cluster) RPCEnabled() bool { return c.tr != nil }

// PublicAddr is the address other nodes should dial ("" when unknown).
func (c *Cluster) PublicAddr() string { return c.cfg.PublicAddr }

// ListenAddr is the address RPC listens on ("" before Start or when RPC
// is disabled).
func (c *Cluster) ListenAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.ln == nil {
		return ""
	}
	return c.mu.ln.Addr().String()
}

// Call sends one request to a node and waits for its response. A call to
// this node runs the handler directly. When no connection to the node is
// up but its address is known, Call dials it first.
func (c *Cluster) Call(ctx context.Context, to NodeID, req *Request) (*Response, error) {
	if to == c.id {
		h := c.handlers[req.Endpoint]
		if h == nil {
			return nil, fmt.Errorf("cluster: no handler for endpoint %q", req.Endpoint)
		}
		return h.ServeRPC(ctx, c.id, &Incoming{Endpoint: req.Endpoint, Priority: req.Priority, Body: req.Body, Stream: req.Stream})
	}
	if c.tr == nil {
		return nil, ErrRPCDisabled
	}
	if c.tr.Conn(to) == nil {
		if _, err := c.dial(ctx, to); err != nil {
			return nil, err
		}
	}
	return c.tr.Call(ctx, to, req)
}

// ParsePeer parses "ID@host:port". The ID may be written in full only.
func ParsePeer(s string) (NodeID, string, error) {
	idStr, addr, ok := strings.Cut(s, "@")
	if !ok {
		return NodeID{}, "", fmt.Errorf("cluster: peer %q: want <node id>@<host:port>", s)
	}
	id, err := ParseNodeID(idStr)
	if err != nil {
		return NodeID{}, "", fmt.Errorf("cluster: peer %q: %w", s, err)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return NodeID{}, "", fmt.Errorf("cluster: peer %q: %w", s, err)
	}
	return id, addr, nil
}
