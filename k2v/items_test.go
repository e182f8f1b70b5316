package k2v

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/grangeio/grange/cluster"
)

var testNode = cluster.NodeID{0x4b, 0x8f, 0x2a, 0x9c, 0x1d, 0x3e, 0x5f, 0x60, 9}

type testStore struct {
	fs    vfs.FS
	db    *DB
	items *Items
	now   time.Time
}

func openTestStore(t testing.TB, fs vfs.FS) *testStore {
	t.Helper()
	if fs == nil {
		fs = vfs.NewMem()
	}
	db, err := Open(DBConfig{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{fs: fs, db: db, now: time.UnixMilli(1700000000000)}
	ts.items, err = NewItems(db, ItemsConfig{Node: testNode, Now: func() time.Time { return ts.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return ts
}

var ctx = context.Background()

func str(s string) *string { return &s }
func u64(v uint64) *uint64 { return &v }

func (ts *testStore) put(t testing.TB, b BucketID, pk, sk, v string) {
	t.Helper()
	if err := ts.items.Insert(ctx, b, Write{Partition: pk, Sort: sk, Value: val(v)}); err != nil {
		t.Fatal(err)
	}
}

func TestInsertAndGet(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	if it, err := ts.items.Get(ctx, b, "pk", "sk"); err != nil || it != nil {
		t.Fatalf("Get of a missing item = %v, %v", it, err)
	}
	ts.put(t, b, "pk", "sk", "A")
	it, err := ts.items.Get(ctx, b, "pk", "sk")
	if err != nil {
		t.Fatal(err)
	}
	want := Clock{{testNode.Uint64(), 1700000000001}}
	if got := it.Context(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("context = %v, want %v", got, want)
	}
	// another bucket and another partition key do not see it
	if it, _ := ts.items.Get(ctx, BucketID{2}, "pk", "sk"); it != nil {
		t.Error("item visible in another bucket")
	}
	if it, _ := ts.items.Get(ctx, b, "pk2", "sk"); it != nil {
		t.Error("item visible in another partition")
	}
}

// Timestamps never go backwards, across items and restarts, even when the
// clock does.
func TestTimestampsMonotonic(t *testing.T) {
	fs := vfs.NewMem()
	ts := openTestStore(t, fs)
	b := BucketID{1}
	ts.put(t, b, "pk", "a", "1")
	ts.now = ts.now.Add(-time.Hour)
	ts.put(t, b, "pk", "b", "2")
	a, _ := ts.items.Get(ctx, b, "pk", "a")
	bb, _ := ts.items.Get(ctx, b, "pk", "b")
	ta, tb := a.Context()[0].Time, bb.Context()[0].Time
	if tb <= ta {
		t.Errorf("second write time %d <= first %d after the clock went back", tb, ta)
	}
	ts.db.Close()

	ts2 := openTestStore(t, fs)
	ts2.now = ts.now.Add(-time.Hour)
	ts2.put(t, b, "pk", "c", "3")
	c, _ := ts2.items.Get(ctx, b, "pk", "c")
	if tc := c.Context()[0].Time; tc <= tb {
		t.Errorf("write after restart has time %d <= %d", tc, tb)
	}
}

// §10's examples, on sort keys a b c d.1 d.2 e.
func TestRangeExamples(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	for _, sk := range []string{"e", "a", "d.2", "c", "b", "d.1"} {
		ts.put(t, b, "pk", sk, sk)
	}
	tests := []struct {
		name  string
		r     Range
		items string
		next  string // "" = more false
		err   bool
	}{
		{"all", Range{}, "a b c d.1 d.2 e", "", false},
		{"start end", Range{Start: str("c"), End: str("dynamite")}, "c d.1 d.2", "", false},
		{"reverse", Range{Start: str("c"), Reverse: true, End: str("a")}, "c b", "", false},
		{"limit", Range{Limit: u64(1)}, "a", "b", false},
		{"prefix", Range{Prefix: str("d")}, "d.1 d.2", "", false},
		{"prefix reverse", Range{Prefix: str("d."), Reverse: true}, "d.2 d.1", "", false},
		{"prefix limit exact", Range{Prefix: str("d."), Limit: u64(2)}, "d.1 d.2", "", false},
		{"bad start", Range{Prefix: str("a"), Start: str("bx")}, "", "", true},
		{"limit 0", Range{Limit: u64(0)}, "", "a", false},
		{"limit 0 empty", Range{Limit: u64(0), Prefix: str("z")}, "", "", false},
		{"reverse all", Range{Reverse: true}, "e d.2 d.1 c b a", "", false},
		{"reverse limit", Range{Reverse: true, Limit: u64(2)}, "e d.2", "d.1", false},
		{"reverse start prefix", Range{Reverse: true, Prefix: str("d"), Start: str("d.1")}, "d.1", "", false},
		{"end before start", Range{Start: str("c"), End: str("b")}, "", "", false},
		{"end equals start", Range{Start: str("c"), End: str("c")}, "", "", false},
		{"reverse end", Range{Reverse: true, End: str("d.1")}, "e d.2", "", false},
		{"empty prefix", Range{Prefix: str("")}, "a b c d.1 d.2 e", "", false},
		{"start past end of keys", Range{Start: str("f")}, "", "", false},
		{"start between keys", Range{Start: str("bb"), Limit: u64(2)}, "c d.1", "d.2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, page, err := ts.items.ReadRange(ctx, b, "pk", tt.r, Filter{}, nil)
			if tt.err {
				if !errors.Is(err, ErrBadRange) {
					t.Fatalf("err = %v, want ErrBadRange", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range items {
				got = append(got, it.Sort)
			}
			if g := strings.Join(got, " "); g != tt.items {
				t.Errorf("items = %q, want %q", g, tt.items)
			}
			next := ""
			if page.More {
				next = *page.Next
			} else if page.Next != nil {
				t.Errorf("more=false with nextStart %q", *page.Next)
			}
			if next != tt.next {
				t.Errorf("nextStart = %q, want %q", next, tt.next)
			}
		})
	}
}

func TestRangeFiltersAndCap(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	var writes []Write
	for i := range MaxPageItems + 10 {
		writes = append(writes, Write{Partition: "big", Sort: fmt.Sprintf("%05d", i), Value: val("v")})
	}
	if err := ts.items.Insert(ctx, b, writes...); err != nil {
		t.Fatal(err)
	}
	items, page, err := ts.items.ReadRange(ctx, b, "big", Range{}, Filter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != MaxPageItems || !page.More || *page.Next != fmt.Sprintf("%05d", MaxPageItems) {
		t.Fatalf("got %d items, more=%v next=%v", len(items), page.More, page.Next)
	}
	// a budget stops the page early, the item that spent it included
	budget := &Budget{Bytes: 3}
	items, page, _ = ts.items.ReadRange(ctx, b, "big", Range{}, Filter{}, budget)
	if len(items) != 3 || !page.More || *page.Next != "00003" {
		t.Fatalf("budget: got %d items, more=%v next=%v", len(items), page.More, *page.Next)
	}

	// filters apply before the limit
	ts.put(t, b, "f", "a", "1")
	ts.put(t, b, "f", "b", "1")
	ts.put(t, b, "f", "b", "2") // conflict
	ts.put(t, b, "f", "c", "1")
	if _, err := ts.items.DeleteItem(ctx, b, "f", "c"); err != nil {
		t.Fatal(err)
	}
	ts.put(t, b, "f", "d", "1")
	ts.put(t, b, "f", "d", "2")
	sorts := func(f Filter, r Range) string {
		items, page, err := ts.items.ReadRange(ctx, b, "f", r, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, it := range items {
			s = append(s, it.Sort)
		}
		if page.More {
			s = append(s, "more:"+*page.Next)
		}
		return strings.Join(s, " ")
	}
	for _, tt := range []struct {
		f    Filter
		r    Range
		want string
	}{
		{Filter{}, Range{}, "a b d"},
		{Filter{Tombstones: true}, Range{}, "a b c d"},
		{Filter{ConflictsOnly: true}, Range{}, "b d"},
		{Filter{ConflictsOnly: true}, Range{Limit: u64(1)}, "b more:d"},
		{Filter{}, Range{Limit: u64(2)}, "a b more:d"},
	} {
		if got := sorts(tt.f, tt.r); got != tt.want {
			t.Errorf("%+v %+v: got %q, want %q", tt.f, tt.r, got, tt.want)
		}
	}
}

func TestDeleteRangeAndIndex(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	ts.put(t, b, "mail", "1", "hello")
	ts.put(t, b, "mail", "2", "world")
	ts.put(t, b, "mail", "2", "again") // conflict
	ts.put(t, b, "keys", "k", "x")
	index := func() string {
		entries, _, err := ts.items.ReadIndex(ctx, b, Range{})
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range entries {
			c := e.Counts
			s = append(s, fmt.Sprintf("%s:%d/%d/%d/%d", e.Partition, c.Entries, c.Conflicts, c.Values, c.Bytes))
		}
		return strings.Join(s, " ")
	}
	if got, want := index(), "keys:1/0/1/1 mail:2/1/3/15"; got != want {
		t.Errorf("index = %q, want %q", got, want)
	}
	n, err := ts.items.DeleteRange(ctx, b, "mail", Range{Start: str("2")})
	if err != nil || n != 1 {
		t.Fatalf("DeleteRange = %d, %v", n, err)
	}
	if got, want := index(), "keys:1/0/1/1 mail:1/0/1/5"; got != want {
		t.Errorf("index = %q, want %q", got, want)
	}
	// repeating deletes nothing
	if n, _ := ts.items.DeleteRange(ctx, b, "mail", Range{Start: str("2")}); n != 0 {
		t.Errorf("second DeleteRange = %d", n)
	}
	n, _ = ts.items.DeleteRange(ctx, b, "mail", Range{})
	if n != 1 {
		t.Errorf("DeleteRange all = %d", n)
	}
	if got, want := index(), "keys:1/0/1/1"; got != want {
		t.Errorf("index = %q, want %q", got, want)
	}
	if empty, _ := ts.items.BucketEmpty(ctx, b); empty {
		t.Error("bucket reported empty")
	}
	ts.items.DeleteRange(ctx, b, "keys", Range{})
	if empty, _ := ts.items.BucketEmpty(ctx, b); !empty {
		t.Error("bucket not reported empty")
	}
	// deleted items remain as tombstones
	it, _ := ts.items.Get(ctx, b, "mail", "2")
	if it == nil || !it.IsTombstone() {
		t.Errorf("item after delete = %+v", it)
	}
}

func TestPollItem(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	// already changed: immediate
	ts.put(t, b, "pk", "sk", "A")
	it, changed, err := ts.items.PollItem(ctx, b, "pk", "sk", Clock{}, time.Hour)
	if err != nil || !changed || string(it.Values()[0].Data) != "A" {
		t.Fatalf("PollItem = %v, %v, %v", it, changed, err)
	}
	token := it.Context()
	// timeout
	_, changed, err = ts.items.PollItem(ctx, b, "pk", "sk", token, 20*time.Millisecond)
	if err != nil || changed {
		t.Fatalf("PollItem timeout = %v, %v", changed, err)
	}
	// woken by a write of that item, not by another one
	done := make(chan *Item)
	go func() {
		it, _, _ := ts.items.PollItem(ctx, b, "pk", "sk", token, time.Minute)
		done <- it
	}()
	time.Sleep(10 * time.Millisecond)
	ts.put(t, b, "pk", "other", "X")
	select {
	case it := <-done:
		t.Fatalf("woken by another item: %+v", it)
	case <-time.After(20 * time.Millisecond):
	}
	ts.put(t, b, "pk", "sk", "B")
	select {
	case it := <-done:
		if len(it.Values()) != 2 {
			t.Errorf("values = %s", valuesString(it.Values()))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("poll not woken")
	}
	// missing item with the empty token returns on first write
	go func() {
		it, _, _ := ts.items.PollItem(ctx, b, "pk", "new", Clock{}, time.Minute)
		done <- it
	}()
	time.Sleep(10 * time.Millisecond)
	ts.put(t, b, "pk", "new", "N")
	select {
	case it := <-done:
		if it == nil {
			t.Fatal("nil item")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("poll of a missing item not woken")
	}
	// cancellation
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := ts.items.PollItem(cctx, b, "pk", "sk", Clock{{testNode.Uint64(), 1 << 60}}, time.Minute); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled poll: %v", err)
	}
}

func TestPollRange(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	ts.put(t, b, "log", "001", "a")
	ts.put(t, b, "log", "002", "b")
	ts.put(t, b, "other", "001", "x")
	if _, err := ts.items.DeleteItem(ctx, b, "log", "002"); err != nil {
		t.Fatal(err)
	}
	r := PollRange{}
	items, marker, changed, err := ts.items.PollRange(ctx, b, "log", r, nil, time.Minute)
	if err != nil || !changed || len(items) != 2 {
		t.Fatalf("initial PollRange: %d items, %v, %v", len(items), changed, err)
	}
	// round trip through the wire form
	marker, err = ParseSeenMarker(marker.Encode())
	if err != nil {
		t.Fatal(err)
	}
	// nothing new: timeout
	_, _, changed, err = ts.items.PollRange(ctx, b, "log", r, marker, 20*time.Millisecond)
	if err != nil || changed {
		t.Fatalf("PollRange with nothing new: %v, %v", changed, err)
	}
	// a write wakes it and only the new item is returned
	done := make(chan []*Item)
	go func() {
		items, m, _, _ := ts.items.PollRange(ctx, b, "log", r, marker, time.Minute)
		marker = m
		done <- items
	}()
	time.Sleep(10 * time.Millisecond)
	ts.put(t, b, "log", "003", "c")
	select {
	case items := <-done:
		if len(items) != 1 || items[0].Sort != "003" {
			t.Fatalf("woken with %d items", len(items))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("PollRange not woken")
	}
	// a change outside the range does not count
	pr := PollRange{Prefix: str("00"), End: str("005")}
	_, m2, _, _ := ts.items.PollRange(ctx, b, "log", pr, nil, time.Minute)
	ts.put(t, b, "log", "009", "z")
	if _, _, changed, _ := ts.items.PollRange(ctx, b, "log", pr, m2, 20*time.Millisecond); changed {
		t.Error("woken by a change outside the range")
	}
	ts.put(t, b, "log", "001", "a2")
	items, _, changed, _ = ts.items.PollRange(ctx, b, "log", pr, m2, time.Minute)
	if !changed || len(items) != 1 || items[0].Sort != "001" {
		t.Errorf("after rewrite: changed=%v items=%d", changed, len(items))
	}
}

// More changes than fit one answer: the following polls return the rest at
// once, and every item is reported exactly once overall.
func TestPollRangeCapped(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	_, marker, _, _ := ts.items.PollRange(ctx, b, "p", PollRange{}, nil, time.Minute)
	var writes []Write
	for i := range 2*MaxPageItems + 5 {
		writes = append(writes, Write{Partition: "p", Sort: fmt.Sprintf("%05d", i), Value: val("v")})
	}
	if err := ts.items.Insert(ctx, b, writes...); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for round := 0; ; round++ {
		items, m, changed, err := ts.items.PollRange(ctx, b, "p", PollRange{}, marker, 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if !changed {
			break
		}
		if round > 5 {
			t.Fatal("too many rounds")
		}
		for _, it := range items {
			seen[it.Sort]++
		}
		marker, _ = ParseSeenMarker(m.Encode())
	}
	if len(seen) != len(writes) {
		t.Errorf("saw %d items, want %d", len(seen), len(writes))
	}
	for sk, n := range seen {
		if n != 1 {
			t.Errorf("%s seen %d times", sk, n)
		}
	}
	if len(marker.Items) != 0 {
		t.Errorf("final marker keeps %d item entries", len(marker.Items))
	}
}

func TestKeyLimits(t *testing.T) {
	ts := openTestStore(t, nil)
	long := strings.Repeat("k", MaxKeyBytes+1)
	if err := ts.items.Insert(ctx, BucketID{}, Write{Partition: long, Sort: "s"}); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("long partition key: %v", err)
	}
	if err := ts.items.Insert(ctx, BucketID{}, Write{Partition: "p", Sort: long}); !errors.Is(err, ErrKeyTooLong) {
		t.Errorf("long sort key: %v", err)
	}
	ok := strings.Repeat("k", MaxKeyBytes)
	if err := ts.items.Insert(ctx, BucketID{}, Write{Partition: ok, Sort: ok, Value: val("v")}); err != nil {
		t.Errorf("keys at the limit: %v", err)
	}
}

func FuzzParseSeenMarker(f *testing.F) {
	m := &SeenMarker{Clock: Clock{{1, 5}, {7, 9}}, Items: map[string]Clock{"a": {{3, 4}}}}
	f.Add(m.Encode())
	f.Add("")
	f.Add("AQA=")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseSeenMarker(s)
		if err != nil {
			return
		}
		m2, err := ParseSeenMarker(m.Encode())
		if err != nil || m2.Encode() != m.Encode() {
			t.Fatalf("marker %q does not round-trip: %v", s, err)
		}
	})
}

// Index counters reach the counter table in the background, and a crash
// before their publication loses nothing: local counters are republished
// at the next start.
func TestCounterPublication(t *testing.T) {
	fs := NewMemFS()
	ts := openTestStore(t, fs)
	b := BucketID{1}
	ts.items.Start()
	ts.put(t, b, "pk", "a", "xyz")
	deadline := time.Now().Add(5 * time.Second)
	for {
		e, err := ts.items.counters.Get(b[:], []byte("pk"))
		if err != nil {
			t.Fatal(err)
		}
		if e != nil && e.aggregate(ts.items.isNode) == (Counts{1, 0, 1, 3}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter not published in the background: %+v", e)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := ts.items.Close(); err != nil {
		t.Fatal(err)
	}
	ts.db.Close()

	// a write whose counter is never published before the "crash"
	ts2 := openTestStore(t, fs)
	ts2.put(t, b, "pk", "b", "12")
	if e, _ := ts2.items.counters.Get(b[:], []byte("pk")); e.aggregate(ts2.items.isNode) != (Counts{1, 0, 1, 3}) {
		t.Fatalf("counter published synchronously: %+v", e)
	}
	ts2.db.Close() // no Items.Close: pending publications are lost

	ts3 := openTestStore(t, fs)
	entries, _, err := ts3.items.ReadIndex(ctx, b, Range{})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Counts != (Counts{2, 0, 2, 5}) {
		t.Errorf("index after restart = %+v, want pk with 2 entries, 5 bytes", entries)
	}
}
