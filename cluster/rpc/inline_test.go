package rpc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster/layout"
)

// TestInlineTakeover: a handler run inline by the read loop that waits for
// something only the read loop can deliver (another request on the same
// connection, the response to a nested call) does not deadlock: the
// monitor moves reading to a new goroutine.
func TestInlineTakeover(t *testing.T) {
	checkNoLeak(t)
	release := make(chan struct{})
	var a, b *node
	h := HandlerFunc(func(ctx context.Context, from layout.NodeID, req *Incoming) (*Response, error) {
		switch req.Endpoint {
		case "wait":
			select {
			case <-release:
				return &Response{Body: []byte("released")}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case "release":
			close(release)
			return &Response{}, nil
		case "nested":
			// Call back the caller over the same connection.
			self := b
			if from == b.ID() {
				self = a
			}
			resp, err := self.Call(ctx, from, &Request{Endpoint: "echo", Body: req.Body})
			if err != nil {
				return nil, err
			}
			return resp, nil
		}
		return echo.ServeRPC(ctx, from, req)
	})
	a = startNode(t, h, nil)
	b = startNode(t, h, nil)
	dial(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	waited := make(chan error, 1)
	go func() {
		resp, err := a.Call(ctx, b.ID(), &Request{Endpoint: "wait"})
		if err == nil && string(resp.Body) != "released" {
			err = errors.New("wrong body")
		}
		waited <- err
	}()
	time.Sleep(10 * time.Millisecond) // let "wait" start, inline
	if _, err := a.Call(ctx, b.ID(), &Request{Endpoint: "release"}); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if st := b.endpoints.get("wait"); st.backoff.Load() == 0 {
		t.Error("a taken over endpoint was not backed off")
	}

	waitFor(t, "b's conn", func() bool { return b.Conn(a.ID()) != nil })
	for i := range 20 {
		resp, err := a.Call(ctx, b.ID(), &Request{Endpoint: "nested", Body: []byte{byte(i)}})
		if err != nil || len(resp.Body) != 1 || resp.Body[0] != byte(i) {
			t.Fatalf("nested call %d: %v", i, err)
		}
	}
}
