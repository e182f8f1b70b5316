package k2vhttp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/grangeio/grange/k2v"
)

// Batch bodies are decoded strictly by field name (k2v-api.md §2.4: names
// are case-sensitive, unknown fields are ignored, a wrong type or a missing
// mandatory field is "Invalid JSON"), which encoding/json's
// case-insensitive struct matching cannot do: objects are decoded to raw
// members first.

type jsonObject map[string]json.RawMessage

func invalidJSON(format string, args ...any) error {
	return badRequest("Invalid JSON: "+format, args...)
}

func checkJSON(body []byte) error {
	if !utf8.Valid(body) {
		return invalidJSON("invalid UTF-8")
	}
	return nil
}

// decodeObjects decodes a JSON array of objects.
func decodeObjects(body []byte) ([]jsonObject, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	var objs []jsonObject
	if err := json.Unmarshal(body, &objs); err != nil {
		return nil, invalidJSON("%v", err)
	}
	if objs == nil {
		return nil, invalidJSON("expected an array, got null")
	}
	for i, o := range objs {
		if o == nil {
			return nil, invalidJSON("element %d is not an object", i)
		}
	}
	return objs, nil
}

func decodeObject(body []byte) (jsonObject, error) {
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	var o jsonObject
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, invalidJSON("%v", err)
	}
	if o == nil {
		return nil, invalidJSON("expected an object")
	}
	return o, nil
}

func isNull(raw json.RawMessage) bool { return raw == nil || string(raw) == "null" }

// str returns a string member; absent or null is nil, an error if required.
func (o jsonObject) str(name string, required bool) (*string, error) {
	raw := o[name]
	if isNull(raw) {
		if required {
			return nil, invalidJSON("missing field `%s`", name)
		}
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalidJSON("field `%s`: expected a string", name)
	}
	return &s, nil
}

// boolean returns a boolean member; absent is false, null is an error.
func (o jsonObject) boolean(name string) (bool, error) {
	raw, ok := o[name]
	if !ok {
		return false, nil
	}
	var b bool
	if isNull(raw) || json.Unmarshal(raw, &b) != nil {
		return false, invalidJSON("field `%s`: expected a boolean", name)
	}
	return b, nil
}

