package k2v

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
)

var gcT0 = time.UnixMilli(1700000000000)

// openGC opens a kv table on a database whose clock the test sets.
func openGC(t testing.TB, s kvSchema) (*Table[kv], *time.Time) {
	t.Helper()
	now := gcT0
	db, err := Open(DBConfig{Dir: "db", FS: NewMemFS(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tbl, err := NewTable[kv](db, s)
	if err != nil {
		t.Fatal(err)
	}
	return tbl, &now
}

func gcQueueLen(t testing.TB, tbl *Table[kv]) int {
	t.Helper()
	n := 0
	err := tbl.db.scanLocalRange(tbl.mgPrefix, prefixEnd(tbl.mgPrefix), func(_, _ []byte) (bool, error) {
		n++
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func candidates(t testing.TB, tbl *Table[kv], olderThan time.Time, max int) []GCCandidate {
	t.Helper()
	cs, err := tbl.GCCandidates(olderThan, max)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func candidateKeys(cs []GCCandidate) string {
	var s []string
	for _, c := range cs {
		s = append(s, string(c.Key[32:]))
	}
	return fmt.Sprint(s)
}

func TestGCCandidates(t *testing.T) {
	tbl, now := openGC(t, kvSchema{name: "kv"})
	mustMerge(t, tbl, &kv{"p", "a", 1, ""}, &kv{"p", "live", 1, "v"})
	*now = gcT0.Add(time.Hour)
	mustMerge(t, tbl, &kv{"q", "c", 1, ""})
	if n := gcQueueLen(t, tbl); n != 2 {
		t.Fatalf("%d tombstones queued, want 2 (live entries are not)", n)
	}
	for _, c := range []struct {
		olderThan time.Time
		max       int
		want      string
	}{
		{gcT0, 10, "[]"}, // strictly older
		{gcT0.Add(time.Millisecond), 10, "[a]"},
		{gcT0.Add(2 * time.Hour), 10, "[a c]"},
		{gcT0.Add(2 * time.Hour), 1, "[a]"},
		{gcT0.Add(2 * time.Hour), 0, "[]"},
	} {
		cs := candidates(t, tbl, c.olderThan, c.max)
		if got := candidateKeys(cs); got != c.want {
			t.Errorf("GCCandidates(%v, %d) = %s, want %s", c.olderThan.Sub(gcT0), c.max, got, c.want)
		}
	}
	cs := candidates(t, tbl, gcT0.Add(2*time.Hour), 10)
	a := cs[0]
	raw, _ := tbl.GetRaw([][]byte{a.Key})
	if !bytes.Equal(a.Value, raw[0]) || a.VHash != sha256.Sum256(raw[0]) || !a.Time.Equal(gcT0) {
		t.Errorf("candidate = %+v, stored %x", a, raw[0])
	}
	if e, err := tbl.Decode(a.Value); err != nil || e.V != "" {
		t.Errorf("candidate value decodes to %+v, %v", e, err)
	}
	if n := gcQueueLen(t, tbl); n != 2 {
		t.Errorf("candidates left the queue before GCDone: %d queued", n)
	}
}

// A tombstone overwritten by a newer value is not a candidate, and its
// queue entry goes; a tombstone replaced by a newer tombstone waits for
// the delay again.
func TestGCOverwritten(t *testing.T) {
	tbl, now := openGC(t, kvSchema{name: "kv"})
	mustMerge(t, tbl, &kv{"p", "revived", 1, ""}, &kv{"p", "again", 1, ""})
	*now = gcT0.Add(time.Minute)
	mustMerge(t, tbl, &kv{"p", "revived", 2, "v"}, &kv{"p", "again", 2, ""})
	if n := gcQueueLen(t, tbl); n != 3 {
		t.Fatalf("%d queued, want 3", n)
	}
	if cs := candidates(t, tbl, gcT0.Add(time.Second), 10); len(cs) != 0 {
		t.Errorf("candidates %s, want none", candidateKeys(cs))
	}
	if n := gcQueueLen(t, tbl); n != 1 {
		t.Errorf("%d queued after dropping the stale entries, want 1", n)
	}
	cs := candidates(t, tbl, gcT0.Add(time.Hour), 10)
	if candidateKeys(cs) != "[again]" || !cs[0].Time.Equal(gcT0.Add(time.Minute)) {
		t.Fatalf("candidates %s", candidateKeys(cs))
	}
	raw, _ := tbl.GetRaw([][]byte{cs[0].Key})
	if cs[0].VHash != sha256.Sum256(raw[0]) {
		t.Error("candidate hash is not the newer tombstone's")
	}
}

func TestDeleteIfHash(t *testing.T) {
	var hooked []string
	tbl, _ := openGC(t, kvSchema{name: "kv", updated: func(b *Batch, prev, next *kv) error {
		if next == nil {
			hooked = append(hooked, prev.SK)
		}
		return nil
	}})
	var changed []string
	tbl.OnChange(func(_ [32]byte, sort []byte) { changed = append(changed, string(sort)) })
	mustMerge(t, tbl, &kv{"p", "a", 1, ""})
	w := tbl.Watch([]byte("p"))
	defer w.Close()
	cs := candidates(t, tbl, gcT0.Add(time.Hour), 10)
	if len(cs) != 1 {
		t.Fatalf("%d candidates", len(cs))
	}
	c := cs[0]
	// a stale hash (the replica holds another version) deletes nothing
	if ok, err := tbl.DeleteIfHash(c.Key, sha256.Sum256([]byte("other"))); ok || err != nil {
		t.Fatalf("DeleteIfHash with a stale hash = %v, %v", ok, err)
	}
	if e, _ := tbl.Get([]byte("p"), []byte("a")); e == nil {
		t.Fatal("entry deleted despite a stale hash")
	}
	changed = nil
	if ok, err := tbl.DeleteIfHash(c.Key, c.VHash); !ok || err != nil {
		t.Fatalf("DeleteIfHash = %v, %v", ok, err)
	}
	if e, _ := tbl.Get([]byte("p"), []byte("a")); e != nil {
		t.Fatalf("entry still stored: %+v", e)
	}
	if fmt.Sprint(hooked) != "[a]" || fmt.Sprint(changed) != "[a]" {
		t.Errorf("Updated(next=nil) saw %v, OnChange saw %v; want [a] both", hooked, changed)
	}
	select {
	case <-w.C:
	default:
		t.Error("watch not signalled by the delete")
	}
	if ok, err := tbl.DeleteIfHash(c.Key, c.VHash); ok || err != nil {
		t.Errorf("second DeleteIfHash = %v, %v", ok, err)
	}
	if err := tbl.GCDone(c); err != nil {
		t.Fatal(err)
	}
	if n := gcQueueLen(t, tbl); n != 0 {
		t.Errorf("%d queued after GCDone", n)
	}
	mustFlush(t, tbl)
	checkAll(t, tbl)
	if n, _ := tbl.MerkleNode(cluster.Partition(c.Key[0]), nil); n.Count != 0 {
		t.Errorf("the tree still counts %d entries", n.Count)
	}
}

// Deleting on request of another replica leaves this node's queue entry,
// which the next GCCandidates drops; GCDone abandons a candidate.
func TestGCStaleAndDone(t *testing.T) {
	tbl, _ := openGC(t, kvSchema{name: "kv"})
	mustMerge(t, tbl, &kv{"p", "a", 1, ""}, &kv{"p", "b", 1, ""})
	raw, _ := tbl.GetRaw([][]byte{kvStoreKey(&kv{PK: "p", SK: "a"})})
	if ok, err := tbl.DeleteIfHash(kvStoreKey(&kv{PK: "p", SK: "a"}), sha256.Sum256(raw[0])); !ok || err != nil {
		t.Fatalf("DeleteIfHash = %v, %v", ok, err)
	}
	cs := candidates(t, tbl, gcT0.Add(time.Hour), 10)
	if candidateKeys(cs) != "[b]" {
		t.Fatalf("candidates %s, want [b]", candidateKeys(cs))
	}
	if err := tbl.GCDone(cs[0]); err != nil {
		t.Fatal(err)
	}
	if cs := candidates(t, tbl, gcT0.Add(time.Hour), 10); len(cs) != 0 {
		t.Errorf("candidates %s after GCDone", candidateKeys(cs))
	}
	if n := gcQueueLen(t, tbl); n != 0 {
		t.Errorf("%d queued", n)
	}
	if e, _ := tbl.Get([]byte("p"), []byte("b")); e == nil {
		t.Error("GCDone deleted the entry")
	}
}

func TestDropPartition(t *testing.T) {
	removed := 0
	tbl, _ := openGC(t, kvSchema{name: "kv", updated: func(b *Batch, prev, next *kv) error {
		if next == nil {
			removed++
		}
		return nil
	}})
	for i := range 100 {
		mustMerge(t, tbl, &kv{"hot", fmt.Sprint(i), 1, "v"}, &kv{fmt.Sprint("pk", i), "s", 1, "v"})
	}
	mustFlush(t, tbl)
	p := cluster.Partition(kvStoreKey(&kv{PK: "hot"})[0])
	want := 0
	tbl.ScanPartition(p, nil, func(_, _ []byte) (bool, error) { want++; return true, nil })
	before := entries(t, tbl)
	var after []byte
	total, calls := 0, 0
	for {
		last, n, err := tbl.DropPartition(p, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if last == nil {
			break
		}
		total += n
		after = last
		if calls++; calls > 100 {
			t.Fatal("DropPartition does not end")
		}
	}
	if total != want || removed != want {
		t.Errorf("dropped %d entries (hook saw %d), want %d", total, removed, want)
	}
	afterDrop := entries(t, tbl)
	for k, v := range before {
		if cluster.Partition(k[0]) == p {
			if _, ok := afterDrop[k]; ok {
				t.Fatalf("entry %x of the dropped partition remains", k)
			}
		} else if afterDrop[k] != v {
			t.Fatalf("entry %x of another partition changed", k)
		}
	}
	mustFlush(t, tbl)
	checkAll(t, tbl)
	if n, _ := tbl.MerkleNode(p, nil); n != (MerkleNode{}) {
		t.Errorf("root of the dropped partition = %+v", n)
	}
}

// Removing an item subtracts its counts from the local index counters.
func TestItemCountsOnDelete(t *testing.T) {
	ts := openTestStore(t, nil)
	b := BucketID{1}
	ts.put(t, b, "pk", "sk", "hello")
	counts := func() Counts {
		t.Helper()
		v, err := ts.db.GetLocal(localCounterKey(b, "pk"))
		if err != nil || v == nil {
			t.Fatalf("local counter = %v, %v", v, err)
		}
		s, err := decodeCounterSlot(v)
		if err != nil {
			t.Fatal(err)
		}
		return s.Counts
	}
	if c := counts(); c.Entries != 1 || c.Bytes != 5 {
		t.Fatalf("counts after insert = %+v", c)
	}
	h := Hash(itemPartitionKey(b, "pk"))
	sk := append(h[:], "sk"...)
	raw, err := ts.items.Table().GetRaw([][]byte{sk})
	if err != nil || raw[0] == nil {
		t.Fatalf("GetRaw = %v, %v", raw, err)
	}
	if ok, err := ts.items.Table().DeleteIfHash(sk, sha256.Sum256(raw[0])); !ok || err != nil {
		t.Fatalf("DeleteIfHash = %v, %v", ok, err)
	}
	if c := counts(); c != (Counts{}) {
		t.Errorf("counts after delete = %+v, want zero", c)
	}
}
