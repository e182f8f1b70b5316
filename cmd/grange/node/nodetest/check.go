package nodetest

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// ErrCheckTimeout is returned when the linearizability checker gave up.
var ErrCheckTimeout = errors.New("nodetest: linearizability check timed out")

// The register model of one K2V item, with K2V's causality (k2v-api.md
// §5): the state is the set of live values (tombstones included, each
// named by its delete). A write or delete that carries the token of read
// R removes exactly the values R returned and adds its own; one without a
// token adds its value next to the others. A read returns the live values
// (tombstones collapse into one: the server deduplicates equal values).
//
// A token is opaque to the checker, so the model remembers, for every read
// whose token some write carried, the values live at the point where the
// read linearized (which names the tombstones the read saw).
//
// A read may miss a live value only while that value is not yet bound to
// be visible: its write has not returned before the read was called, and
// no read that returned before the read was called saw it. That is what a
// quorum system promises (read-after-write, monotonic reads): a read that
// overlaps two writes may see the later without the earlier, since it
// reads its replicas at different instants, which strict linearizability
// of the set of values would forbid. A read never shows a value that is
// not live: nothing superseded, deleted or never written comes back.
//
// Failed writes may or may not have happened: they may linearize at any
// point after their call (Return = +inf) and either change the state or
// not. Failed reads are left out.
type itemState struct {
	vals []string         // sorted
	seen map[int][]string // read ID → the values it saw; shared, copy on write
	// vis holds, for each live value, the time from which every read must
	// show it: its write's return, or the return of a read that saw it.
	vis map[string]time.Duration // shared, copy on write
}

func (s *itemState) with(vals []string) *itemState {
	return &itemState{vals: vals, seen: s.seen, vis: s.vis}
}

// withWrite is the state after write op made vals live, v being its own.
func (s *itemState) withWrite(vals []string, v string, op *Op) *itemState {
	vis := make(map[string]time.Duration, len(vals))
	for _, x := range vals {
		if d, ok := s.vis[x]; ok {
			vis[x] = d
		}
	}
	vis[v] = op.Return
	if op.Err != nil {
		vis[v] = math.MaxInt64
	}
	return &itemState{vals: vals, seen: s.seen, vis: vis}
}

// afterRead is the state after read op saw the values saw: they are bound
// to be visible from its return on, and its token names them.
func (s *itemState) afterRead(op *Op, saw []string, referenced bool) *itemState {
	vis := maps.Clone(s.vis)
	for _, v := range saw {
		if d, ok := vis[v]; !ok || op.Return < d {
			vis[v] = op.Return
		}
	}
	out := &itemState{vals: s.vals, seen: s.seen, vis: vis}
	if referenced {
		out.seen = maps.Clone(s.seen)
		if out.seen == nil {
			out.seen = map[int][]string{}
		}
		out.seen[op.ID] = saw
	}
	return out
}

// applyWrite returns the values after op: the values of op.FromRead's
// read removed, op's value added.
func applyWrite(s *itemState, op *Op) ([]string, bool) {
	var out []string
	if op.FromRead >= 0 {
		seen, ok := s.seen[op.FromRead]
		if !ok {
			return nil, false // its read did not linearize before it
		}
		for _, v := range s.vals {
			if !slices.Contains(seen, v) {
				out = append(out, v)
			}
		}
	} else {
		out = slices.Clone(s.vals)
	}
	v := op.Value
	if op.Kind == Delete {
		v = TombstoneOf(op.ID)
	}
	out = append(out, v)
	slices.Sort(out)
	return slices.Compact(out), true
}

// readSaw checks read op against s and returns the live values it saw
// (every live tombstone when it showed one: the server merges them).
func readSaw(s *itemState, op *Op) ([]string, bool) {
	var saw []string
	tomb := false
	for _, v := range s.vals {
		shown := false
		if isTombstone(v) {
			tomb = true
			shown = op.Tombstone
		} else {
			shown = slices.Contains(op.Values, v)
		}
		if shown {
			saw = append(saw, v)
			continue
		}
		if d, ok := s.vis[v]; !ok || d < op.Call {
			return nil, false // bound to be visible, and missing
		}
	}
	if op.Tombstone && !tomb {
		return nil, false
	}
	for _, v := range op.Values {
		if !slices.Contains(s.vals, v) {
			return nil, false // not live: superseded, deleted or never written
		}
	}
	return saw, true
}

// itemModel returns the porcupine model, partitioned by item. referenced
// holds the reads whose token some write carried: only those are
// remembered, which keeps equal states equal.
func itemModel(referenced map[int]bool) porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, o := range history {
				k := o.Input.(*Op).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], o)
			}
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() []any { return []any{&itemState{}} },
		Step: gcAware(func(state, input, _ any) []any {
			s, op := state.(*itemState), input.(*Op)
			switch op.Kind {
			case Read:
				saw, ok := readSaw(s, op)
				if !ok {
					return nil
				}
				return []any{s.afterRead(op, saw, referenced[op.ID])}
			default:
				vals, ok := applyWrite(s, op)
				if !ok {
					return nil
				}
				v := op.Value
				if op.Kind == Delete {
					v = TombstoneOf(op.ID)
				}
				if op.Err != nil {
					return []any{s.withWrite(vals, v, op), s}
				}
				return []any{s.withWrite(vals, v, op)}
			}
		}),
		Equal: func(a, b any) bool {
			x, y := a.(*itemState), b.(*itemState)
			if !slices.Equal(x.vals, y.vals) || len(x.seen) != len(y.seen) || !maps.Equal(x.vis, y.vis) {
				return false
			}
			for id, v := range x.seen {
				w, ok := y.seen[id]
				if !ok || !slices.Equal(v, w) {
					return false
				}
			}
			return true
		},
		Hash: func(state any) uint64 {
			h := fnv.New64a()
			for _, v := range state.(*itemState).vals {
				h.Write([]byte(v))
				h.Write([]byte{0xff})
			}
			return h.Sum64()
		},
		DescribeOperation: func(input, _ any) string { return input.(*Op).String() },
		DescribeState: func(state any) string {
			var vs []string
			for _, v := range state.(*itemState).vals {
				if isTombstone(v) {
					v = "⊥" + strings.TrimPrefix(v, "\x00tombstone")
				}
				vs = append(vs, v)
			}
			return "{" + strings.Join(vs, ", ") + "}"
		},
	}
	return nm.ToModel()
}

