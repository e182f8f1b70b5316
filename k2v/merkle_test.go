package k2v

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
)

// openKVOn opens (or reopens) a database on fs with a kv table.
func openKVOn(t testing.TB, fs FS, s kvSchema) (*DB, *Table[kv]) {
	t.Helper()
	db, err := Open(DBConfig{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tbl, err := NewTable[kv](db, s)
	if err != nil {
		t.Fatal(err)
	}
	return db, tbl
}

// tableRemote serves a table as a MerkleRemote, counting the calls.
type tableRemote struct {
	t     *Table[kv]
	calls atomic.Int64
}

func (r *tableRemote) Node(_ context.Context, p cluster.Partition, prefix []byte) (MerkleNode, error) {
	r.calls.Add(1)
	return r.t.MerkleNode(p, prefix)
}

func (r *tableRemote) Children(_ context.Context, p cluster.Partition, prefix []byte) ([]MerkleChild, error) {
	r.calls.Add(1)
	return r.t.MerkleChildren(p, prefix)
}

func (r *tableRemote) Leaves(_ context.Context, p cluster.Partition, prefix []byte) ([]MerkleLeaf, error) {
	r.calls.Add(1)
	return r.t.MerkleLeaves(p, prefix)
}

// randomKV returns a random write. One partition key ("hot") has many sort
// keys, so that its partition has buckets with several leaves; the others
// spread over the partitions.
func randomKV(r *rand.Rand) *kv {
	vals := []string{"", "a", "b", "c"} // "" is a tombstone
	if r.IntN(3) == 0 {
		return &kv{"hot", fmt.Sprint(r.IntN(3000)), uint64(1 + r.IntN(5)), vals[r.IntN(len(vals))]}
	}
	return &kv{fmt.Sprint("pk", r.IntN(300)), fmt.Sprint(r.IntN(4)), uint64(1 + r.IntN(5)), vals[r.IntN(len(vals))]}
}

func mustMerge(t testing.TB, tbl *Table[kv], es ...*kv) {
	t.Helper()
	if err := tbl.Merge(es...); err != nil {
		t.Fatal(err)
	}
}

func mustFlush(t testing.TB, tbls ...*Table[kv]) {
	t.Helper()
	for _, tbl := range tbls {
		if err := tbl.FlushMerkle(); err != nil {
			t.Fatal(err)
		}
	}
}

// entries returns every stored entry of tbl: store key → encoded value.
func entries(t testing.TB, tbl *Table[kv]) map[string]string {
	t.Helper()
	out := map[string]string{}
	for p := range 256 {
		err := tbl.ScanPartition(cluster.Partition(p), nil, func(key, value []byte) (bool, error) {
			out[string(key)] = string(value)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func checkAll(t testing.TB, tbl *Table[kv]) {
	t.Helper()
	mustFlush(t, tbl)
	for p := range 256 {
		if err := tbl.merkleCheck(cluster.Partition(p)); err != nil {
			t.Fatal(err)
		}
	}
}

// sameTrees fails unless a and b have the same roots and level-1 nodes in
// every partition.
func sameTrees(t testing.TB, a, b *Table[kv]) {
	t.Helper()
	for p := range 256 {
		ra, _ := a.MerkleNode(cluster.Partition(p), nil)
		rb, _ := b.MerkleNode(cluster.Partition(p), nil)
		if ra != rb {
			t.Fatalf("partition %d: roots %x/%d and %x/%d differ", p, ra.Sum, ra.Count, rb.Sum, rb.Count)
		}
		ca, _ := a.MerkleChildren(cluster.Partition(p), nil)
		cb, _ := b.MerkleChildren(cluster.Partition(p), nil)
		if !slices.Equal(ca, cb) {
			t.Fatalf("partition %d: children differ", p)
		}
	}
}

// push runs MerkleDiff from src to dst over every partition and merges
// what it finds into dst, as anti-entropy does.
func push(t testing.TB, src, dst *Table[kv]) (pushed int) {
	t.Helper()
	remote := &tableRemote{t: dst}
	for p := range 256 {
		err := src.MerkleDiff(ctx, cluster.Partition(p), remote, func(keys [][]byte) error {
			vals, err := src.GetRaw(keys)
			if err != nil {
				return err
			}
			pushed += len(keys)
			return dst.MergeRaw(vals)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return pushed
}

func TestMerkleConverge(t *testing.T) {
	for seed := range uint64(2) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			_, a := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
			_, b := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
			for range 100 {
				var ea, eb []*kv
				for range 20 {
					e := randomKV(r)
					c := *e
					switch r.IntN(3) {
					case 0:
						ea = append(ea, e)
					case 1:
						eb = append(eb, e)
					default:
						ea, eb = append(ea, e), append(eb, &c)
					}
				}
				mustMerge(t, a, ea...)
				mustMerge(t, b, eb...)
			}
			mustFlush(t, a, b)
			if push(t, a, b) == 0 {
				t.Fatal("nothing to push from a diverged replica")
			}
			if push(t, b, a) == 0 {
				t.Fatal("nothing to push back")
			}
			mustFlush(t, a, b)
			sameTrees(t, a, b)
			if ea, eb := entries(t, a), entries(t, b); !mapsEqual(ea, eb) {
				t.Fatalf("entries differ after sync: %d and %d", len(ea), len(eb))
			}
			checkAll(t, a)
			checkAll(t, b)
			// a second round finds nothing
			if n := push(t, a, b) + push(t, b, a); n != 0 {
				t.Errorf("second sync pushed %d entries", n)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// The diff reports exactly the local entries the remote lacks or holds in
// another version, never those only the remote holds.
func TestMerkleDiffExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	_, a := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	_, b := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	for range 4000 {
		e := randomKV(r)
		c := *e
		mustMerge(t, a, e)
		switch r.IntN(4) {
		case 0: // b lacks it
		case 1: // b holds another version
			c.T += 10
			c.V = "other"
			mustMerge(t, b, &c)
		default:
			mustMerge(t, b, &c)
		}
		if r.IntN(5) == 0 {
			mustMerge(t, b, randomKV(r)) // b only, or b's version
		}
	}
	mustFlush(t, a, b)
	ea, eb := entries(t, a), entries(t, b)
	want := map[string]bool{}
	for k, v := range ea {
		if w, ok := eb[k]; !ok || w != v {
			want[k] = true
		}
	}
	got := map[string]bool{}
	remote := &tableRemote{t: b}
	for p := range 256 {
		err := a.MerkleDiff(ctx, cluster.Partition(p), remote, func(keys [][]byte) error {
			if len(keys) == 0 || len(keys) > diffChunk {
				t.Errorf("chunk of %d keys", len(keys))
			}
			for _, k := range keys {
				if got[string(k)] {
					t.Errorf("key %x reported twice", k)
				}
				got[string(k)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(want) < diffChunk {
		t.Fatalf("only %d differences: the test does not fill a chunk", len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("difference %x not reported", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("key %x reported but equal on both sides", k)
		}
	}
}

// Against an empty remote (a new or wiped replica) the diff reports every
// local entry, once, in full chunks, with a single remote call per
// partition: the remote's empty tree is not walked.
func TestMerkleDiffEmptyRemote(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	_, a := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	_, b := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	for range 4000 {
		mustMerge(t, a, randomKV(r))
	}
	mustFlush(t, a)
	want := entries(t, a)
	got := map[string]bool{}
	remote := &tableRemote{t: b}
	biggest := 0
	for p := range 256 {
		remote.calls.Store(0)
		err := a.MerkleDiff(ctx, cluster.Partition(p), remote, func(keys [][]byte) error {
			if len(keys) == 0 || len(keys) > diffChunk {
				t.Errorf("chunk of %d keys", len(keys))
			}
			biggest = max(biggest, len(keys))
			for _, k := range keys {
				if got[string(k)] {
					t.Errorf("key %x reported twice", k)
				}
				got[string(k)] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := remote.calls.Load(); n != 1 {
			t.Errorf("partition %d: %d remote calls, want 1", p, n)
		}
	}
	if biggest != diffChunk {
		t.Errorf("largest chunk %d, want %d: the test does not page", biggest, diffChunk)
	}
	if len(got) != len(want) {
		t.Errorf("%d keys reported, want the %d entries", len(got), len(want))
	}
	// and the push brings the empty replica to the same trees
	push(t, a, b)
	mustFlush(t, b)
	sameTrees(t, a, b)
}

func TestMerkleDiffIdentical(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	_, a := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	_, b := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	var es []*kv
	for range 1500 {
		es = append(es, randomKV(r))
	}
	for _, e := range es {
		c := *e
		mustMerge(t, a, &c)
	}
	for _, i := range r.Perm(len(es)) {
		c := *es[i]
		mustMerge(t, b, &c)
	}
	mustFlush(t, a, b)
	remote := &tableRemote{t: b}
	for p := range 256 {
		remote.calls.Store(0)
		err := a.MerkleDiff(ctx, cluster.Partition(p), remote, func(keys [][]byte) error {
			t.Errorf("partition %d: found %d keys on identical trees", p, len(keys))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := remote.calls.Load(); n != 1 {
			t.Errorf("partition %d: %d remote calls, want 1", p, n)
		}
	}
}

// The tree depends on the final entries only: not on the order of writes,
// the intermediate versions, or when the updater ran.
func TestMerkleOrderIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	var final []*kv // distinct keys, final versions
	seen := map[string]bool{}
	for len(final) < 1000 {
		e := randomKV(r)
		e.T = 10
		if !seen[e.PK+"/"+e.SK] {
			seen[e.PK+"/"+e.SK] = true
			final = append(final, e)
		}
	}
	// a: in order, one entry per batch, flushed at the end
	_, a := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	for _, e := range final {
		c := *e
		mustMerge(t, a, &c)
	}
	mustFlush(t, a)
	// b: shuffled, through older versions, deletes of other entries,
	// flushed at random points
	_, b := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	for _, i := range r.Perm(len(final)) {
		e := *final[i]
		old := e
		old.T, old.V = 1, "old"
		mustMerge(t, b, &old)
		if r.IntN(10) == 0 {
			mustFlush(t, b)
		}
		if r.IntN(10) == 0 {
			extra := &kv{"extra", fmt.Sprint(i), 1, "x"}
			mustMerge(t, b, extra)
			mustFlush(t, b)
			enc, _ := b.GetRaw([][]byte{kvStoreKey(extra)})
			if ok, err := b.DeleteIfHash(kvStoreKey(extra), sha256.Sum256(enc[0])); !ok || err != nil {
				t.Fatalf("DeleteIfHash = %v, %v", ok, err)
			}
		}
		mustMerge(t, b, &e)
	}
	mustFlush(t, b)
	// c: all in one batch
	_, c := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	var all []*kv
	for _, e := range final {
		cp := *e
		all = append(all, &cp)
	}
	mustMerge(t, c, all...)
	mustFlush(t, c)
	sameTrees(t, a, b)
	sameTrees(t, a, c)
	checkAll(t, b)
}

func kvStoreKey(e *kv) []byte {
	h := Hash([]byte(e.PK))
	return append(h[:], e.SK...)
}

// A crash with updates queued loses none: after reopening, the updater
// resumes and the tree matches one rebuilt from the entries.
func TestMerkleCrashResume(t *testing.T) {
	fs := NewMemFS()
	db, tbl := openKVOn(t, fs, kvSchema{name: "kv"})
	r := rand.New(rand.NewPCG(9, 9))
	var es []*kv
	for range 3000 {
		es = append(es, randomKV(r))
	}
	for i := 0; i < len(es); i += 10 {
		mustMerge(t, tbl, es[i:i+10]...)
	}
	// part of the queue is applied, then the process "crashes"
	if _, n, err := tbl.merkleStep(nil, merkleBatch); err != nil || n != merkleBatch {
		t.Fatalf("merkleStep = %d, %v", n, err)
	}
	before, _ := tbl.MerklePending()
	if before == 0 {
		t.Fatal("nothing left queued")
	}
	db.Close()

	db, tbl = openKVOn(t, fs, kvSchema{name: "kv"})
	if n, _ := tbl.MerklePending(); n != before {
		t.Fatalf("%d updates queued after reopening, want %d", n, before)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := tbl.StartMerkle(cctx)
	waitFor(t, func() bool { n, _ := tbl.MerklePending(); return n == 0 })
	cancel()
	<-done
	for p := range 256 {
		if err := tbl.merkleCheck(cluster.Partition(p)); err != nil {
			t.Fatal(err)
		}
	}
	// the same entries written into a fresh database give the same tree
	_, fresh := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	for _, e := range es {
		c := *e
		mustMerge(t, fresh, &c)
	}
	mustFlush(t, fresh)
	sameTrees(t, tbl, fresh)
	_ = db
}

// waitFor polls cond until it holds, failing after a deadline.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(time.Millisecond)
	}
}

// The updater keeps up with concurrent writers and flushes, and stops when
// the DB closes.
func TestMerkleConcurrent(t *testing.T) {
	db, tbl := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	done := tbl.StartMerkle(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 0))
			for i := range 500 {
				if err := tbl.Merge(randomKV(r)); err != nil {
					t.Error(err)
					return
				}
				if i%100 == 0 {
					if err := tbl.FlushMerkle(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, func() bool { n, _ := tbl.MerklePending(); return n == 0 })
	checkAll(t, tbl)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("updater still running after Close")
	}
	if err := tbl.FlushMerkle(); !errors.Is(err, ErrClosed) {
		t.Errorf("FlushMerkle after Close = %v", err)
	}
}

func TestMerkleEmptyAfterDeletes(t *testing.T) {
	_, tbl := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	var keys [][]byte
	for i := range 50 {
		e := &kv{"hot", fmt.Sprint(i), 1, "v"}
		mustMerge(t, tbl, e)
		keys = append(keys, kvStoreKey(e))
	}
	mustFlush(t, tbl)
	p := cluster.Partition(keys[0][0])
	if n, _ := tbl.MerkleNode(p, nil); n.Count != 50 {
		t.Fatalf("root count %d, want 50", n.Count)
	}
	vals, _ := tbl.GetRaw(keys)
	for i, k := range keys {
		if ok, err := tbl.DeleteIfHash(k, sha256.Sum256(vals[i])); !ok || err != nil {
			t.Fatalf("DeleteIfHash = %v, %v", ok, err)
		}
	}
	mustFlush(t, tbl)
	if n, _ := tbl.MerkleNode(p, nil); n != (MerkleNode{}) {
		t.Errorf("root of an emptied partition = %+v", n)
	}
	if c, _ := tbl.MerkleChildren(p, nil); len(c) != 0 {
		t.Errorf("emptied partition has %d children", len(c))
	}
	checkAll(t, tbl)
}

func TestMerklePrefixLengths(t *testing.T) {
	_, tbl := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	if _, err := tbl.MerkleNode(0, make([]byte, 3)); err == nil {
		t.Error("MerkleNode accepted a 3-byte prefix")
	}
	if _, err := tbl.MerkleChildren(0, make([]byte, 2)); err == nil {
		t.Error("MerkleChildren accepted a bucket")
	}
	if _, err := tbl.MerkleLeaves(0, make([]byte, 1)); err == nil {
		t.Error("MerkleLeaves accepted a 1-byte prefix")
	}
}

// A leaf, its bucket, and the bucket's ancestors agree after an update.
func TestMerkleLeavesAndNodes(t *testing.T) {
	_, tbl := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	e := &kv{"p", "s", 1, "v"}
	mustMerge(t, tbl, e)
	mustFlush(t, tbl)
	sk := kvStoreKey(e)
	kh := sha256.Sum256(sk)
	vals, _ := tbl.GetRaw([][]byte{sk, kvStoreKey(&kv{PK: "absent"})})
	if vals[1] != nil {
		t.Errorf("GetRaw of an absent key = %x", vals[1])
	}
	vh := sha256.Sum256(vals[0])
	p := cluster.Partition(sk[0])
	leaves, err := tbl.MerkleLeaves(p, kh[:2])
	if err != nil || len(leaves) != 1 {
		t.Fatalf("MerkleLeaves = %v, %v", leaves, err)
	}
	if l := leaves[0]; l.KHash != kh || l.VHash != vh || !bytes.Equal(l.Key, sk) {
		t.Errorf("leaf = %x/%x/%x, want %x/%x/%x", l.KHash, l.VHash, l.Key, kh, vh, sk)
	}
	want := MerkleNode{Sum: merkleTerm(&kh, &vh), Count: 1}
	for level := range merkleDepth + 1 {
		if n, _ := tbl.MerkleNode(p, kh[:level]); n != want {
			t.Errorf("node at level %d = %+v, want %+v", level, n, want)
		}
	}
	if c, _ := tbl.MerkleChildren(p, kh[:1]); len(c) != 1 || c[0].Byte != kh[1] || c[0].Node != want {
		t.Errorf("children of level 1 = %+v", c)
	}
}

func TestMergeRaw(t *testing.T) {
	_, a := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	_, b := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
	e1, e2 := &kv{"p", "1", 1, "v"}, &kv{"p", "2", 1, "v"}
	mustMerge(t, a, e1, e2)
	vals, err := a.GetRaw([][]byte{kvStoreKey(e1), kvStoreKey(e2)})
	if err != nil {
		t.Fatal(err)
	}
	bad := append([][]byte{vals[0]}, []byte{1, 0xff})
	if err := b.MergeRaw(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("MergeRaw of a corrupt value = %v, want ErrCorrupt", err)
	}
	if got := entries(t, b); len(got) != 0 {
		t.Fatalf("a corrupt batch wrote %d entries", len(got))
	}
	if err := b.MergeRaw(append(vals, nil)); err != nil {
		t.Fatal(err)
	}
	if !mapsEqual(entries(t, a), entries(t, b)) {
		t.Error("MergeRaw did not reproduce the entries")
	}
}

// The modular arithmetic of the sums, against math/big.
func TestAdd256(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	mod := new(big.Int).Lsh(big.NewInt(1), 256)
	rnd := func() [32]byte {
		var a [32]byte
		for i := range a {
			a[i] = byte(r.Uint32())
		}
		if r.IntN(4) == 0 {
			a = [32]byte{}
			for i := range a {
				a[i] = 0xff
			}
		}
		return a
	}
	for range 1000 {
		a, b := rnd(), rnd()
		sum := add256(a, b)
		want := new(big.Int).Add(new(big.Int).SetBytes(a[:]), new(big.Int).SetBytes(b[:]))
		want.Mod(want, mod)
		if new(big.Int).SetBytes(sum[:]).Cmp(want) != 0 {
			t.Fatalf("add256(%x, %x) = %x, want %x", a, b, sum, want)
		}
		if back := add256(sum, neg256(b)); back != a {
			t.Fatalf("(a+b)-b = %x, want %x", back, a)
		}
	}
}

// The write-path cost of the Merkle and GC queues, and of applying them:
//
//	go test ./k2v -run '^$' -bench TableInsert -benchtime 2s
func BenchmarkTableInsert(b *testing.B) {
	for _, c := range []struct {
		name    string
		queues  bool
		updater bool
		sync    bool
	}{
		{"queues=off", false, false, false},
		{"queues=on", true, false, false},
		{"queues=on/updater", true, true, false},
		{"queues=off/fsync/C16", false, false, true},
		{"queues=on/updater/fsync/C16", true, true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			db, err := Open(DBConfig{Dir: b.TempDir(), NoFsync: !c.sync})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			tbl, err := NewTable[kv](db, kvSchema{name: "kv"})
			if err != nil {
				b.Fatal(err)
			}
			tbl.noQueues = !c.queues
			if c.updater {
				cctx, cancel := context.WithCancel(ctx)
				done := tbl.StartMerkle(cctx)
				defer func() { cancel(); <-done }()
			}
			value := string(make([]byte, 100))
			conc := 1
			if c.sync {
				conc = 16
			}
			runParallel(b, conc, func(i int64) error {
				return tbl.Merge(&kv{fmt.Sprintf("p%03d", i%100), fmt.Sprintf("s%012d", i), 1, value})
			})
			if c.updater {
				// the updater's backlog is part of the cost
				b.StopTimer()
				start := time.Now()
				if err := tbl.FlushMerkle(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "backlog-ms")
			}
		})
	}
}

// MerkleCheck notices a tree out of step with the entries.
func TestMerkleCheckDetects(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(tbl *Table[kv], sk []byte) error
	}{
		{"write behind the queue's back", func(tbl *Table[kv], _ []byte) error {
			tbl.noQueues = true
			defer func() { tbl.noQueues = false }()
			return tbl.Merge(&kv{"hot", "0", 9, "changed"})
		}},
		{"lost leaf", func(tbl *Table[kv], sk []byte) error {
			kh := sha256.Sum256(sk)
			return tbl.db.Update(func(b *Batch) error { return b.DeleteLocal(tbl.leafKey(sk[0], kh[:])) })
		}},
		{"extra node", func(tbl *Table[kv], sk []byte) error {
			return tbl.db.Update(func(b *Batch) error {
				return b.SetLocal(tbl.nodeKey(sk[0], []byte{1, 2}), appendMerkleNode(nil, MerkleNode{Count: 1}))
			})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, tbl := openKVOn(t, NewMemFS(), kvSchema{name: "kv"})
			for i := range 20 {
				mustMerge(t, tbl, &kv{"hot", fmt.Sprint(i), 1, "v"})
			}
			sk := kvStoreKey(&kv{PK: "hot", SK: "0"})
			if err := tbl.MerkleCheck(cluster.Partition(sk[0])); err != nil {
				t.Fatal(err)
			}
			if err := c.damage(tbl, sk); err != nil {
				t.Fatal(err)
			}
			if err := tbl.MerkleCheck(cluster.Partition(sk[0])); err == nil {
				t.Error("MerkleCheck found nothing wrong")
			}
		})
	}
}
