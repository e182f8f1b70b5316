package rpc

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

// Benchmarks on loopback. The ratio of a small RPC to a plain TCP
// ping-pong of the same size, both from one run:
//
//	go test -run '^$' -bench '^BenchmarkRoundTrip$' -count 5 ./cluster/rpc/ |
//	  awk '$1~/RoundTrip\/rpc(-[0-9]+)?$/{r+=$3;nr++} $1~/RoundTrip\/tcp(-[0-9]+)?$/{t+=$3;nt++} END{printf "rpc/tcp = %.2f\n", (r/nr)/(t/nt)}'
//
// RoundTrip/tcp-handoff is the same ping-pong with a reader goroutine
// handing each reply to the caller, as any multiplexed connection must:
// the floor for this package on a given machine. RoundTrip/tcp-kick is
// the other way to share a socket between a reader and callers; it costs
// the same.
//
// Stream throughput: go test -run '^$' -bench '^BenchmarkStream1MiB$' ./cluster/rpc/

const roundTripSize = 64

func BenchmarkRoundTrip(b *testing.B) {
	b.Run("rpc", func(b *testing.B) {
		h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
			return &Response{Body: req.Body}, nil
		})
		x := startNode(b, nil, nil)
		y := startNode(b, h, nil)
		dial(b, x, y)
		req := &Request{Endpoint: "echo", Body: make([]byte, roundTripSize)}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := x.Call(ctx, y.ID(), req)
			if err != nil || len(resp.Body) != roundTripSize {
				b.Fatal(err)
			}
		}
	})
	b.Run("tcp", func(b *testing.B) { tcpPingPong(b, false) })
	b.Run("tcp-handoff", func(b *testing.B) { tcpPingPong(b, true) })
	b.Run("tcp-kick", tcpKick)
}

// startTCPEcho serves an echo of roundTripSize-byte messages on a
// loopback port until the benchmark ends, and returns its address.
func startTCPEcho(b *testing.B) string {
	ln, err := TCP.Listen("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go serveEcho(ln)
	return ln.Addr().String()
}

// serveEcho echoes roundTripSize-byte messages on every connection of ln
// until ln closes.
func serveEcho(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, roundTripSize)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

// tcpKick is the alternative to the handoff: a reader goroutine owns the
// socket between calls (it must, to read the peer's requests), and a
// caller takes the reader role by kicking it out of Read with a past read
// deadline, reads its own reply and gives the role back. It measures no
// faster than tcp-handoff: the kick and the give-back wake the reader as
// the handoff wakes the caller.
func tcpKick(b *testing.B) {
	c, err := TCP.Dial(context.Background(), startTCPEcho(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	yielded, replies := make(chan struct{}, 1), make(chan struct{}, 1)
	giveBack := make(chan struct{})
	go func() {
		buf := make([]byte, roundTripSize)
		for {
			_, err := io.ReadFull(c, buf)
			switch {
			case err == nil:
				replies <- struct{}{}
			case errors.Is(err, os.ErrDeadlineExceeded):
				yielded <- struct{}{}
				if _, ok := <-giveBack; !ok {
					return
				}
			default:
				return
			}
		}
	}()
	defer close(giveBack)
	buf := make([]byte, roundTripSize)
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Unix(1, 0))
		select {
		case <-replies: // the reader had it already
			<-yielded
			c.SetReadDeadline(time.Time{})
		case <-yielded:
			c.SetReadDeadline(time.Time{})
			select {
			case <-replies:
			default:
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		}
		giveBack <- struct{}{}
	}
}

func tcpPingPong(b *testing.B, handoff bool) {
	c, err := TCP.Dial(context.Background(), startTCPEcho(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, roundTripSize)
	var replies chan struct{}
	if handoff {
		replies = make(chan struct{}, 1)
		go func() {
			buf := make([]byte, roundTripSize)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				replies <- struct{}{}
			}
		}()
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if handoff {
			<-replies
		} else if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStream1MiB moves 1 MiB messages through one stream: "stream" is
// a single call whose Request.Stream yields b.N messages of 1 MiB; "body"
// is b.N sequential calls with a 1 MiB Body each.
func BenchmarkStream1MiB(b *testing.B) {
	const size = 1 << 20
	b.Run("stream", func(b *testing.B) {
		h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
			buf := make([]byte, size)
			var n int64
			for {
				k, err := io.ReadFull(req.Stream, buf)
				n += int64(k)
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					break
				}
				if err != nil {
					return nil, err
				}
			}
			return &Response{}, nil
		})
		x := startNode(b, nil, nil)
		y := startNode(b, h, nil)
		dial(b, x, y)
		b.SetBytes(size)
		b.ReportAllocs()
		b.ResetTimer()
		r := &messageReader{msg: make([]byte, size), left: b.N}
		if _, err := x.Call(context.Background(), y.ID(), &Request{Endpoint: "sink", Stream: r}); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("body", func(b *testing.B) {
		h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
			return &Response{}, nil
		})
		x := startNode(b, nil, nil)
		y := startNode(b, h, nil)
		dial(b, x, y)
		req := &Request{Endpoint: "sink", Body: make([]byte, size)}
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := x.Call(context.Background(), y.ID(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// messageReader yields left messages, one per Read when p is large enough,
// like a writer producing 1 MiB messages.
type messageReader struct {
	msg  []byte
	left int
	off  int
}

func (r *messageReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.msg[r.off:])
	r.off += n
	if r.off == len(r.msg) {
		r.off = 0
		r.left--
	}
	return n, nil
}
