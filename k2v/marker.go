package k2v

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrBadMarker is wrapped by errors decoding a PollRange seen marker.
var ErrBadMarker = errors.New("k2v: invalid seen marker")

// SeenMarker records what a PollRange caller has seen (k2v-api.md §9): a
// vector clock of the replicas' own writes, plus per-item clocks for items
// seen with components beyond it. Markers are opaque to clients and only
// read back by grange.
type SeenMarker struct {
	Clock Clock
	Items map[string]Clock
}

// isNew reports whether it changed since the marker was issued.
func (m *SeenMarker) isNew(it *Item) bool {
	cc := it.Context()
	if !cc.NewerThan(m.Clock) {
		return false
	}
	if seen, ok := m.Items[it.Sort]; ok {
		return cc.NewerThan(seen)
	}
	return true
}

// markSeen records that replica node returned items. When complete is false
// the items are only part of what changed (a capped answer): the replica's
// clock is then not advanced, since that would also mark the items not
// returned as seen, and each returned item gets its own entry instead.
func (m *SeenMarker) markSeen(node uint64, items []*Item, complete bool) {
	if m.Items == nil {
		m.Items = map[string]Clock{}
	}
	if complete {
		for _, it := range items {
			if t := it.Context().Get(node); t > 0 {
				m.Clock = m.Clock.Set(node, t)
			}
		}
	}
	for _, it := range items {
		cc := it.Context()
		if cc.NewerThan(m.Clock) {
			m.Items[it.Sort] = cc.Max(m.Items[it.Sort])
		}
	}
	// drop the item entries that the clock now covers
	maps.DeleteFunc(m.Items, func(_ string, c Clock) bool { return !c.NewerThan(m.Clock) })
}

// restrict drops item entries outside r: a marker is only valid for the
// range it was issued for or a sub-range of it.
func (m *SeenMarker) restrict(r PollRange) {
	maps.DeleteFunc(m.Items, func(sk string, _ Clock) bool { return !r.contains(sk) })
}

// markerFormat is the first byte of an encoded marker. Frozen: clock
// (node u64, time), then items (sort key, clock).
const markerFormat = 1

// Encode returns the marker as standard base64 with padding.
func (m *SeenMarker) Encode() string {
	b := []byte{markerFormat}
	b = appendClock(b, m.Clock)
	keys := slices.Sorted(maps.Keys(m.Items))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendString(b, k)
		b = appendClock(b, m.Items[k])
	}
	return base64.StdEncoding.EncodeToString(b)
}

func appendClock(dst []byte, c Clock) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(c)))
	for _, e := range c {
		dst = binary.BigEndian.AppendUint64(dst, e.Node)
		dst = binary.AppendUvarint(dst, e.Time)
	}
	return dst
}

func (r *reader) clock() Clock {
	n := r.count(9)
	c := make(Clock, 0, n)
	for range n {
		e := ClockEntry{Node: r.uint64(), Time: r.uvarint()}
		if len(c) > 0 && r.err == nil && c[len(c)-1].Node >= e.Node {
			r.fail("clock out of order")
		}
		c = append(c, e)
	}
	return c
}

// ParseSeenMarker decodes a marker produced by Encode.
func ParseSeenMarker(s string) (*SeenMarker, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%w: line break", ErrBadMarker)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMarker, err)
	}
	r := &reader{b: b}
	r.version(markerFormat, "seen marker")
	m := &SeenMarker{Clock: r.clock(), Items: map[string]Clock{}}
	n := r.count(2)
	for range n {
		k := r.string()
		m.Items[k] = r.clock()
	}
	if err := r.done(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMarker, err)
	}
	return m, nil
}

// PollRange is the range of a PollRange call: sort keys that start with
// Prefix, are ≥ Start and < End (each optional, combined; Start need not
// begin with Prefix).
type PollRange struct {
	Prefix, Start, End *string
}

func (r PollRange) contains(sk string) bool {
	return (r.Prefix == nil || strings.HasPrefix(sk, *r.Prefix)) &&
		(r.Start == nil || sk >= *r.Start) &&
		(r.End == nil || sk < *r.End)
}

// bounds returns the scan bounds of the range; ok is false when it is empty.
func (r PollRange) bounds() (o ScanOptions, ok bool) {
	if r.Start != nil {
		o.Lower = []byte(*r.Start)
	}
	if r.Prefix != nil {
		if p := []byte(*r.Prefix); string(p) > string(o.Lower) {
			o.Lower = p
		}
		o.Upper = prefixEnd([]byte(*r.Prefix))
	}
	if r.End != nil {
		o.Upper = minUpper(o.Upper, []byte(*r.End))
	}
	if o.Upper != nil && string(o.Lower) >= string(o.Upper) {
		return o, false
	}
	return o, true
}
