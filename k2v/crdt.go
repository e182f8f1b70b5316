package k2v

import (
	"cmp"
	"maps"
	"slices"
)

// Small CRDTs for the entries of the bucket and key tables (the K2V item
// has its own, the DVVS). Each merge is commutative, associative and
// idempotent; ties between equal timestamps are broken by comparing values,
// so that every replica picks the same winner.

// LWW is a last-writer-wins register.
type LWW[T any] struct {
	Time  uint64
	Value T
}

// mergeLWW returns the winner of a and b; compare orders values for ties.
func mergeLWW[T any](a, b LWW[T], compare func(x, y T) int) LWW[T] {
	if b.Time > a.Time || (b.Time == a.Time && compare(b.Value, a.Value) > 0) {
		return b
	}
	return a
}

// next returns a register holding v with a time after r's and not before
// now: a new assignment always wins over the one it replaces, even when
// clocks disagree (a node whose clock is behind overwrites a value stamped
// in its future by another node). Every catalog write of an LWW goes
// through next, from the register it replaces; a register kept in two
// entries (a key's permission on a bucket, mirrored in the bucket) starts
// from the merge of both copies.
func (r LWW[T]) next(now uint64, v T) LWW[T] {
	return LWW[T]{Time: max(now, r.Time+1), Value: v}
}

// mergeLWWMap merges maps of registers key by key into dst.
func mergeLWWMap[K comparable, T any](dst *map[K]LWW[T], src map[K]LWW[T], compare func(x, y T) int) {
	if len(src) == 0 {
		return
	}
	if *dst == nil {
		*dst = make(map[K]LWW[T], len(src))
	}
	for k, v := range src {
		if cur, ok := (*dst)[k]; ok {
			(*dst)[k] = mergeLWW(cur, v, compare)
		} else {
			(*dst)[k] = v
		}
	}
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}

// Perm is what an access key may do on a bucket.
type Perm struct {
	Read, Write, Owner bool
}

func (p Perm) bits() int {
	n := 0
	if p.Read {
		n |= 1
	}
	if p.Write {
		n |= 2
	}
	if p.Owner {
		n |= 4
	}
	return n
}

func permFromBits(n byte) Perm { return Perm{n&1 != 0, n&2 != 0, n&4 != 0} }

func comparePerm(a, b Perm) int { return cmp.Compare(a.bits(), b.bits()) }

func compareBucketID(a, b BucketID) int { return slices.Compare(a[:], b[:]) }

// sortedKeys returns the keys of m in order.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K { return slices.Sorted(maps.Keys(m)) }

func slicesSortBucketIDs(ids []BucketID) { slices.SortFunc(ids, compareBucketID) }
