package k2v

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"strconv"
)

// errEmptyNextStart stops ListPartitions when the next page would start
// at the empty partition key: an empty query parameter is ignored by the
// server, so that page cannot be requested.
var errEmptyNextStart = errors.New("k2v: cannot continue a partition listing at the empty partition key")

// ReadIndex lists the partition keys of the bucket that hold non-deleted
// items, with their counters (ReadIndex, k2v-api.md §7):
// GET /<bucket>?prefix=&start=&end=&limit=&reverse=. The counters are
// eventually consistent. A result with More set is one page: see
// ListPartitions to follow the pages. opts may be nil.
func (c *Client) ReadIndex(ctx context.Context, opts *ReadIndexOptions) (*ReadIndexResult, error) {
	var o ReadIndexOptions
	if opts != nil {
		o = *opts
	}
	if err := checkRange(o.Prefix, o.Start, o.End); err != nil {
		return nil, err
	}
	if err := checkLimit(o.Limit); err != nil {
		return nil, err
	}
	return c.readIndex(ctx, &o)
}

func (c *Client) readIndex(ctx context.Context, o *ReadIndexOptions) (*ReadIndexResult, error) {
	q := newQuery().add("prefix", o.Prefix).add("start", o.Start).add("end", o.End)
	if o.Limit > 0 {
		q = q.add("limit", strconv.Itoa(o.Limit))
	}
	if o.Reverse {
		q = q.add("reverse", "true")
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, query: q, accept: mimeJSON})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.fail(resp)
	}
	res := &ReadIndexResult{}
	if err := decodeJSON(resp, res); err != nil {
		return nil, err
	}
	return res, nil
}

// ListOptions selects the partitions of ListPartitions. Empty strings mean
// "absent".
type ListOptions struct {
	Prefix  string
	Start   string
	End     string
	Reverse bool
	// PageSize is the limit of each ReadIndex request; 0 lets the server
	// choose (it may cap pages anyway). It does not bound the total.
	PageSize int
}

// ListPartitions lists the partitions of the bucket, one ReadIndex request
// per page, following more/nextStart until the listing is exhausted.
//
// An error is yielded once, as the last element. Stop early by breaking
// out of the loop.
func (c *Client) ListPartitions(ctx context.Context, opts *ListOptions) iter.Seq2[PartitionInfo, error] {
	var lo ListOptions
	if opts != nil {
		lo = *opts
	}
	o := ReadIndexOptions{Prefix: lo.Prefix, Start: lo.Start, End: lo.End, Limit: lo.PageSize, Reverse: lo.Reverse}
	return func(yield func(PartitionInfo, error) bool) {
		if err := checkRange(o.Prefix, o.Start, o.End); err != nil {
			yield(PartitionInfo{}, err)
			return
		}
		if err := checkLimit(o.Limit); err != nil {
			yield(PartitionInfo{}, err)
			return
		}
		o := o
		for {
			res, err := c.readIndex(ctx, &o)
			if err != nil {
				yield(PartitionInfo{}, err)
				return
			}
			for _, p := range res.PartitionKeys {
				if !yield(p, nil) {
					return
				}
			}
			if !res.More {
				return
			}
			switch {
			case res.NextStart == "":
				yield(PartitionInfo{}, errEmptyNextStart)
				return
			case len(res.PartitionKeys) == 0 && res.NextStart == o.Start:
				yield(PartitionInfo{}, errNoProgress)
				return
			}
			o.Start = res.NextStart
		}
	}
}
