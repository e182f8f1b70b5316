package k2v

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
)

// errNoProgress stops an iterator when the server reports more results
// but neither returns any nor moves its start: following it would loop.
var errNoProgress = errors.New("k2v: listing makes no progress (more is true but nextStart does not advance)")

// InsertBatch applies several writes (InsertBatch, k2v-api.md §8.1):
// POST /<bucket> with a JSON array. Items may target different partitions.
// It is not a transaction: on error, some writes may have been applied.
func (c *Client) InsertBatch(ctx context.Context, ops []InsertOp) error {
	for i := range ops {
		if err := checkKey("partition key", ops[i].PartitionKey, false); err != nil {
			return err
		}
		if err := checkKey("sort key", ops[i].SortKey, false); err != nil {
			return err
		}
	}
	resp, err := c.do(ctx, &request{
		method:      http.MethodPost,
		body:        appendInsertOps(nil, ops),
		hasBody:     true,
		contentType: mimeJSON,
	})
	if err != nil {
		return err
	}
	return c.expectNoContent(resp)
}

func checkRange(prefix, start, end string) error {
	for _, s := range [...]string{prefix, start, end} {
		if err := checkKey("range bound", s, false); err != nil {
			return err
		}
	}
	return nil
}

func checkSearch(s *Search) error {
	if err := checkKey("partition key", s.PartitionKey, false); err != nil {
		return err
	}
	if err := checkRange(s.Prefix, s.Start, s.End); err != nil {
		return err
	}
	return checkLimit(s.Limit)
}

// ReadBatch runs several searches (ReadBatch, k2v-api.md §8.2):
// POST /<bucket>?search. It returns one result per search, in order; Items
// carry the search's partition key. A result with More set is one page:
// see Scan to follow the pages.
func (c *Client) ReadBatch(ctx context.Context, searches []Search) ([]SearchResult, error) {
	body := []byte{'['}
	pks := make([]string, len(searches))
	for i := range searches {
		if err := checkSearch(&searches[i]); err != nil {
			return nil, err
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = appendSearch(body, &searches[i], false)
		pks[i] = searches[i].PartitionKey
	}
	return c.readBatch(ctx, append(body, ']'), pks)
}

// readBatch sends a ReadBatch body holding one search per entry of pks.
func (c *Client) readBatch(ctx context.Context, body []byte, pks []string) ([]SearchResult, error) {
	res, err := postSearches[SearchResult](ctx, c, "search", body, len(pks))
	if err != nil {
		return nil, err
	}
	for i := range res {
		for j := range res[i].Items {
			res[i].Items[j].PartitionKey = pks[i]
		}
	}
	return res, nil
}

// ScanOptions selects the items of a Scan (range rules in k2v-api.md §10).
// Empty strings mean "absent".
type ScanOptions struct {
	Prefix string
	Start  string
	End    string
	// Reverse lists in descending order; Start is then the highest key.
	Reverse bool
	// ConflictsOnly keeps only items with two or more values.
	ConflictsOnly bool
	// Tombstones also returns deleted items.
	Tombstones bool
	// PageSize is the limit of each ReadBatch request; 0 lets the server
	// choose (it may cap pages anyway). It does not bound the total.
	PageSize int
}

// Scan lists the items of a partition range, one ReadBatch request per
// page, following more/nextStart until the range is exhausted. The server
// may cut pages short even without PageSize, so pages are always followed.
//
// An error is yielded once, as the last element. Stop early by breaking
// out of the loop; no request is sent after that.
func (c *Client) Scan(ctx context.Context, pk string, opts *ScanOptions) iter.Seq2[Item, error] {
	var o ScanOptions
	if opts != nil {
		o = *opts
	}
	s := Search{
		PartitionKey:  pk,
		Prefix:        o.Prefix,
		Start:         o.Start,
		End:           o.End,
		Limit:         o.PageSize,
		Reverse:       o.Reverse,
		ConflictsOnly: o.ConflictsOnly,
		Tombstones:    o.Tombstones,
	}
	pks := []string{pk}
	return func(yield func(Item, error) bool) {
		if err := checkSearch(&s); err != nil {
			yield(Item{}, err)
			return
		}
		s := s // each iteration starts over
		startSet := false
		var body []byte
		for {
			body = appendSearch(append(body[:0], '['), &s, startSet)
			res, err := c.readBatch(ctx, append(body, ']'), pks)
			if err != nil {
				yield(Item{}, err)
				return
			}
			r := &res[0]
			for _, it := range r.Items {
				if !yield(it, nil) {
					return
				}
			}
			if !r.More {
				return
			}
			if len(r.Items) == 0 && (startSet || s.Start != "") && r.NextStart == s.Start {
				yield(Item{}, errNoProgress)
				return
			}
			// nextStart is the first key not returned, in either direction;
			// it is sent even when empty (the empty sort key exists).
			s.Start, startSet = r.NextStart, true
		}
	}
}

func checkDeleteSearch(s *DeleteSearch) error {
	if err := checkKey("partition key", s.PartitionKey, false); err != nil {
		return err
	}
	return checkRange(s.Prefix, s.Start, s.End)
}

// DeleteBatch deletes the items matched by each search (DeleteBatch,
// k2v-api.md §8.3): POST /<bucket>?delete. Each matched, non-deleted item
// gets a tombstone with its current context as read by the server. It
// returns one result per search, in order.
func (c *Client) DeleteBatch(ctx context.Context, searches []DeleteSearch) ([]DeleteResult, error) {
	body := []byte{'['}
	for i := range searches {
		if err := checkDeleteSearch(&searches[i]); err != nil {
			return nil, err
		}
		if i > 0 {
			body = append(body, ',')
		}
		body = appendDeleteSearch(body, &searches[i])
	}
	return postSearches[DeleteResult](ctx, c, "delete", append(body, ']'), len(searches))
}

// postSearches sends a JSON array of n searches with a keyword (search or
// delete) and decodes the array of n results.
func postSearches[R any](ctx context.Context, c *Client, keyword string, body []byte, n int) ([]R, error) {
	resp, err := c.do(ctx, &request{
		method:      http.MethodPost,
		query:       newQuery().keyword(keyword),
		body:        body,
		hasBody:     true,
		accept:      mimeJSON,
		contentType: mimeJSON,
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, c.fail(resp)
	}
	var res []R
	if err := decodeJSON(resp, &res); err != nil {
		return nil, err
	}
	if len(res) != n {
		return nil, fmt.Errorf("k2v: %s batch returned %d results for %d searches", keyword, len(res), n)
	}
	return res, nil
}