// gcAware wraps a step function: tombstones are collected once every
// replica has them, so a state that holds only tombstones may have become
// the empty state at any point since; both are tried.
func gcAware(step func(state, input, output any) []any) func(state, input, output any) []any {
	return func(state, input, output any) []any {
		s := state.(*itemState)
		res := step(s, input, output)
		if len(s.vals) > 0 && !slices.ContainsFunc(s.vals, func(v string) bool { return !isTombstone(v) }) {
			res = append(res, step(s.with(nil), input, output)...)
		}
		return res
	}
}

// CheckLinearizable checks ops against the per-item register model with
// K2V causality (see itemState). It returns nil when the history is
// linearizable, an error listing the operations of a failing item
// otherwise, or ErrCheckTimeout when the check took longer than timeout
// (0: no limit).
func CheckLinearizable(ops []Op, timeout time.Duration) error {
	referenced := map[int]bool{}
	var hist []porcupine.Operation
	for i := range ops {
		op := &ops[i]
		if op.Kind != Read && op.FromRead >= 0 {
			referenced[op.FromRead] = true
		}
		if op.Kind == Read && op.Err != nil {
			continue
		}
		ret := int64(op.Return)
		if op.Err != nil {
			ret = math.MaxInt64
		}
		hist = append(hist, porcupine.Operation{ClientId: op.Worker, Input: op, Call: int64(op.Call), Return: ret})
	}
	model := itemModel(referenced)
	res, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
	switch res {
	case porcupine.Ok:
		return nil
	case porcupine.Unknown:
		return ErrCheckTimeout
	}
	// Name the longest prefix that linearized, per failing partition.
	perKey := map[string]int{}
	for _, o := range hist {
		perKey[o.Input.(*Op).Key]++
	}
	var b strings.Builder
	b.WriteString("nodetest: history is not linearizable under the K2V item model")
	for _, part := range info.PartialLinearizationsOperations() {
		if len(part) == 0 {
			continue
		}
		longest := part[0]
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if len(longest) == 0 {
			continue
		}
		key := longest[0].Input.(*Op).Key
		if len(longest) == perKey[key] {
			continue // this item linearized
		}
		fmt.Fprintf(&b, "\nitem %s, longest linearizable prefix:", key)
		for _, o := range longest {
			fmt.Fprintf(&b, "\n  %s", o.Input.(*Op))
		}
		fmt.Fprintf(&b, "\nitem %s, all operations:", key)
		for i := range ops {
			if ops[i].Key == key {
				fmt.Fprintf(&b, "\n  %s", &ops[i])
			}
		}
	}
	return errors.New(b.String())
}

// Final is what a final read of every item returned: sort key → the
// non-tombstone values. Items missing from the map read as empty.
type Final map[string][]string

// CheckNoLostWrites checks the final state of the items against the
// history, without ordering:
//
//   - every value of an acknowledged write is present, unless a read
//     returned it and some write carrying that read's token was attempted
//     (it may have superseded the value);
//   - no value is present that an acknowledged token-carrying write
//     superseded (a resurrection);
//   - no value is present that no write wrote.
//
// ops[i].ID must be i, as History.Ops returns them.
func CheckNoLostWrites(ops []Op, final Final) error {
	written := map[string]*Op{}
	for i := range ops {
		if ops[i].Kind == Write {
			written[ops[i].Value] = &ops[i]
		}
	}
	mayBeSuperseded := map[string]bool{}
	superseded := map[string]int{} // value → ID of the acknowledged write that superseded it
	for i := range ops {
		w := &ops[i]
		if w.Kind == Read || w.FromRead < 0 {
			continue
		}
		r := &ops[w.FromRead]
		for _, v := range r.Values {
			mayBeSuperseded[v] = true
			if w.Err == nil {
				superseded[v] = w.ID
			}
		}
	}
	var errs []error
	for key, vals := range final {
		for _, v := range vals {
			w := written[v]
			switch {
			case w == nil:
				errs = append(errs, fmt.Errorf("item %s: value %q was never written", key, v))
			case w.Key != key:
				errs = append(errs, fmt.Errorf("item %s: value %q was written to item %s", key, v, w.Key))
			}
			if id, ok := superseded[v]; ok {
				errs = append(errs, fmt.Errorf("item %s: value %q is back after write #%d superseded it", key, v, id))
			}
		}
	}
	for i := range ops {
		w := &ops[i]
		if w.Kind != Write || w.Err != nil || mayBeSuperseded[w.Value] {
			continue
		}
		if !slices.Contains(final[w.Key], w.Value) {
			errs = append(errs, fmt.Errorf("item %s: acknowledged write lost: %s", w.Key, w))
		}
	}
	return errors.Join(errs...)
}
