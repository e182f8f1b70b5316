package k2v

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

const (
	// Server-side poll timeouts (k2v-api.md §6.2, §9): default 300 s,
	// clamped to [1 s, 600 s].
	defaultPollTimeout = 300 * time.Second
	minPollTimeout     = time.Second
	maxPollTimeout     = 600 * time.Second

	// pollSlack is added to the server's poll timeout to get the HTTP
	// request deadline, so that a 304 sent when the server's timeout fires
	// has time to arrive (quorum round, network) instead of the client
	// giving up first.
	pollSlack = 10 * time.Second
)

// pollTimeout converts a requested poll timeout into the whole seconds to
// send (0: leave the server default) and the HTTP request deadline.
func pollTimeout(d time.Duration) (seconds int, deadline time.Duration) {
	if d <= 0 {
		return 0, defaultPollTimeout + pollSlack
	}
	d = min(max(d, minPollTimeout), maxPollTimeout)
	seconds = int((d + time.Second - 1) / time.Second) // round up
	return seconds, time.Duration(seconds)*time.Second + pollSlack
}

// PollOptions tunes PollItem.
type PollOptions struct {
	// Timeout is how long the server waits for a change before answering
	// "not modified". It is rounded up to whole seconds and clamped to
	// [1 s, 600 s]; 0 means the server default, 300 s. The HTTP request
	// gets a deadline a little longer than this (ctx may set a shorter one).
	Timeout time.Duration
}

// PollItem waits until the item holds something newer than token
// (PollItem, k2v-api.md §6.2):
// GET /<bucket>/<pk>?sort_key=<sk>&causality_token=<token>&timeout=<s>.
//
// When the item changes it returns the new state, as ReadItem does, and
// changed == true; pass the returned item's token to the next poll. When the
// timeout expires first it returns (nil, false, nil): a timeout is not an
// error. The zero token is sent as EmptyContext: the poll then returns at
// once if the item exists, or on its first write.
//
// The JSON form is used, so an item with concurrent values comes back with
// all of them rather than as a conflict. opts may be nil.
func (c *Client) PollItem(ctx context.Context, pk, sk string, token CausalityToken, opts *PollOptions) (*Item, bool, error) {
	if err := checkItemKeys(pk, sk); err != nil {
		return nil, false, err
	}
	if token.IsZero() {
		token = EmptyContext
	}
	var timeout time.Duration
	if opts != nil {
		timeout = opts.Timeout
	}
	seconds, deadline := pollTimeout(timeout)
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	q := newQuery().add("sort_key", sk).add("causality_token", string(token))
	if seconds > 0 {
		q = q.add("timeout", strconv.Itoa(seconds))
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, pk: pk, query: q, accept: mimeJSON})
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		closeBody(resp)
		return nil, false, nil
	case http.StatusOK:
		it, err := itemFromJSON(resp, pk, sk)
		if err != nil {
			return nil, false, err
		}
		return it, true, nil
	}
	return nil, false, c.fail(resp)
}

// PollRangeOptions selects the range of PollRange and WatchRange. Empty
// strings mean "absent".
type PollRangeOptions struct {
	Prefix string
	// Start: only sort keys >= Start. When Prefix is set and Start is not,
	// the prefix is sent as Start too (same range), which avoids a quirk
	// of the reference server described in k2v-api.md §9.
	Start string
	// End: only sort keys < End.
	End string
	// Timeout is as in PollOptions.
	Timeout time.Duration
}

// PollRange waits for changes to the items of a range of a partition
// (PollRange, k2v-api.md §9): POST /<bucket>/<pk>?poll_range.
//
// With an empty seenMarker it returns at once every item of the range,
// deleted ones included, and a marker. With the marker of a previous call,
// it returns the items written or deleted since, with changed == true, or,
// when the timeout expires first, changed == false and a result holding no
// items and the marker sent (a timeout is not an error). Either way
// res.SeenMarker is the marker for the next call. A marker may be reused
// for the same range or a sub-range of it only. opts may be nil.
//
// The server requires write permission on the bucket for this call.
func (c *Client) PollRange(ctx context.Context, pk, seenMarker string, opts *PollRangeOptions) (res *PollRangeResult, changed bool, err error) {
	var o PollRangeOptions
	if opts != nil {
		o = *opts
	}
	if err := checkKey("partition key", pk, true); err != nil {
		return nil, false, err
	}
	if err := checkRange(o.Prefix, o.Start, o.End); err != nil {
		return nil, false, err
	}
	start := o.Start
	if start == "" {
		start = o.Prefix
	}
	seconds, deadline := pollTimeout(o.Timeout)
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	resp, err := c.do(ctx, &request{
		method:      http.MethodPost,
		pk:          pk,
		query:       newQuery().keyword("poll_range"),
		body:        appendPollRange(nil, o.Prefix, start, o.End, seconds, seenMarker),
		hasBody:     true,
		accept:      mimeJSON,
		contentType: mimeJSON,
	})
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusNotModified:
		closeBody(resp)
		return &PollRangeResult{SeenMarker: seenMarker}, false, nil
	case http.StatusOK:
		res := &PollRangeResult{}
		if err := decodeJSON(resp, res); err != nil {
			return nil, false, err
		}
		for i := range res.Items {
			res.Items[i].PartitionKey = pk
		}
		return res, true, nil
	}
	return nil, false, c.fail(resp)
}

// WatchRange polls a range in a loop, calling fn with each batch of new
// items, until ctx is done or fn or a poll fails. Poll timeouts are not
// reported: it polls again.
//
// With an empty seenMarker, fn is first called with the current content
// of the range (deleted items included; possibly no items). To resume a
// watch, pass the SeenMarker of the last result fn handled. fn runs on the
// caller's goroutine, one call at a time, and owns the result it gets.
//
// WatchRange returns fn's error as is, the error of a failed poll, or
// ctx.Err() once ctx is done. It does not retry failed polls.
func (c *Client) WatchRange(ctx context.Context, pk, seenMarker string, opts *PollRangeOptions, fn func(*PollRangeResult) error) error {
	marker := seenMarker
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, changed, err := c.PollRange(ctx, pk, marker, opts)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return ctxErr
			}
			return err
		}
		if changed {
			if err := fn(res); err != nil {
				return err
			}
		}
		marker = res.SeenMarker
	}
}
