package k2v

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func val(s string) Value { return Value{Data: []byte(s)} }

var tomb = Value{Tombstone: true}

func valuesString(vs []Value) string {
	var b bytes.Buffer
	b.WriteString("[")
	for i, v := range vs {
		if i > 0 {
			b.WriteString(" ")
		}
		if v.Tombstone {
			b.WriteString("null")
		} else {
			fmt.Fprintf(&b, "%q", v.Data)
		}
	}
	b.WriteString("]")
	return b.String()
}

// The worked examples of k2v-api.md §5.4, step by step.
func TestDVVSWorkedExamples(t *testing.T) {
	const n1, n2 = 1, 2
	check := func(t *testing.T, it *Item, values string, ctx Clock) {
		t.Helper()
		if got := valuesString(it.Values()); got != values {
			t.Errorf("values = %s, want %s", got, values)
		}
		if got := it.Context(); !reflect.DeepEqual(got, ctx) {
			t.Errorf("context = %v, want %v", got, ctx)
		}
	}
	it := NewItem(BucketID{}, "p", "s")

	// (a) first write, L=0, now=1000
	if tm := it.Write(n1, nil, val("A"), 1000); tm != 1001 {
		t.Fatalf("(a) time = %d, want 1001", tm)
	}
	check(t, it, `["A"]`, Clock{{n1, 1001}})
	stateA := clone(it)

	// (b) overwrite with the token, now=1005
	it.Write(n1, Clock{{n1, 1001}}, val("B"), 1005)
	check(t, it, `["B"]`, Clock{{n1, 1006}})
	if it.Entries[0].Discard != 1001 {
		t.Errorf("(b) discard = %d, want 1001", it.Entries[0].Discard)
	}

	// (c) stale token, now=1010: a conflict
	it.Write(n1, Clock{{n1, 1001}}, val("C"), 1010)
	check(t, it, `["B" "C"]`, Clock{{n1, 1011}})
	stateC := clone(it)

	// (d) resolve with the full token
	d := clone(it)
	d.Write(n1, Clock{{n1, 1011}}, val("D"), 1011)
	check(t, d, `["D"]`, Clock{{n1, 1012}})

	// (e) delete concurrent with an update: token {n1:1006} from state (c)
	e := clone(stateC)
	e.Write(n1, Clock{{n1, 1006}}, tomb, 1012)
	check(t, e, `["C" null]`, Clock{{n1, 1013}})
	if e.IsTombstone() {
		t.Error("(e) is a tombstone")
	}

	// (f) delete with the full token
	e.Write(n1, Clock{{n1, 1013}}, tomb, 1013)
	check(t, e, `[null]`, Clock{{n1, 1014}})
	if !e.IsTombstone() {
		t.Error("(f) is not a tombstone")
	}
	if c := e.Counts(); c != (Counts{}) {
		t.Errorf("(f) counts = %+v, want zero", c)
	}

	// (g) write after delete, with and without the tombstone's token
	g := clone(e)
	g.Write(n1, Clock{{n1, 1014}}, val("E"), 1014)
	check(t, g, `["E"]`, Clock{{n1, 1015}})
	g2 := clone(e)
	g2.Write(n1, nil, val("E"), 1014)
	check(t, g2, `[null "E"]`, Clock{{n1, 1015}})

	// (h) state (a) read, then a write executed by n2 (L=2000)
	h := clone(stateA)
	h.Write(n2, Clock{{n1, 1001}}, val("F"), 2000)
	check(t, h, `["F"]`, Clock{{n1, 1001}, {n2, 2001}})

	// (i) identical concurrent values count once
	i := NewItem(BucketID{}, "p", "s")
	i.Write(n1, nil, val("X"), 10)
	i.Write(n1, nil, val("X"), 11)
	check(t, i, `["X"]`, Clock{{n1, 12}})
	if c := i.Counts(); c != (Counts{Entries: 1, Values: 1, Bytes: 1}) {
		t.Errorf("(i) counts = %+v", c)
	}

	// (j) the draft's multi-step example
	j := NewItem(BucketID{}, "p", "s")
	j.Write(n1, nil, val("v1"), 0) // t1 = 1
	j.Write(n1, nil, val("v2"), 0) // t2 = 2
	j.Write(n2, nil, val("v3"), 0) // t3 = 1 on node2
	t1, t2, t3 := uint64(1), uint64(2), uint64(1)
	j.Write(n1, Clock{{n1, t1}}, val("v5"), 0) // drops v1 only
	check(t, j, `["v2" "v5" "v3"]`, Clock{{n1, 3}, {n2, 1}})
	j.Write(n2, Clock{{n1, t2}, {n2, t3}}, val("v4"), 0) // drops v2, v3; keeps v5
	check(t, j, `["v5" "v4"]`, Clock{{n1, 3}, {n2, 2}})

	// counts of ["x", null]
	k := NewItem(BucketID{}, "p", "s")
	k.Write(n1, nil, val("x"), 0)
	k.Write(n1, nil, tomb, 0)
	if c := k.Counts(); c != (Counts{Entries: 1, Conflicts: 1, Values: 1, Bytes: 1}) {
		t.Errorf(`counts of ["x", null] = %+v`, c)
	}

	// an empty value is a value, not a tombstone
	em := NewItem(BucketID{}, "p", "s")
	em.Write(n1, nil, val(""), 0)
	if em.IsTombstone() || valuesString(em.Values()) != `[""]` {
		t.Errorf("empty value: tombstone=%v values=%s", em.IsTombstone(), valuesString(em.Values()))
	}
}

