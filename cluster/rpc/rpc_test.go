package rpc

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestCall(t *testing.T) {
	checkNoLeak(t)
	a := startNode(t, echo, nil)
	b := startNode(t, echo, nil)
	c := dial(t, a, b)
	if c.Peer() != b.ID() || c.Inbound() {
		t.Fatalf("conn peer %v inbound %v", c.Peer(), c.Inbound())
	}
	ctx := context.Background()
	for _, size := range []int{0, 1, 64, 70000, 1 << 20} {
		body := randBytes(size)
		resp, err := a.Call(ctx, b.ID(), &Request{Endpoint: "echo", Body: body})
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if !bytes.Equal(resp.Body, body) {
			t.Fatalf("size %d: echo differs", size)
		}
	}
	// And the other way, on the same connection.
	waitFor(t, "b's conn", func() bool { return b.Conn(a.ID()) != nil })
	resp, err := b.Call(ctx, a.ID(), &Request{Endpoint: "echo", Body: []byte("hi")})
	if err != nil || string(resp.Body) != "hi" {
		t.Fatalf("reverse call: %v %q", err, resp)
	}
	_, err = a.Call(ctx, b.ID(), &Request{Endpoint: "fail", Body: []byte("x")})
	var re *RemoteError
	if !errors.As(err, &re) || re.Message != "boom: x" || re.Peer != b.ID() || re.Endpoint != "fail" {
		t.Fatalf("fail: %v", err)
	}
	_, err = a.Call(ctx, b.ID(), &Request{Endpoint: "panic"})
	if !errors.As(err, &re) {
		t.Fatalf("panic: %v", err)
	}
}
