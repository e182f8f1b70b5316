package rpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

func TestDeadlinePropagates(t *testing.T) {
	checkNoLeak(t)
	got := make(chan time.Time, 1)
	h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			got <- time.Time{}
		} else {
			got <- dl
		}
		if req.Endpoint == "block" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return &Response{}, nil
	})
	a := startNode(t, nil, nil)
	b := startNode(t, h, nil)
	dial(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	want, _ := ctx.Deadline()
	if _, err := a.Call(ctx, b.ID(), &Request{Endpoint: "x"}); err != nil {
		t.Fatal(err)
	}
	dl := <-got
	if dl.IsZero() || dl.After(want.Add(50*time.Millisecond)) || dl.Before(want.Add(-time.Second)) {
		t.Fatalf("handler deadline %v, caller's %v", dl, want)
	}
	// No deadline: none on the handler either.
	if _, err := a.Call(context.Background(), b.ID(), &Request{Endpoint: "x"}); err != nil {
		t.Fatal(err)
	}
	if dl := <-got; !dl.IsZero() {
		t.Fatalf("handler deadline %v without a caller deadline", dl)
	}
	// An expiring deadline ends both sides.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, err := a.Call(ctx2, b.ID(), &Request{Endpoint: "block"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("expired call: %v after %v", err, time.Since(start))
	}
	<-got
	waitFor(t, "handler to end", func() bool { return streams(b) == 0 })
}

func TestCancelPropagates(t *testing.T) {
	checkNoLeak(t)
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return nil, ctx.Err()
	})
	a := startNode(t, nil, nil)
	b := startNode(t, h, nil)
	dial(t, a, b)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := a.Call(ctx, b.ID(), &Request{Endpoint: "x", Body: []byte("y")})
		errc <- err
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Call = %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Call did not return after cancel")
	}
	select {
	case err := <-cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("handler ctx err %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler context not cancelled")
	}
	waitFor(t, "streams to end", func() bool { return streams(a) == 0 && streams(b) == 0 })
	// An already cancelled context fails at once.
	if _, err := a.Call(ctx, b.ID(), &Request{Endpoint: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled ctx: %v", err)
	}
}

// faultNetwork is TCP whose connections can all be cut at once.
type faultNetwork struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (n *faultNetwork) Listen(addr string) (net.Listener, error) { return TCP.Listen(addr) }

func (n *faultNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := TCP.Dial(ctx, addr)
	if err == nil {
		n.mu.Lock()
		n.conns = append(n.conns, c)
		n.mu.Unlock()
	}
	return c, err
}

func (n *faultNetwork) cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		c.Close()
	}
}

func TestConnLoss(t *testing.T) {
	checkNoLeak(t)
	var fn faultNetwork
	a := startNode(t, nil, func(c *Config) { c.Network = &fn })
	var handlerCtxDone atomic.Int32
	var started sync.WaitGroup
	started.Add(10)
	b := startNode(t, HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
		started.Done()
		<-ctx.Done()
		handlerCtxDone.Add(1)
		return nil, ctx.Err()
	}), nil)
	c := dial(t, a, b)
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := a.Call(context.Background(), b.ID(), &Request{Endpoint: "x"})
			errs <- err
		}()
	}
	started.Wait()
	fn.cut()
	for range 10 {
		if err := <-errs; !errors.Is(err, ErrConnLost) {
			t.Fatalf("pending call: %v, want ErrConnLost", err)
		}
	}
	<-c.Done()
	if !errors.Is(c.Err(), ErrConnLost) {
		t.Fatalf("Conn.Err = %v", c.Err())
	}
	waitFor(t, "handlers cancelled", func() bool { return handlerCtxDone.Load() == 10 })
	waitFor(t, "disconnect events", func() bool { return a.disconnects.Load() == 1 && b.disconnects.Load() == 1 })
	if a.Conn(b.ID()) != nil || len(b.Conns()) != 0 {
		t.Fatal("lost conn still registered")
	}
	if _, err := a.Call(context.Background(), b.ID(), &Request{Endpoint: "x"}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("call after loss: %v", err)
	}
	// Redial works.
	dial(t, a, b)
}