func clone(it *Item) *Item {
	c, err := DecodeItem(it.AppendBinary(nil))
	if err != nil {
		panic(err)
	}
	return c
}

// history runs a random execution of a 3-replica system (writes executed
// by a node on its own replica with tokens read earlier from any replica,
// and anti-entropy merges between replicas) and returns every replica state
// it went through: any of them may meet any other in a real cluster.
func history(r *rand.Rand, steps int) []*Item {
	const nodes = 3
	replicas := make([]*Item, nodes)
	for i := range replicas {
		replicas[i] = NewItem(BucketID{7}, "pk", "sk")
	}
	last := make([]uint64, nodes)
	var seen []Clock
	var states []*Item
	values := []Value{val("a"), val("b"), val(""), tomb, val("long value")}
	for range steps {
		switch op := r.IntN(10); {
		case op < 4: // write on node n
			n := r.IntN(nodes)
			var ctx Clock
			if len(seen) > 0 && r.IntN(3) > 0 {
				ctx = seen[r.IntN(len(seen))]
			}
			last[n] = replicas[n].Write(uint64(n+1)*1000, ctx, values[r.IntN(len(values))], last[n]+uint64(r.IntN(3)))
		case op < 8: // anti-entropy from i to j
			i, j := r.IntN(nodes), r.IntN(nodes)
			replicas[j].Merge(clone(replicas[i]))
		default: // a client reads a replica
			seen = append(seen, replicas[r.IntN(nodes)].Context())
		}
		for _, it := range replicas {
			states = append(states, clone(it))
		}
	}
	return states
}

func merged(a, b *Item) *Item {
	m := clone(a)
	m.Merge(clone(b))
	return m
}

func same(a, b *Item) bool { return bytes.Equal(a.AppendBinary(nil), b.AppendBinary(nil)) }

// Merge is a join on the states a real execution produces: commutative,
// associative and idempotent, checked on random executions.
func TestDVVSMergeLaws(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 42))
		states := history(r, 60)
		for range 50 {
			a, b, c := states[r.IntN(len(states))], states[r.IntN(len(states))], states[r.IntN(len(states))]
			if !same(merged(a, a), a) {
				t.Fatalf("seed %d: not idempotent:\n a=%+v\n a⊔a=%+v", seed, a, merged(a, a))
			}
			if !same(merged(a, b), merged(b, a)) {
				t.Fatalf("seed %d: not commutative:\n a=%+v\n b=%+v\n a⊔b=%+v\n b⊔a=%+v", seed, a, b, merged(a, b), merged(b, a))
			}
			if !same(merged(merged(a, b), c), merged(a, merged(b, c))) {
				t.Fatalf("seed %d: not associative:\n a=%+v\n b=%+v\n c=%+v", seed, a, b, c)
			}
		}
	}
}

// After every replica has merged every other, all agree, and no value that a
// token-carrying write superseded survives.
func TestDVVSConvergence(t *testing.T) {
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 7))
		states := history(r, 80)
		// merge every state in two different orders
		a := NewItem(BucketID{7}, "pk", "sk")
		for _, s := range states {
			a.Merge(clone(s))
		}
		b := NewItem(BucketID{7}, "pk", "sk")
		for i := len(states) - 1; i >= 0; i-- {
			b.Merge(clone(states[i]))
		}
		if !same(a, b) {
			t.Fatalf("seed %d: merge order matters:\n%+v\n%+v", seed, a, b)
		}
	}
}

func TestItemEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, it := range history(r, 100) {
		it.Partition, it.Sort = "partition ✓", "sort\x00key"
		b := it.AppendBinary(nil)
		got, err := DecodeItem(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.AppendBinary(nil), b) {
			t.Fatalf("round trip differs for %+v", it)
		}
	}
}

func FuzzDecodeItem(f *testing.F) {
	it := NewItem(BucketID{1}, "pk", "sk")
	it.Write(5, nil, val("hello"), 10)
	it.Write(5, nil, tomb, 10)
	f.Add(it.AppendBinary(nil))
	f.Add([]byte{itemFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := DecodeItem(b)
		if err != nil {
			return
		}
		if !bytes.Equal(it.AppendBinary(nil), b) {
			// non-canonical varints may decode; re-encoding must then be stable
			it2, err := DecodeItem(it.AppendBinary(nil))
			if err != nil || !same(it, it2) {
				t.Fatalf("re-encoding is not stable")
			}
		}
		it.Values()
		it.Context()
	})
}