// uint returns an unsigned integer member; absent or null is nil.
func (o jsonObject) uint(name string) (*uint64, error) {
	raw := o[name]
	if isNull(raw) {
		return nil, nil
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil {
		return nil, invalidJSON("field `%s`: expected an unsigned integer", name)
	}
	return &n, nil
}

// jsonValues marshals an item's values as in ReadItem.
type jsonValues []k2v.Value

func (v jsonValues) MarshalJSON() ([]byte, error) { return appendValuesJSON(nil, v), nil }

// batchItem is an item in ReadBatch and PollRange responses.
type batchItem struct {
	SK string     `json:"sk"`
	CT string     `json:"ct"`
	V  jsonValues `json:"v"`
}

func toBatchItems(items []*k2v.Item) []batchItem {
	out := make([]batchItem, len(items))
	for i, it := range items {
		out[i] = batchItem{SK: it.Sort, CT: it.Context().Token(), V: it.Values()}
	}
	return out
}

func (c *call) insertBatch(ctx context.Context) error {
	objs, err := decodeObjects(c.body)
	if err != nil {
		return err
	}
	// validate everything before writing anything
	writes := make([]k2v.Write, len(objs))
	for i, o := range objs {
		pk, err := o.str("pk", true)
		if err != nil {
			return err
		}
		sk, err := o.str("sk", true)
		if err != nil {
			return err
		}
		w := k2v.Write{Partition: *pk, Sort: *sk, Value: k2v.Value{Tombstone: true}}
		if len(w.Partition) > k2v.MaxKeyBytes || len(w.Sort) > k2v.MaxKeyBytes {
			return badRequest("item %d: keys longer than %d bytes", i, k2v.MaxKeyBytes)
		}
		ct, err := o.str("ct", false)
		if err != nil {
			return err
		}
		if ct != nil {
			if w.Context, err = k2v.ParseToken(*ct); err != nil {
				return &apiError{status: 400, code: "CausalityToken", msg: fmt.Sprintf("Invalid causality token in item %d", i)}
			}
		}
		v, err := o.str("v", false)
		if err != nil {
			return err
		}
		if v != nil {
			// the decoder skips CR and LF even in strict mode: the
			// contract allows none
			data, err := base64.StdEncoding.Strict().DecodeString(*v)
			if err != nil || strings.ContainsAny(*v, "\r\n") {
				return badRequest("Invalid base64 value in item %d", i)
			}
			w.Value = k2v.Value{Data: data}
		}
		writes[i] = w
	}
	if err := c.s.cfg.Items.Insert(ctx, c.bucket.ID, writes...); err != nil {
		return err
	}
	c.rc.SetStatusCode(204)
	return nil
}

// search is one search of ReadBatch or DeleteBatch.
type search struct {
	PartitionKey  string  `json:"partitionKey"`
	Prefix        *string `json:"prefix"`
	Start         *string `json:"start"`
	End           *string `json:"end"`
	Limit         *uint64 `json:"limit"`
	Reverse       bool    `json:"reverse"`
	SingleItem    bool    `json:"singleItem"`
	ConflictsOnly bool    `json:"conflictsOnly"`
	Tombstones    bool    `json:"tombstones"`
}

func parseSearch(o jsonObject, forDelete bool) (*search, error) {
	var s search
	pk, err := o.str("partitionKey", true)
	if err != nil {
		return nil, err
	}
	s.PartitionKey = *pk
	if s.Prefix, err = o.str("prefix", false); err != nil {
		return nil, err
	}
	if s.Start, err = o.str("start", false); err != nil {
		return nil, err
	}
	if s.End, err = o.str("end", false); err != nil {
		return nil, err
	}
	if s.SingleItem, err = o.boolean("singleItem"); err != nil {
		return nil, err
	}
	if forDelete {
		// DeleteBatch ignores every other field
		if s.SingleItem && (s.Prefix != nil || s.End != nil) {
			return nil, badRequest("Batch query parameters 'prefix' and 'end' must not be set when singleItem is true.")
		}
	} else {
		if s.Limit, err = o.uint("limit"); err != nil {
			return nil, err
		}
		if s.Reverse, err = o.boolean("reverse"); err != nil {
			return nil, err
		}
		if s.ConflictsOnly, err = o.boolean("conflictsOnly"); err != nil {
			return nil, err
		}
		if s.Tombstones, err = o.boolean("tombstones"); err != nil {
			return nil, err
		}
		if s.SingleItem && (s.Prefix != nil || s.End != nil || s.Limit != nil || s.Reverse) {
			return nil, badRequest("Batch query parameters 'prefix', 'end', 'limit' and 'reverse' must not be set when singleItem is true.")
		}
	}
	if s.SingleItem && s.Start == nil {
		return nil, badRequest("start should be specified if singleItem is set")
	}
	if len(s.PartitionKey) > k2v.MaxKeyBytes {
		return nil, badRequest("partition key longer than %d bytes", k2v.MaxKeyBytes)
	}
	return &s, nil
}

func parseSearches(body []byte, forDelete bool) ([]*search, error) {
	objs, err := decodeObjects(body)
	if err != nil {
		return nil, err
	}
	if len(objs) > maxSearches {
		return nil, badRequest("Too many searches in one batch: %d (max %d)", len(objs), maxSearches)
	}
	out := make([]*search, len(objs))
	for i, o := range objs {
		if out[i], err = parseSearch(o, forDelete); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *search) rng() k2v.Range {
	return k2v.Range{Prefix: s.Prefix, Start: s.Start, End: s.End, Limit: s.Limit, Reverse: s.Reverse}
}

type readBatchResult struct {
	search
	Items     []batchItem `json:"items"`
	More      bool        `json:"more"`
	NextStart *string     `json:"nextStart"`
}

// readBatchParallel is how many searches of one ReadBatch run at once:
// on a cluster each is a round trip to a quorum of replicas, and running
// them together makes the batch cost one round trip, not one per search.
const readBatchParallel = 16

func (c *call) readBatch(ctx context.Context) error {
	searches, err := parseSearches(c.body, false)
	if err != nil {
		return err
	}
	// Each search runs with a share of the response budget, so that the
	// searches in flight together stay within it; the budget is then
	// applied in order: a search that does not fit is cut where it
	// overflows, with more and nextStart telling the client where to go on.
	share := int64(maxResponseValueBytes / max(1, min(len(searches), readBatchParallel)))
	results := make([]readBatchResult, len(searches))
	errs := make([]error, len(searches))
	sem := make(chan struct{}, readBatchParallel)
	var wg sync.WaitGroup
	for i, s := range searches {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], errs[i] = c.runSearch(ctx, s, &k2v.Budget{Bytes: share})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	remaining := int64(maxResponseValueBytes)
	for i := range results {
		res := &results[i]
		for j, it := range res.Items {
			if remaining <= 0 {
				next := it.SK
				res.Items, res.More, res.NextStart = res.Items[:j], true, &next
				break
			}
			for _, v := range it.V {
				remaining -= int64(len(v.Data))
			}
		}
		if res.Items == nil {
			res.Items = []batchItem{}
		}
	}
	return c.writeJSON(200, results)
}

// runSearch runs one search of a ReadBatch.
func (c *call) runSearch(ctx context.Context, s *search, budget *k2v.Budget) (readBatchResult, error) {
	res := readBatchResult{search: *s}
	filter := k2v.Filter{ConflictsOnly: s.ConflictsOnly, Tombstones: s.Tombstones}
	var items []*k2v.Item
	if s.SingleItem {
		it, err := c.s.cfg.Items.Get(ctx, c.bucket.ID, s.PartitionKey, *s.Start)
		if err != nil {
			return res, err
		}
		if it != nil && filter.Accept(it) {
			items = []*k2v.Item{it}
		}
	} else {
		var page k2v.Page
		var err error
		items, page, err = c.s.cfg.Items.ReadRange(ctx, c.bucket.ID, s.PartitionKey, s.rng(), filter, budget)
		if err != nil {
			return res, err
		}
		res.More, res.NextStart = page.More, page.Next
	}
	res.Items = toBatchItems(items)
	return res, nil
}

type deleteBatchResult struct {
	PartitionKey string  `json:"partitionKey"`
	Prefix       *string `json:"prefix"`
	Start        *string `json:"start"`
	End          *string `json:"end"`
	SingleItem   bool    `json:"singleItem"`
	DeletedItems int     `json:"deletedItems"`
}

func (c *call) deleteBatch(ctx context.Context) error {
	searches, err := parseSearches(c.body, true)
	if err != nil {
		return err
	}
	results := make([]deleteBatchResult, len(searches))
	for i, s := range searches {
		res := deleteBatchResult{PartitionKey: s.PartitionKey, Prefix: s.Prefix, Start: s.Start, End: s.End, SingleItem: s.SingleItem}
		if s.SingleItem {
			deleted, err := c.s.cfg.Items.DeleteItem(ctx, c.bucket.ID, s.PartitionKey, *s.Start)
			if err != nil {
				return err
			}
			if deleted {
				res.DeletedItems = 1
			}
		} else {
			r := k2v.Range{Prefix: s.Prefix, Start: s.Start, End: s.End}
			if res.DeletedItems, err = c.s.cfg.Items.DeleteRange(ctx, c.bucket.ID, s.PartitionKey, r); err != nil {
				return err
			}
		}
		results[i] = res
	}
	return c.writeJSON(200, results)
}

type indexEntry struct {
	PK        string `json:"pk"`
	Entries   int64  `json:"entries"`
	Conflicts int64  `json:"conflicts"`
	Values    int64  `json:"values"`
	Bytes     int64  `json:"bytes"`
}

type readIndexResult struct {
	Prefix        *string      `json:"prefix"`
	Start         *string      `json:"start"`
	End           *string      `json:"end"`
	Limit         *uint64      `json:"limit"`
	Reverse       bool         `json:"reverse"`
	PartitionKeys []indexEntry `json:"partitionKeys"`
	More          bool         `json:"more"`
	NextStart     *string      `json:"nextStart"`
}

func (c *call) readIndex(ctx context.Context) error {
	r := k2v.Range{Prefix: c.req.Prefix, Start: c.req.Start, End: c.req.End, Limit: c.req.Limit}
	if c.req.Reverse != nil {
		r.Reverse = *c.req.Reverse
	}
	entries, page, err := c.s.cfg.Items.ReadIndex(ctx, c.bucket.ID, r)
	if err != nil {
		return err
	}
	res := readIndexResult{Prefix: r.Prefix, Start: r.Start, End: r.End, Limit: r.Limit, Reverse: r.Reverse,
		PartitionKeys: make([]indexEntry, len(entries)), More: page.More, NextStart: page.Next}
	for i, e := range entries {
		res.PartitionKeys[i] = indexEntry{PK: e.Partition, Entries: e.Counts.Entries, Conflicts: e.Counts.Conflicts, Values: e.Counts.Values, Bytes: e.Counts.Bytes}
	}
	return c.writeJSON(200, res)
}

type pollRangeResult struct {
	Items      []batchItem `json:"items"`
	SeenMarker string      `json:"seenMarker"`
}

func (c *call) pollRange(ctx context.Context) error {
	o, err := decodeObject(c.body)
	if err != nil {
		return err
	}
	var r k2v.PollRange
	if r.Prefix, err = o.str("prefix", false); err != nil {
		return err
	}
	if r.Start, err = o.str("start", false); err != nil {
		return err
	}
	if r.End, err = o.str("end", false); err != nil {
		return err
	}
	timeout, err := o.uint("timeout")
	if err != nil {
		return err
	}
	markerText, err := o.str("seenMarker", false)
	if err != nil {
		return err
	}
	var marker *k2v.SeenMarker
	if markerText != nil {
		if marker, err = k2v.ParseSeenMarker(*markerText); err != nil {
			return badRequest("Invalid seenMarker")
		}
	}
	items, next, changed, err := c.s.cfg.Items.PollRange(ctx, c.bucket.ID, c.req.Partition, r, marker, pollTimeout(timeout))
	if err != nil && c.s.base.Err() == nil {
		return err
	}
	if !changed {
		c.rc.SetStatusCode(304)
		return nil
	}
	return c.writeJSON(200, pollRangeResult{Items: toBatchItems(items), SeenMarker: next.Encode()})
}
