package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func quorumTestCluster(t *testing.T) *Cluster {
	key, _ := GenerateNodeKey()
	c, err := New(Config{MetadataDir: t.TempDir(), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ids(n int) []NodeID {
	out := make([]NodeID, n)
	for i := range out {
		out[i][0] = byte(i + 1)
	}
	return out
}

func TestCallQuorum(t *testing.T) {
	c := quorumTestCluster(t)
	nodes := ids(3)
	fail := map[NodeID]bool{nodes[0]: true}
	var calls atomic.Int32
	call := func(ctx context.Context, to NodeID) (string, error) {
		calls.Add(1)
		if fail[to] {
			return "", fmt.Errorf("boom %d", to[0])
		}
		return "ok", nil
	}
	// Sequential: two needed, the first fails, the third is asked next.
	res, err := CallQuorum(context.Background(), c, nodes, QuorumOptions{Quorum: 2}, call)
	if err != nil || len(res) != 2 {
		t.Fatalf("CallQuorum = %v, %v", res, err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d calls, want 3", calls.Load())
	}
	// Two failures out of three: no quorum, a typed error with every cause.
	// It fails as soon as the two failures are in, whether or not the
	// success arrived first.
	fail[nodes[1]] = true
	_, err = CallQuorum(context.Background(), c, nodes, QuorumOptions{Quorum: 2, SendAll: true}, call)
	var qe *QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, ErrNoQuorum) || qe.Need != 2 || qe.Got > 1 || len(qe.Errs) != 2 {
		t.Fatalf("err = %#v", err)
	}
	var ne *NodeError
	if !errors.As(qe.Errs[0], &ne) {
		t.Fatalf("cause %v is not a NodeError", qe.Errs[0])
	}
	// Quorum 0 means all.
	if _, err := CallQuorum(context.Background(), c, nodes, QuorumOptions{}, call); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("all-nodes quorum with failures = %v", err)
	}
	// More than there are nodes.
	if _, err := CallQuorum(context.Background(), c, nodes, QuorumOptions{Quorum: 4}, call); !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("quorum 4 of 3 = %v", err)
	}
}

func TestCallQuorumReturnsAtQuorum(t *testing.T) {
	c := quorumTestCluster(t)
	nodes := ids(3)
	slow := nodes[2]
	release := make(chan struct{})
	finished := make(chan error, 1)
	call := func(ctx context.Context, to NodeID) (int, error) {
		if to == slow {
			select {
			case <-release:
				finished <- nil
				return 1, nil
			case <-ctx.Done():
				finished <- ctx.Err()
				return 0, ctx.Err()
			}
		}
		return 1, nil
	}
	// Background: the straggler keeps running after the caller returns.
	res, err := CallQuorum(context.Background(), c, nodes, QuorumOptions{Quorum: 2, SendAll: true, Background: true}, call)
	if err != nil || len(res) != 2 {
		t.Fatalf("CallQuorum = %v, %v", res, err)
	}
	close(release)
	if err := <-finished; err != nil {
		t.Fatalf("background call was cancelled: %v", err)
	}
	// Without Background, stragglers are cancelled.
	release = make(chan struct{})
	if _, err := CallQuorum(context.Background(), c, nodes, QuorumOptions{Quorum: 2, SendAll: true}, call); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-finished:
		if err == nil {
			t.Fatal("straggler not cancelled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("straggler never ended")
	}
}

func TestCallQuorumContext(t *testing.T) {
	c := quorumTestCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := CallQuorum(ctx, c, ids(2), QuorumOptions{Quorum: 1}, func(ctx context.Context, _ NodeID) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, ErrNoQuorum) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestPreferred(t *testing.T) {
	c := quorumTestCluster(t)
	nodes := ids(4)
	c.mu.Lock()
	for i, id := range nodes {
		p := c.learnPeerLocked(id, "x:1", false)
		p.up = i != 1
		p.rtt = time.Duration(10-i) * time.Millisecond
	}
	c.mu.Unlock()
	got := c.Preferred(append([]NodeID{nodes[1]}, append(nodes[:1:1], c.ID(), nodes[2], nodes[3])...))
	// self first, then the up nodes by RTT (3: 7ms, 2: 8ms, 0: 10ms), then the down one
	want := []NodeID{c.ID(), nodes[3], nodes[2], nodes[0], nodes[1]}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Preferred = %v, want %v", shorts(got), shorts(want))
		}
	}
}

func shorts(ids []NodeID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.Short()[:4])
	}
	return out
}
