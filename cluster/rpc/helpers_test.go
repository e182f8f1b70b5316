package rpc

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

var testSecret = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}

type node struct {
	*Transport
	addr        string
	connects    atomic.Int32
	disconnects atomic.Int32
	serveErr    chan error
}

func testLogger(tb testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("RPC_DEBUG") != "" {
		level = slog.LevelDebug
	}
	if _, ok := tb.(*testing.B); ok {
		return nil
	}
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: level}))
}

// startNode starts a transport serving on a loopback port; Close runs at
// cleanup.
func startNode(tb testing.TB, h Handler, mod func(*Config)) *node {
	tb.Helper()
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	n := &node{serveErr: make(chan error, 1)}
	cfg := Config{
		Key:          key,
		Secret:       testSecret,
		Handler:      h,
		Logger:       testLogger(tb),
		OnConnect:    func(*Conn) { n.connects.Add(1) },
		OnDisconnect: func(*Conn, error) { n.disconnects.Add(1) },
	}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	n.Transport = tr
	network := cfg.Network
	if network == nil {
		network = TCP
	}
	ln, err := network.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	n.addr = ln.Addr().String()
	go func() { n.serveErr <- tr.Serve(ln) }()
	tb.Cleanup(func() {
		tr.Close()
		if err := <-n.serveErr; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return n
}

func dial(tb testing.TB, from, to *node) *Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := from.Dial(ctx, to.ID(), to.addr)
	if err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	return c
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// echo answers with the request body and, if there is one, the request
// stream's bytes as the response body.
var echo = HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
	switch req.Endpoint {
	case "echo":
		body := req.Body
		if req.Stream != nil {
			b, err := io.ReadAll(req.Stream)
			if err != nil {
				return nil, err
			}
			body = append(bytes.Clone(body), b...)
		}
		return &Response{Body: body}, nil
	case "fail":
		return nil, errors.New("boom: " + string(req.Body))
	case "panic":
		panic("handler panic")
	case "block":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, errors.New("no endpoint " + req.Endpoint)
})

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// checkNoLeak fails if goroutines stay above the count before the test.
func checkNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("%d goroutines after cleanup, %d before:\n%s", n, base, filterStacks(string(buf)))
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func filterStacks(s string) string {
	var out []string
	for _, g := range strings.Split(s, "\n\n") {
		if strings.Contains(g, "cluster/rpc") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// recordingNetwork is TCP, recording the bytes written by dialed conns.
type recordingNetwork struct {
	mu    sync.Mutex
	conns []*recordingConn
}

func (n *recordingNetwork) Listen(addr string) (net.Listener, error) { return TCP.Listen(addr) }

func (n *recordingNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := TCP.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c}
	n.mu.Lock()
	n.conns = append(n.conns, rc)
	n.mu.Unlock()
	return rc, nil
}

type recordingConn struct {
	net.Conn
	mu      sync.Mutex
	written []byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.written = append(c.written, p...)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.written)
}

func mustKey(tb testing.TB) *ecdh.PrivateKey {
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

func copyDiscard(r io.Reader) (int64, error) { return io.Copy(io.Discard, r) }
