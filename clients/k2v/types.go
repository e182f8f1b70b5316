package k2v

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// CausalityToken is an opaque summary of the writes a client has seen
// (k2v-api.md §4). Reads return one with every item; writes take one to
// replace what was read. The zero token ("") means "no context": a write
// without a token adds its value next to the existing ones.
//
// Tokens are compared and stored as strings; their content is never
// interpreted by this package.
type CausalityToken string

// EmptyContext is the token of the empty vector clock. As a write context
// it supersedes nothing; PollItem with it waits for the first write of an
// item. PollItem sends it when given the zero token.
const EmptyContext CausalityToken = "AAAAAAAAAAA"

// IsZero reports whether t is the zero token ("no context").
func (t CausalityToken) IsZero() bool { return t == "" }

// Value is one value of an item: opaque bytes, or a tombstone (the marker
// left by a delete). An empty value (Data of length 0, Tombstone false) is a
// real value, distinct from a tombstone.
//
// In JSON a Value is standard base64 with padding, and a tombstone is null.
type Value struct {
	// Data holds the bytes. It is nil for a tombstone. Values returned by
	// the client own their Data: callers may keep and modify it.
	Data []byte
	// Tombstone marks a deleted value; Data is then ignored.
	Tombstone bool
}

// Bytes returns a non-tombstone Value holding b (not copied).
func Bytes(b []byte) Value { return Value{Data: b} }

// Tombstone returns the tombstone Value, used in InsertBatch to delete.
func Tombstone() Value { return Value{Tombstone: true} }

// String returns a short description for logs: "<tombstone>" or the length.
func (v Value) String() string {
	if v.Tombstone {
		return "<tombstone>"
	}
	return fmt.Sprintf("<%d bytes>", len(v.Data))
}

// MarshalJSON encodes v as a base64 string, or null for a tombstone.
func (v Value) MarshalJSON() ([]byte, error) {
	return appendValueJSON(nil, v), nil
}

var errBadValue = errors.New("k2v: value is neither a base64 string nor null")

// UnmarshalJSON decodes a base64 string (standard alphabet, padded) or null.
func (v *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = Value{Tombstone: true}
		return nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return errBadValue
	}
	s := b[1 : len(b)-1]
	// Base64 never needs JSON escapes; a '\' means an escaped form we do
	// not expect from a server, so reject it rather than mis-decode.
	for _, c := range s {
		if c == '\\' {
			return errBadValue
		}
	}
	data := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(data, s)
	if err != nil {
		return fmt.Errorf("k2v: value: %w", err)
	}
	*v = Value{Data: data[:n]}
	return nil
}

// Item is one item as returned by a read: its keys, its causality token
// and its values, in the server's order (k2v-api.md §5.1). Several values
// mean concurrent writes (a conflict); an item whose values are all
// tombstones is deleted.
type Item struct {
	// PartitionKey is filled in by the client from the request.
	PartitionKey string `json:"-"`
	SortKey      string `json:"sk"`
	// CausalityToken is the token to send with a write that replaces
	// these values.
	CausalityToken CausalityToken `json:"ct"`
	Values         []Value        `json:"v"`
}

// IsTombstone reports whether the item is deleted: it has values and all
// of them are tombstones.
func (it *Item) IsTombstone() bool {
	for _, v := range it.Values {
		if !v.Tombstone {
			return false
		}
	}
	return len(it.Values) > 0
}

// IsConflict reports whether the item holds two or more values
// (tombstones included), the case where a binary read answers 409.
func (it *Item) IsConflict() bool { return len(it.Values) >= 2 }

// InsertOp is one write of InsertBatch: a value, or a tombstone to delete.
type InsertOp struct {
	PartitionKey string
	SortKey      string
	// CausalityToken is the context of the write; zero means none.
	CausalityToken CausalityToken
	// Value is written; Value.Tombstone deletes.
	Value Value
}

// Search selects items of one partition for ReadBatch (k2v-api.md §8.2,
// range rules in §10).
//
// Empty strings mean "absent" (JSON null), as in the query-string
// endpoints. The exception is Start with SingleItem, which is always sent,
// so that the item with the empty sort key can be read.
type Search struct {
	PartitionKey string `json:"partitionKey"`
	Prefix       string `json:"prefix"`
	Start        string `json:"start"`
	End          string `json:"end"`
	// Limit bounds the number of returned items; 0 means no limit (the
	// server may still cap a page; then More is true).
	Limit         int  `json:"limit"`
	Reverse       bool `json:"reverse"`
	SingleItem    bool `json:"singleItem"`
	ConflictsOnly bool `json:"conflictsOnly"`
	Tombstones    bool `json:"tombstones"`
}

// SearchResult is the answer to one Search. The embedded Search is the
// server's echo of the request (absent strings as "").
type SearchResult struct {
	Search
	Items []Item `json:"items"`
	// More reports that the listing stopped at a limit; NextStart, the
	// first key not returned, is then meaningful (it may be "").
	More      bool   `json:"more"`
	NextStart string `json:"nextStart"`
}

// DeleteSearch selects items for DeleteBatch (k2v-api.md §8.3). Empty
// strings mean "absent", except Start with SingleItem, which is always sent.
type DeleteSearch struct {
	PartitionKey string `json:"partitionKey"`
	Prefix       string `json:"prefix"`
	Start        string `json:"start"`
	End          string `json:"end"`
	SingleItem   bool   `json:"singleItem"`
}

// DeleteResult is the answer to one DeleteSearch.
type DeleteResult struct {
	DeleteSearch
	// DeletedItems counts the tombstones written (already deleted items
	// are not counted).
	DeletedItems int64 `json:"deletedItems"`
}

// PartitionInfo is one entry of ReadIndex: a partition key and its
// counters (k2v-api.md §11), which are eventually consistent.
type PartitionInfo struct {
	PartitionKey string `json:"pk"`
	// Entries counts the non-deleted items.
	Entries int64 `json:"entries"`
	// Conflicts counts the items with two or more values.
	Conflicts int64 `json:"conflicts"`
	// Values counts the non-tombstone values.
	Values int64 `json:"values"`
	// Bytes is the total size of the non-tombstone values.
	Bytes int64 `json:"bytes"`
}

// ReadIndexOptions selects partition keys for ReadIndex (range rules in
// k2v-api.md §10). Empty strings mean "absent": the server ignores empty
// query parameters.
type ReadIndexOptions struct {
	Prefix string
	Start  string
	End    string
	// Limit bounds the number of entries; 0 means no limit.
	Limit   int
	Reverse bool
}

// ReadIndexResult is one page of ReadIndex. The first five fields echo
// the request (absent as "" or 0).
type ReadIndexResult struct {
	Prefix        string          `json:"prefix"`
	Start         string          `json:"start"`
	End           string          `json:"end"`
	Limit         int             `json:"limit"`
	Reverse       bool            `json:"reverse"`
	PartitionKeys []PartitionInfo `json:"partitionKeys"`
	// More reports that the listing stopped at a limit; NextStart is then
	// the first partition key not returned.
	More      bool   `json:"more"`
	NextStart string `json:"nextStart"`
}

// PollRangeResult is the answer of PollRange.
type PollRangeResult struct {
	// Items are the new or changed items, in ascending sort-key order, with
	// their values (deleted items as a single tombstone). Without a seen
	// marker, every item of the range, deleted ones included.
	Items []Item `json:"items"`
	// SeenMarker is the opaque marker to send with the next poll of the
	// same range (or a sub-range). After a timeout it is the marker sent.
	SeenMarker string `json:"seenMarker"`
}
