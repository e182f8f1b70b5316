package rpc

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

// Network opens listeners and connections: TCP for real nodes; tests of the
// layers above wrap it to inject faults.
type Network interface {
	Listen(addr string) (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// TCP is the Network of real nodes: net.Listen and a net.Dialer, with
// TCP_NODELAY on every connection (Go's default, made explicit).
var TCP Network = tcpNetwork{}

type tcpNetwork struct{}

func (tcpNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return tcpListener{ln}, nil
}

func (tcpNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tuneTCP(tc)
	}
	return c, nil
}

type tcpListener struct{ net.Listener }

func (l tcpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tuneTCP(tc)
	}
	return c, err
}

// Priority orders the frames of concurrent calls on a connection: a frame
// of a higher priority always goes first, so a large Background transfer
// delays an Interactive call by about one frame (64 KiB).
type Priority uint8

const (
	Interactive Priority = iota // a client is waiting
	Normal                      // replication, quorum reads and writes
	Background                  // resync, anti-entropy, GC
)

func (p Priority) String() string {
	switch p {
	case Interactive:
		return "interactive"
	case Normal:
		return "normal"
	case Background:
		return "background"
	}
	return fmt.Sprintf("priority(%d)", uint8(p))
}

// Request is an outbound call.
type Request struct {
	Endpoint string // 1 to 255 bytes
	Priority Priority
	Body     []byte // at most MaxMessageBytes; not modified
	// Stream, if not nil, is sent after Body with flow control, until EOF.
	Stream io.Reader
}

// Incoming is a request as its handler sees it.
type Incoming struct {
	Endpoint string
	Priority Priority
	Body     []byte // owned by the handler
	// Stream is nil when the caller sent none. It is valid only until the
	// handler returns: the transport then discards what is left.
	Stream io.Reader
}

// Response is the answer to a call.
type Response struct {
	// Body is at most MaxMessageBytes. A handler must not modify it after
	// returning: the transport sends it from there.
	Body []byte
	// Stream follows Body. For the caller it is non-nil when the handler
	// attached one, and must be read to EOF or closed. A handler sets it to
	// stream a response; the transport reads it to EOF and closes it (on
	// error too).
	Stream io.ReadCloser
}

// Handler serves inbound requests. Requests are served concurrently.
// ctx carries the caller's deadline and is cancelled when the caller
// cancels, when the deadline passes, when the connection closes, and when
// ServeRPC returns; it carries no values. A returned error reaches the
// caller as a *RemoteError with err.Error() as its message; a panic is
// recovered, logged, and reported as "internal error".
//
// ServeRPC may run on the connection's read loop, which saves a goroutine
// handoff per small call. It may still block as long as it likes: after
// a fraction of a millisecond another goroutine takes over reading (see
// inline.go), and the endpoint's later requests get their own goroutine.
type Handler interface {
	ServeRPC(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
	return f(ctx, from, req)
}

// RemoteError is a handler's error, or a remote stream failure, as seen by
// the caller.
type RemoteError struct {
	Peer     layout.NodeID
	Endpoint string
	Message  string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("rpc: %s on %s: %s", e.Endpoint, e.Peer.Short(), e.Message)
}

var (
	// ErrNotConnected: no established connection to the node.
	ErrNotConnected = errors.New("rpc: not connected")
	// ErrClosed: the transport or connection was closed locally.
	ErrClosed = errors.New("rpc: closed")
	// ErrHandshake: the peer is not the node asked for, lacks the cluster
	// secret, or does not speak the protocol.
	ErrHandshake = errors.New("rpc: handshake failed")
	// ErrConnLost: the connection broke (I/O error, EOF, protocol
	// violation).
	ErrConnLost = errors.New("rpc: connection lost")
	// ErrReplaced: the connection closed after losing deduplication to
	// another connection with the same peer.
	ErrReplaced = errors.New("rpc: connection replaced")
	// ErrRefused: the peer had too many concurrent streams; the request
	// was not processed and may be retried.
	ErrRefused = errors.New("rpc: stream refused")
	// ErrTooLarge: a body exceeds MaxMessageBytes.
	ErrTooLarge = errors.New("rpc: message too large")
)

// Config configures a Transport. Zero fields take their defaults.
type Config struct {
	Key     *ecdh.PrivateKey // this node's static X25519 key (required)
	Secret  [32]byte         // the cluster's rpc_secret (required, non-zero)
	Network Network          // nil = TCP
	Handler Handler          // nil answers every request with an error

	// OnConnect is called when a connection becomes established, in
	// either direction, and OnDisconnect once it has closed, for each
	// connection passed to OnConnect. Calls are made in order from a
	// single goroutine, holding no lock of the transport, so they may use
	// the transport but must not call Close. When deduplication replaces a
	// connection, the new one's OnConnect comes first; Conn(peer) then
	// returns it.
	OnConnect    func(c *Conn)
	OnDisconnect func(c *Conn, err error)

	HandshakeTimeout     time.Duration // default 10 s
	MaxPendingHandshakes int           // inbound handshakes at once, default 64; more are dropped
	MaxMessageBytes      int           // largest Body, default 16 MiB
	MaxStreams           int           // concurrent inbound streams per connection, default 256
	StreamWindowBytes    int           // receive window of each stream, default 256 KiB, min 64 KiB

	Logger *slog.Logger // nil discards
}

func (cfg *Config) ensureDefaults() error {
	if cfg.Key == nil || cfg.Key.Curve() != ecdh.X25519() {
		return errors.New("rpc: config: Key must be an X25519 key")
	}
	if cfg.Secret == [32]byte{} {
		return errors.New("rpc: config: Secret is zero")
	}
	if cfg.Network == nil {
		cfg.Network = TCP
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.MaxPendingHandshakes <= 0 {
		cfg.MaxPendingHandshakes = 64
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 16 << 20
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 256
	}
	if cfg.StreamWindowBytes <= 0 {
		cfg.StreamWindowBytes = 256 << 10
	}
	cfg.StreamWindowBytes = min(max(cfg.StreamWindowBytes, initialWindowBytes), maxWindowBytes)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
