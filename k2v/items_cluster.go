package k2v

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/grangeio/grange/cluster"
)

// K2V over the cluster. An insert is stamped by a replica of its partition
// (this node when it is one, so that an insert costs one round trip to the
// nearest other replica), which then replicates the resulting item; polls
// wait on the replicas of the read version and merge a read quorum of
// answers.

const (
	epInsert    = "k2v/insert"
	epPollItem  = "k2v/poll_item"
	epPollRange = "k2v/poll_range"
)

// pollSlack is added to a poll's timeout for the replicas' answers to
// arrive after their own timeout fired.
const pollSlack = 5 * time.Second

func (s *Items) registerHandlers() {
	c := s.rep.c
	c.Handle(epInsert, cluster.HandlerFunc(func(ctx context.Context, _ cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
		bucket, writes, err := decodeWrites(req.Body)
		if err != nil {
			return nil, err
		}
		return nil, s.insertHere(ctx, bucket, writes)
	}))
	c.Handle(epPollItem, cluster.HandlerFunc(func(ctx context.Context, _ cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
		r := &reader{b: req.Body}
		var bucket BucketID
		copy(bucket[:], r.fixed(32))
		pk, sk := r.string(), r.string()
		token := r.clock()
		timeout := time.Duration(r.uvarint()) * time.Millisecond
		if err := r.done(); err != nil {
			return nil, err
		}
		it, changed, err := s.pollItemHere(ctx, bucket, pk, sk, token, timeout)
		if err != nil {
			return nil, err
		}
		var out []byte
		if changed {
			out = encodeOptional(it.AppendBinary(nil))
		} else {
			out = encodeOptional(nil)
		}
		return &cluster.Response{Body: out}, nil
	}))
	c.Handle(epPollRange, cluster.HandlerFunc(func(ctx context.Context, _ cluster.NodeID, req *cluster.Incoming) (*cluster.Response, error) {
		r := &reader{b: req.Body}
		var bucket BucketID
		copy(bucket[:], r.fixed(32))
		pk := r.string()
		var pr PollRange
		pr.Prefix, pr.Start, pr.End = r.optString(), r.optString(), r.optString()
		var marker *SeenMarker
		if ms := r.string(); ms != "" {
			m, err := ParseSeenMarker(ms)
			if err != nil {
				return nil, err
			}
			marker = m
		}
		timeout := time.Duration(r.uvarint()) * time.Millisecond
		if err := r.done(); err != nil {
			return nil, err
		}
		items, complete, changed, err := s.pollRangeHere(ctx, bucket, pk, pr, marker, timeout)
		if err != nil {
			return nil, err
		}
		out := appendBool(nil, changed)
		out = appendBool(out, complete)
		out = binary.AppendUvarint(out, uint64(len(items)))
		for _, it := range items {
			out = appendBytes(out, it.AppendBinary(nil))
		}
		return &cluster.Response{Body: out}, nil
	}))
}

func appendOptString(dst []byte, s *string) []byte {
	if s == nil {
		return append(dst, 0)
	}
	return appendString(append(dst, 1), *s)
}

func (r *reader) optString() *string {
	if !r.bool() {
		return nil
	}
	s := r.string()
	return &s
}

func encodeWrites(bucket BucketID, writes []Write) []byte {
	out := append([]byte(nil), bucket[:]...)
	out = binary.AppendUvarint(out, uint64(len(writes)))
	for _, w := range writes {
		out = appendString(out, w.Partition)
		out = appendString(out, w.Sort)
		out = appendClock(out, w.Context)
		out = appendBool(out, w.Value.Tombstone)
		out = appendBytes(out, w.Value.Data)
	}
	return out
}

func decodeWrites(b []byte) (BucketID, []Write, error) {
	r := &reader{b: b}
	var bucket BucketID
	copy(bucket[:], r.fixed(32))
	writes := make([]Write, r.count(5))
	for i := range writes {
		w := &writes[i]
		w.Partition, w.Sort = r.string(), r.string()
		w.Context = r.clock()
		w.Value.Tombstone = r.bool()
		w.Value.Data = r.bytes()
		if r.err == nil {
			if err := checkKeys(w.Partition, w.Sort); err != nil {
				return bucket, nil, err
			}
		}
	}
	return bucket, writes, r.done()
}