func TestConnClose(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, nil, nil)
	b := startNode(t, echo, nil)
	c := dial(t, a, b)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), &Request{Endpoint: "block"})
		errc <- err
	}()
	waitFor(t, "call to start", func() bool { return streams(b) == 1 })
	c.Close()
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending call after Close: %v", err)
	}
	if _, err := c.Call(context.Background(), &Request{Endpoint: "echo"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("call on closed conn: %v", err)
	}
	waitFor(t, "both sides to forget", func() bool { return len(a.Conns()) == 0 && len(b.Conns()) == 0 })
	if a.connects.Load() != 1 || b.connects.Load() != 1 {
		t.Fatalf("connects %d %d", a.connects.Load(), b.connects.Load())
	}
	waitFor(t, "disconnects", func() bool { return a.disconnects.Load() == 1 && b.disconnects.Load() == 1 })
}

func TestDialShared(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, nil, nil)
	b := startNode(t, echo, nil)
	var wg sync.WaitGroup
	conns := make([]*Conn, 10)
	for i := range conns {
		wg.Go(func() { conns[i] = dial(t, a, b) })
	}
	wg.Wait()
	for _, c := range conns {
		if c != conns[0] {
			t.Fatal("concurrent Dials returned different conns")
		}
	}
	if a.connects.Load() != 1 {
		t.Fatalf("%d connects", a.connects.Load())
	}
	if _, err := a.Dial(context.Background(), a.ID(), a.addr); err == nil {
		t.Fatal("dial self succeeded")
	}
}

// TestSimultaneousDial: two nodes dialing each other at once end with the
// same single connection, and calls started on either connection succeed.
func TestSimultaneousDial(t *testing.T) {
	checkNoLeak(t)
	dups := 0
	defer func() { t.Logf("%d of 20 rounds had two connections to deduplicate", dups) }()
	for round := range 20 {
		a := startNode(t, echo, nil)
		b := startNode(t, echo, nil)
		var wg sync.WaitGroup
		var ca, cb *Conn
		wg.Go(func() { ca = dial(t, a, b) })
		wg.Go(func() { cb = dial(t, b, a) })
		wg.Wait()
		// Calls on whatever Dial returned, while deduplication settles.
		var calls sync.WaitGroup
		for i := range 20 {
			calls.Go(func() {
				c, from := ca, "a"
				if i%2 == 1 {
					c, from = cb, "b"
				}
				resp, err := c.Call(context.Background(), &Request{Endpoint: "echo", Body: []byte(from)})
				if err != nil || string(resp.Body) != from {
					t.Errorf("round %d: call from %s: %v", round, from, err)
				}
			})
		}
		calls.Wait()
		waitFor(t, "one conn each", func() bool {
			return connCount(a) == 1 && connCount(b) == 1 && a.Conn(b.ID()) != nil && b.Conn(a.ID()) != nil
		})
		x, y := a.Conn(b.ID()), b.Conn(a.ID())
		if x.nc.LocalAddr().String() != y.RemoteAddr().String() || x.Inbound() == y.Inbound() {
			t.Fatalf("round %d: sides kept different connections", round)
		}
		// With two connections, both sides kept the one dialed by the
		// smaller ID. (A Dial finding the peer's connection already
		// established returns it and dials nothing.)
		if a.connects.Load() > 1 || b.connects.Load() > 1 {
			dups++
			small := a.ID()
			if b.ID().String() < a.ID().String() {
				small = b.ID()
			}
			if x.initiator() != small {
				t.Fatalf("round %d: kept the connection dialed by the larger ID", round)
			}
		}
		// Every OnConnect but the survivor's is matched by an OnDisconnect
		// (delivered asynchronously).
		waitFor(t, "events", func() bool {
			return a.connects.Load()-a.disconnects.Load() == 1 && b.connects.Load()-b.disconnects.Load() == 1
		})
		a.Close()
		b.Close()
	}
}

// connCount counts all connections of n, draining ones included.
func connCount(n *node) int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.mu.all)
}

func TestCloseTransport(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, nil)
	b := startNode(t, echo, nil)
	dial(t, a, b)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { a.Call(context.Background(), b.ID(), &Request{Endpoint: "block"}) })
		wg.Go(func() {
			resp, err := a.Call(context.Background(), b.ID(), &Request{Endpoint: "echo", Stream: &patternReader{n: 1 << 40}})
			if err == nil && resp.Stream != nil {
				resp.Stream.Close()
			}
		})
	}
	waitFor(t, "calls to run", func() bool { return streams(b) == 10 })
	a.Close()
	wg.Wait()
	a.Close() // twice is fine
	if _, err := a.Dial(context.Background(), b.ID(), b.addr); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
	waitFor(t, "b to notice", func() bool { return len(b.Conns()) == 0 })
}
