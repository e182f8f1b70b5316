package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNoQuorum is wrapped by every QuorumError.
var ErrNoQuorum = errors.New("cluster: quorum not reached")

// QuorumError reports a quorum call that did not gather enough successes:
// Need were required, Got succeeded, and Errs holds every failure (each a
// *NodeError naming its node).
type QuorumError struct {
	Need, Got int
	Errs      []error
}

func (e *QuorumError) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "cluster: quorum not reached: %d of %d needed answers", e.Got, e.Need)
	for i, err := range e.Errs {
		if i == 0 {
			sb.WriteString(": ")
		} else {
			sb.WriteString("; ")
		}
		sb.WriteString(err.Error())
	}
	return sb.String()
}

// Unwrap returns ErrNoQuorum and every cause, so that errors.Is finds both.
func (e *QuorumError) Unwrap() []error { return append([]error{ErrNoQuorum}, e.Errs...) }

// NodeError is the failure of a call to one node.
type NodeError struct {
	Node NodeID
	Err  error
}

func (e *NodeError) Error() string { return "node " + e.Node.Short() + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// QuorumOptions configures a quorum call.
type QuorumOptions struct {
	// Quorum is the number of successes needed; 0 means every node.
	Quorum int
	// SendAll sends to every node at once. Otherwise the call goes to the
	// Quorum most preferred nodes first, and to the next one after each
	// failure.
	SendAll bool
	// Background, with SendAll, lets the calls still running when the
	// quorum is reached finish on their own (bounded by BackgroundTimeout,
	// default 30 s) instead of cancelling them: writes reach every replica
	// that is up, while the caller returns at quorum.
	Background        bool
	BackgroundTimeout time.Duration
}

// Result is one successful answer of a quorum call.
type Result[T any] struct {
	From  NodeID
	Value T
}

// CallQuorum runs call against the nodes, most preferred first (see
// Preferred), and returns the first opts.Quorum successes in the order
// they arrived. It fails with a *QuorumError as soon as the quorum can no
// longer be reached, or when ctx ends.
func CallQuorum[T any](ctx context.Context, c *Cluster, nodes []NodeID, opts QuorumOptions, call func(ctx context.Context, to NodeID) (T, error)) ([]Result[T], error) {
	need := opts.Quorum
	if need == 0 {
		need = len(nodes)
	}
	if need > len(nodes) {
		return nil, &QuorumError{Need: need, Errs: []error{fmt.Errorf("only %d nodes to ask", len(nodes))}}
	}
	order := c.Preferred(nodes)

	callCtx, cancel := context.WithCancel(ctx)
	if opts.SendAll && opts.Background {
		bt := opts.BackgroundTimeout
		if bt == 0 {
			bt = 30 * time.Second
		}
		// Detached from the caller so that stragglers finish after we
		// return, but bounded.
		callCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), bt)
	}
	type answer struct {
		from NodeID
		v    T
		err  error
	}
	answers := make(chan answer, len(order))
	launch := func(to NodeID) {
		go func() {
			v, err := call(callCtx, to)
			answers <- answer{to, v, err}
		}()
	}
	next := need
	if opts.SendAll {
		next = len(order)
	}
	// The calls to other nodes go first, each on its goroutine; the call
	// to this node, a local read or write, then runs on this one: it
	// overlaps the network round trips without a goroutine hand-off.
	// (Not with SendAll: its calls may wait long, as polls do, and the
	// quorum must not wait for this node's.)
	self := -1
	for i, to := range order[:next] {
		if to == c.id && !opts.SendAll {
			self = i
			continue
		}
		launch(to)
	}
	if self >= 0 {
		v, err := call(callCtx, c.id)
		answers <- answer{c.id, v, err}
	}
	inflight := next
	var ok []Result[T]
	var errs []error
	for len(ok) < need {
		if len(ok)+inflight+(len(order)-next) < need {
			cancel()
			return nil, &QuorumError{Need: need, Got: len(ok), Errs: errs}
		}
		select {
		case a := <-answers:
			inflight--
			if a.err != nil {
				errs = append(errs, &NodeError{Node: a.from, Err: a.err})
				if next < len(order) {
					launch(order[next])
					next++
					inflight++
				}
				continue
			}
			ok = append(ok, Result[T]{From: a.from, Value: a.v})
		case <-ctx.Done():
			cancel()
			return nil, &QuorumError{Need: need, Got: len(ok), Errs: append(errs, ctx.Err())}
		}
	}
	if opts.SendAll && opts.Background && inflight > 0 {
		// cancel once the stragglers are done
		go func() {
			for range inflight {
				<-answers
			}
			cancel()
		}()
	} else {
		cancel()
	}
	return ok, nil
}