// insertCluster sends each partition key's writes to a replica of it: this
// node when it is one, else the closest.
func (s *Items) insertCluster(ctx context.Context, bucket BucketID, writes []Write) error {
	byNode := map[cluster.NodeID][]Write{}
	var order []cluster.NodeID
	for _, w := range writes {
		to, err := s.ritems.PreferredReplica(itemPartitionKey(bucket, w.Partition))
		if err != nil {
			return err
		}
		if _, ok := byNode[to]; !ok {
			order = append(order, to)
		}
		byNode[to] = append(byNode[to], w)
	}
	self := s.rep.c.ID()
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, to := range order {
		ws := byNode[to]
		wg.Go(func() {
			if to == self {
				errs[i] = s.insertHere(ctx, bucket, ws)
				return
			}
			cctx, cancel := context.WithTimeout(ctx, s.rep.cfg.RequestTimeout)
			defer cancel()
			_, err := s.rep.c.Call(cctx, to, &cluster.Request{Endpoint: epInsert, Priority: cluster.PrioInteractive, Body: encodeWrites(bucket, ws)})
			if err != nil {
				errs[i] = fmt.Errorf("insert through node %s: %w", to.Short(), err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// pollItemCluster polls every replica of the read version and returns once
// a read quorum answered: the merge of the newer items, if any.
func (s *Items) pollItemCluster(ctx context.Context, bucket BucketID, pk, sk string, token Clock, timeout time.Duration) (*Item, bool, error) {
	pkey := itemPartitionKey(bucket, pk)
	nodes, err := s.ritems.readSet(s.rep.c.HistoryView(), cluster.PartitionOf(Hash(pkey)))
	if err != nil {
		return nil, false, err
	}
	body := append([]byte(nil), bucket[:]...)
	body = appendString(body, pk)
	body = appendString(body, sk)
	body = appendClock(body, token)
	body = binary.AppendUvarint(body, uint64(timeout.Milliseconds()))
	self := s.rep.c.ID()
	res, err := cluster.CallQuorum(ctx, s.rep.c, nodes, cluster.QuorumOptions{Quorum: s.ritems.readQuorum(len(nodes)), SendAll: true},
		func(ctx context.Context, to cluster.NodeID) (*Item, error) {
			if to == self {
				it, changed, err := s.pollItemHere(ctx, bucket, pk, sk, token, timeout)
				if !changed {
					it = nil
				}
				return it, err
			}
			cctx, cancel := context.WithTimeout(ctx, timeout+pollSlack)
			defer cancel()
			resp, err := s.rep.c.Call(cctx, to, &cluster.Request{Endpoint: epPollItem, Priority: cluster.PrioInteractive, Body: body})
			if err != nil {
				return nil, err
			}
			v, err := decodeOptional(resp.Body)
			if err != nil || v == nil {
				return nil, err
			}
			return DecodeItem(v)
		})
	if err != nil {
		return nil, false, fmt.Errorf("poll item: %w", err)
	}
	var merged *Item
	for _, r := range res {
		switch {
		case r.Value == nil:
		case merged == nil:
			merged = r.Value
		default:
			merged.Merge(r.Value)
		}
	}
	return merged, merged != nil, nil
}

// pollRangeCluster polls every replica of the read version and merges a
// read quorum of answers. The marker's clock advances, for each replica
// that answered completely, only over that replica's own writes: it holds
// all of them, having stamped them.
func (s *Items) pollRangeCluster(ctx context.Context, bucket BucketID, pk string, pr PollRange, marker *SeenMarker, timeout time.Duration) ([]*Item, *SeenMarker, bool, error) {
	pkey := itemPartitionKey(bucket, pk)
	nodes, err := s.ritems.readSet(s.rep.c.HistoryView(), cluster.PartitionOf(Hash(pkey)))
	if err != nil {
		return nil, nil, false, err
	}
	body := append([]byte(nil), bucket[:]...)
	body = appendString(body, pk)
	body = appendOptString(body, pr.Prefix)
	body = appendOptString(body, pr.Start)
	body = appendOptString(body, pr.End)
	ms := ""
	if marker != nil {
		ms = marker.Encode()
	}
	body = appendString(body, ms)
	body = binary.AppendUvarint(body, uint64(timeout.Milliseconds()))
	type answer struct {
		items             []*Item
		complete, changed bool
	}
	self := s.rep.c.ID()
	res, err := cluster.CallQuorum(ctx, s.rep.c, nodes, cluster.QuorumOptions{Quorum: s.ritems.readQuorum(len(nodes)), SendAll: true},
		func(ctx context.Context, to cluster.NodeID) (answer, error) {
			if to == self {
				items, complete, changed, err := s.pollRangeHere(ctx, bucket, pk, pr, marker, timeout)
				return answer{items, complete, changed}, err
			}
			cctx, cancel := context.WithTimeout(ctx, timeout+pollSlack)
			defer cancel()
			resp, err := s.rep.c.Call(cctx, to, &cluster.Request{Endpoint: epPollRange, Priority: cluster.PrioInteractive, Body: body})
			if err != nil {
				return answer{}, err
			}
			r := &reader{b: resp.Body}
			a := answer{changed: r.bool(), complete: r.bool()}
			n := r.count(1)
			for range n {
				it, err := DecodeItem(r.bytes())
				if err != nil {
					return answer{}, err
				}
				a.items = append(a.items, it)
			}
			return a, r.done()
		})
	if err != nil {
		return nil, nil, false, fmt.Errorf("poll range: %w", err)
	}
	next := &SeenMarker{}
	if marker != nil {
		next.Clock, next.Items = marker.Clock, marker.Items
	}
	merged := map[string]*Item{}
	changed := false
	for _, r := range res {
		if !r.Value.changed {
			continue
		}
		changed = true
		for _, it := range r.Value.items {
			if m := merged[it.Sort]; m != nil {
				m.Merge(it)
			} else {
				merged[it.Sort] = it
			}
		}
	}
	if !changed {
		return nil, nil, false, nil
	}
	items := make([]*Item, 0, len(merged))
	for _, it := range merged {
		items = append(items, it)
	}
	sortItems(items)
	truncated := len(items) > MaxPageItems
	if truncated {
		items = items[:MaxPageItems]
	}
	for _, r := range res {
		if r.Value.changed {
			next.markSeen(r.From.Uint64(), r.Value.items, r.Value.complete && !truncated)
		}
	}
	next.markSeen(0, items, false)
	next.restrict(pr)
	return items, next, true, nil
}
