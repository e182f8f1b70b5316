package rpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

// frameLog fills records from w until it is empty and returns the stream
// IDs of the frames, in order.
func frameLog(t *testing.T, w *writer) []uint64 {
	var ids []uint64
	for w.pending() {
		rec := w.fillRecord(make([]byte, 0, maxPlaintextLen), maxPlaintextLen)
		if len(rec) == 0 {
			t.Fatal("pending but nothing fits a record")
		}
		for len(rec) > 0 {
			h, _, rest, err := decodeFrame(rec)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, h.stream)
			rec = rest
		}
	}
	return ids
}

func newTestSender(id uint64, prio Priority, body int) *sender {
	s := &sender{}
	s.init(id, prio, frameRequest, false)
	h := requestHeader{Endpoint: "e", Priority: prio, BodyLen: body}
	s.setMessage(h.appendTo(nil), make([]byte, body), false)
	return s
}

func TestSchedulerOrder(t *testing.T) {
	var w writer
	// Two large Background bodies queued first, then an Interactive call.
	bg1 := newTestSender(1, Background, 4*maxFramePayload)
	bg2 := newTestSender(3, Background, 4*maxFramePayload)
	w.enqueueLocked(bg1)
	w.enqueueLocked(bg2)
	// One record's worth goes out, then the Interactive call arrives.
	first := w.fillRecord(nil, maxPlaintextLen)
	if len(first) == 0 {
		t.Fatal("nothing written")
	}
	ia := newTestSender(5, Interactive, 100)
	w.enqueueLocked(ia)
	nm := newTestSender(7, Normal, 100)
	w.enqueueLocked(nm)
	ids := frameLog(t, &w)
	// The Interactive call's two frames come first, then Normal, then the
	// Background streams alternate frame by frame.
	want := []uint64{5, 5, 7, 7}
	for i, id := range want {
		if ids[i] != id {
			t.Fatalf("frame order %v, want prefix %v", ids, want)
		}
	}
	rest := ids[len(want):]
	for i := 1; i < len(rest)-1; i++ {
		if rest[i] == rest[i-1] && rest[i] == rest[i+1] {
			t.Fatalf("no round robin between Background streams: %v", rest)
		}
	}
	if !bg1.finished || !bg2.finished || !ia.finished || !nm.finished {
		t.Fatal("a sender did not finish")
	}
}

// pipeNetwork connects nodes by net.Pipe: no sockets, usable in synctest.
type pipeNetwork struct {
	mu  sync.Mutex
	lns map[string]*pipeListener
}

type pipeListener struct {
	addr   string
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (n *pipeNetwork) Listen(addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lns == nil {
		n.lns = make(map[string]*pipeListener)
	}
	l := &pipeListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
	n.lns[addr] = l
	return l, nil
}

func (n *pipeNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	n.mu.Lock()
	l := n.lns[addr]
	n.mu.Unlock()
	if l == nil {
		return nil, errors.New("connection refused")
	}
	c1, c2 := net.Pipe()
	select {
	case l.conns <- c2:
		return c1, nil
	case <-l.closed:
		return nil, errors.New("connection refused")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr(l.addr) }

type pipeAddr string

func (a pipeAddr) Network() string { return "pipe" }
func (a pipeAddr) String() string  { return string(a) }

// TestSynctestPipe runs calls, a deadline and a stream over net.Pipe in a
// synctest bubble, as the layer above's deterministic simulation will.
func TestSynctestPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var pn pipeNetwork
		h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
			if req.Endpoint == "slow" {
				select {
				case <-time.After(time.Hour):
				case <-ctx.Done():
					time.Sleep(time.Millisecond) // let the caller's deadline win
					return nil, ctx.Err()
				}
			}
			if req.Stream != nil {
				return &Response{Body: req.Body, Stream: &patternReader{n: 1 << 20}}, nil
			}
			return &Response{Body: req.Body}, nil
		})
		var nodes []*Transport
		for _, addr := range []string{"a", "b"} {
			key := mustKey(t)
			tr, err := New(Config{Key: key, Secret: testSecret, Network: &pn, Handler: h})
			if err != nil {
				t.Fatal(err)
			}
			ln, _ := pn.Listen(addr)
			done := make(chan struct{})
			go func() { tr.Serve(ln); close(done) }()
			defer func() { tr.Close(); <-done }()
			nodes = append(nodes, tr)
		}
		a, b := nodes[0], nodes[1]
		ctx := context.Background()
		if _, err := a.Dial(ctx, b.ID(), "b"); err != nil {
			t.Fatal(err)
		}
		resp, err := a.Call(ctx, b.ID(), &Request{Endpoint: "echo", Body: []byte("hi"), Stream: &patternReader{n: 1 << 20}})
		if err != nil || string(resp.Body) != "hi" {
			t.Fatalf("call: %v", err)
		}
		n, _ := copyDiscard(resp.Stream)
		resp.Stream.Close()
		if n != 1<<20 {
			t.Fatalf("stream of %d bytes", n)
		}
		start := time.Now()
		ctx2, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if _, err := a.Call(ctx2, b.ID(), &Request{Endpoint: "slow"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow call: %v", err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Fatalf("deadline after %v of fake time", d)
		}
	})
}