// Preferred orders nodes for a read or a write: this node first, then
// nodes that are up before nodes that are down, then nodes of this node's
// zone, then by lowest round-trip time, then by ID. It returns a new slice.
func (c *Cluster) Preferred(nodes []NodeID) []NodeID {
	out := slices.Clone(nodes)
	l := c.Layout()
	myZone := l.Roles[c.id].Zone
	type key struct {
		self, down, otherZone bool
		rtt                   time.Duration
	}
	keys := make(map[NodeID]key, len(out))
	c.mu.Lock()
	for _, id := range out {
		k := key{self: id == c.id}
		if !k.self {
			p := c.mu.peers[id]
			k.down = p == nil || !p.up
			if p != nil {
				k.rtt = p.rtt
			}
			if k.rtt == 0 {
				k.rtt = time.Hour // unmeasured: after the measured ones
			}
		}
		r, ok := l.Roles[id]
		k.otherZone = !ok || r.Zone != myZone
		keys[id] = k
	}
	c.mu.Unlock()
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(out, func(a, b NodeID) int {
		ka, kb := keys[a], keys[b]
		if ka.self != kb.self {
			return b2i(kb.self) - b2i(ka.self)
		}
		if ka.down != kb.down {
			return b2i(ka.down) - b2i(kb.down)
		}
		if ka.otherZone != kb.otherZone {
			return b2i(ka.otherZone) - b2i(kb.otherZone)
		}
		if ka.rtt != kb.rtt {
			return cmp.Compare(ka.rtt, kb.rtt)
		}
		return strings.Compare(string(a[:]), string(b[:]))
	})
	return out
}

// CallSets runs call once on every node of the union of sets, all at once,
// and returns when every set i has had quorums[i] successes among its
// nodes: the write of an entry to the replica sets of every active layout
// version. A node that belongs to several sets is called once and counts
// in each. done lists nodes that already succeeded without a call (this
// node, after a local write). It fails with a *QuorumError, naming the
// first set that can no longer reach its quorum, as soon as that is
// certain or when ctx ends. The calls still running when CallSets returns
// go on in the background (bounded by opts.BackgroundTimeout, default
// 30 s) so that writes reach every replica that is up; late reports each
// of their outcomes (nil is fine).
func CallSets(ctx context.Context, c *Cluster, sets [][]NodeID, quorums []int, done []NodeID, opts QuorumOptions, call func(ctx context.Context, to NodeID) error, late func(to NodeID, err error)) error {
	ok := map[NodeID]bool{}
	for _, id := range done {
		ok[id] = true
	}
	var union []NodeID
	seen := map[NodeID]bool{}
	for _, set := range sets {
		for _, id := range set {
			if !seen[id] && !ok[id] {
				seen[id] = true
				union = append(union, id)
			}
		}
	}
	failed := map[NodeID]bool{}
	var errs []error
	// reached reports whether every set has its quorum; possible whether
	// every set still can.
	check := func() (reached, possible bool) {
		reached, possible = true, true
		for i, set := range sets {
			got, open := 0, 0
			for _, id := range set {
				switch {
				case ok[id]:
					got++
				case !failed[id]:
					open++
				}
			}
			if got < quorums[i] {
				reached = false
			}
			if got+open < quorums[i] {
				possible = false
			}
		}
		return reached, possible
	}
	quorumErr := func(extra error) error {
		need, got := 0, 0
		for i, set := range sets {
			g := 0
			for _, id := range set {
				if ok[id] {
					g++
				}
			}
			if g < quorums[i] {
				need, got = quorums[i], g
				break
			}
		}
		if extra != nil {
			errs = append(errs, extra)
		}
		return &QuorumError{Need: need, Got: got, Errs: errs}
	}
	if reached, possible := check(); reached || !possible {
		if !reached {
			return quorumErr(nil)
		}
		if len(union) == 0 {
			return nil
		}
	}
	bt := opts.BackgroundTimeout
	if bt == 0 {
		bt = 30 * time.Second
	}
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bt)
	type answer struct {
		from NodeID
		err  error
	}
	answers := make(chan answer, len(union))
	hasSelf := false
	for _, to := range c.Preferred(union) {
		if to == c.id {
			hasSelf = true
			continue
		}
		go func() { answers <- answer{to, call(callCtx, to)} }()
	}
	if hasSelf {
		answers <- answer{c.id, call(callCtx, c.id)} // local: no hand-off
	}
	pending := len(union)
	finish := func() {
		// the stragglers finish in the background
		go func() {
			for range pending {
				a := <-answers
				if late != nil {
					late(a.from, a.err)
				}
			}
			cancel()
		}()
	}
	for {
		if reached, possible := check(); reached || !possible {
			finish()
			if reached {
				return nil
			}
			return quorumErr(nil)
		}
		select {
		case a := <-answers:
			pending--
			if a.err != nil {
				failed[a.from] = true
				errs = append(errs, &NodeError{Node: a.from, Err: a.err})
				if late != nil {
					late(a.from, a.err)
				}
				continue
			}
			ok[a.from] = true
		case <-ctx.Done():
			finish()
			return quorumErr(ctx.Err())
		}
	}
}
