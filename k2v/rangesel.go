package k2v

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrBadRange is wrapped by errors of range parameters (k2v-api.md §10).
var ErrBadRange = errors.New("k2v: invalid range")

// Range selects keys within one partition (sort keys) or one bucket
// (partition keys for the index), as in k2v-api.md §10. Nil fields are
// absent; an empty string is a present, empty value.
type Range struct {
	Prefix  *string
	Start   *string
	End     *string
	Limit   *uint64
	Reverse bool
}

// Validate checks that Start begins with Prefix when both are set.
func (r Range) Validate() error {
	if r.Prefix != nil && r.Start != nil && !strings.HasPrefix(*r.Start, *r.Prefix) {
		return fmt.Errorf("%w: start key %q does not start with prefix %q", ErrBadRange, *r.Start, *r.Prefix)
	}
	return nil
}

// bounds turns the range into scan bounds. ok is false when the range is
// empty.
func (r Range) bounds() (o ScanOptions, ok bool) {
	o.Reverse = r.Reverse
	var prefix, prefixUpper []byte
	if r.Prefix != nil {
		prefix = []byte(*r.Prefix)
		prefixUpper = prefixEnd(prefix)
	}
	if !r.Reverse {
		switch {
		case r.Start != nil:
			o.Lower = []byte(*r.Start)
		case r.Prefix != nil:
			o.Lower = prefix
		}
		o.Upper = prefixUpper
		if r.End != nil {
			o.Upper = minUpper(o.Upper, []byte(*r.End))
		}
	} else {
		switch {
		case r.Start != nil:
			o.Upper = append([]byte(*r.Start), 0) // start is inclusive
		case r.Prefix != nil:
			o.Upper = prefixUpper
		}
		if r.End != nil {
			o.Lower = append([]byte(*r.End), 0) // end is never returned
		}
		if r.Prefix != nil && bytes.Compare(prefix, o.Lower) > 0 {
			o.Lower = prefix
		}
	}
	if o.Upper != nil && bytes.Compare(o.Lower, o.Upper) >= 0 {
		return o, false
	}
	return o, true
}

// minUpper returns the smaller exclusive upper bound; nil is unbounded.
func minUpper(a, b []byte) []byte {
	if a == nil || (b != nil && bytes.Compare(b, a) < 0) {
		return b
	}
	return a
}

// scanFunc is a scan of one partition key: Table.Scan on one node, or a
// quorum scan of the replicas (Replicated.Scan).
type scanFunc[E any] func(partition []byte, o ScanOptions, fn func(sort []byte, e *E) (bool, error)) error

// Page is the pagination outcome of a range walk: More is true when the
// walk stopped because of the limit (or a server cap), and Next is then the
// first key not returned.
type Page struct {
	More bool
	Next *string
}

// walkRange walks r over one partition key of t (§10): entries rejected by
// accept are skipped; the others are passed to emit until the limit, the cap
// maxItems or emit's refusal (it returns false once its budget is spent, the
// entry it was given being included) stops the walk, in which case the next
// accepted key is reported in the Page.
func walkRange[E any](scan scanFunc[E], partition []byte, r Range, maxItems int, accept func(*E) bool, emit func(sort []byte, e *E) bool) (Page, error) {
	var page Page
	if err := r.Validate(); err != nil {
		return page, err
	}
	o, ok := r.bounds()
	if !ok {
		return page, nil
	}
	limit := uint64(maxItems)
	if r.Limit != nil && *r.Limit < limit {
		limit = *r.Limit
	}
	var n uint64
	full := false
	err := scan(partition, o, func(sort []byte, e *E) (bool, error) {
		if !accept(e) {
			return true, nil
		}
		if n >= limit || full {
			s := string(sort)
			page = Page{More: true, Next: &s}
			return false, nil
		}
		n++
		full = !emit(sort, e)
		return true, nil
	})
	return page, err
}
