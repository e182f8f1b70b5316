package k2v

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
)

// kv is a minimal last-writer-wins schema for testing the engine itself.
type kv struct {
	PK, SK string
	T      uint64
	V      string
}

type kvSchema struct {
	name    string
	updated func(b *Batch, prev, next *kv) error
}

func (s kvSchema) Name() string                      { return s.name }
func (kvSchema) Keys(e *kv) (partition, sort []byte) { return []byte(e.PK), []byte(e.SK) }
func (kvSchema) Encode(dst []byte, e *kv) []byte {
	dst = append(dst, 1)
	dst = appendString(dst, e.PK)
	dst = appendString(dst, e.SK)
	dst = appendString(dst, fmt.Sprint(e.T))
	return appendString(dst, e.V)
}
func (kvSchema) Decode(b []byte) (*kv, error) {
	r := &reader{b: b}
	r.version(1, "kv")
	e := &kv{PK: r.string(), SK: r.string()}
	fmt.Sscan(r.string(), &e.T)
	e.V = r.string()
	return e, r.done()
}
func (kvSchema) Merge(dst, src *kv) {
	if src.T > dst.T || (src.T == dst.T && src.V > dst.V) {
		*dst = *src
	}
}
func (kvSchema) IsTombstone(e *kv) bool { return e.V == "" }
func (s kvSchema) Updated(b *Batch, prev, next *kv) error {
	if s.updated != nil {
		return s.updated(b, prev, next)
	}
	return nil
}

func openKV(t *testing.T, s kvSchema) (*DB, *Table[kv]) {
	t.Helper()
	db, err := Open(DBConfig{Dir: "db", FS: NewMemFS()})
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

func TestTableMergeAndScanPartition(t *testing.T) {
	db, tbl := openKV(t, kvSchema{name: "kv"})
	if _, err := NewTable[kv](db, kvSchema{name: "kv"}); err == nil {
		t.Error("a table name registered twice")
	}
	var changes []string
	tbl.OnChange(func(_ [32]byte, sort []byte) { changes = append(changes, string(sort)) })
	// merge is last-writer-wins; an older write changes nothing
	if err := tbl.Merge(&kv{"p", "a", 2, "new"}, &kv{"p", "b", 1, "x"}); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Merge(&kv{"p", "a", 1, "old"}); err != nil {
		t.Fatal(err)
	}
	if e, _ := tbl.Get([]byte("p"), []byte("a")); e == nil || e.V != "new" {
		t.Fatalf("Get = %+v", e)
	}
	if fmt.Sprint(changes) != "[a b]" {
		t.Errorf("OnChange saw %v, want [a b] (the no-op merge is silent)", changes)
	}
	// every entry of a partition comes back from ScanPartition, with the
	// key after the table prefix: hash ‖ sort
	for i := range 300 {
		tbl.Merge(&kv{fmt.Sprint("pk", i), "s", 1, "v"})
	}
	total := 0
	for p := range 256 {
		var last []byte
		err := tbl.ScanPartition(cluster.Partition(p), nil, func(key, value []byte) (bool, error) {
			if key[0] != byte(p) || bytes.Compare(key, last) <= 0 {
				t.Fatalf("partition %d: key %x out of place", p, key)
			}
			if _, err := tbl.Decode(value); err != nil {
				t.Fatal(err)
			}
			last = bytes.Clone(key)
			total++
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// resuming after a key skips it
		if last != nil {
			tbl.ScanPartition(cluster.Partition(p), last, func(key, _ []byte) (bool, error) {
				t.Fatalf("partition %d resumed after its last key returned %x", p, key)
				return false, nil
			})
		}
	}
	if total != 302 {
		t.Errorf("ScanPartition saw %d entries, want 302", total)
	}
}

// A failing Updated hook aborts the whole batch: derived state and entry
// commit together or not at all.
func TestUpdatedHookAtomic(t *testing.T) {
	fail := false
	db, tbl := openKV(t, kvSchema{name: "kv", updated: func(b *Batch, prev, next *kv) error {
		if err := b.SetLocal([]byte("derived/"+next.SK), []byte(next.V)); err != nil {
			return err
		}
		if fail {
			return errors.New("hook failed")
		}
		return nil
	}})
	if err := tbl.Merge(&kv{"p", "a", 1, "v1"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.GetLocal([]byte("derived/a")); string(v) != "v1" {
		t.Errorf("derived state = %q", v)
	}
	fail = true
	if err := tbl.Merge(&kv{"p", "a", 2, "v2"}); err == nil {
		t.Fatal("hook error not returned")
	}
	if e, _ := tbl.Get([]byte("p"), []byte("a")); e.V != "v1" {
		t.Errorf("entry written despite the hook error: %+v", e)
	}
	if v, _ := db.GetLocal([]byte("derived/a")); string(v) != "v1" {
		t.Errorf("derived state written despite the hook error: %q", v)
	}
}

func TestWatch(t *testing.T) {
	_, tbl := openKV(t, kvSchema{name: "kv"})
	w := tbl.Watch([]byte("p"))
	other := tbl.Watch([]byte("q"))
	defer other.Close()
	tbl.Merge(&kv{"p", "a", 1, "v"})
	tbl.Merge(&kv{"p", "b", 1, "v"})
	select {
	case <-w.C:
	case <-time.After(5 * time.Second):
		t.Fatal("watch not signalled")
	}
	if sorts, overflow := w.Changed(); overflow || len(sorts) != 2 {
		t.Errorf("Changed = %q, %v", sorts, overflow)
	}
	select {
	case <-other.C:
		t.Error("watch of another partition key signalled")
	default:
	}
	for i := range maxPendingSorts + 1 {
		tbl.Merge(&kv{"p", fmt.Sprint(i), 1, "v"})
	}
	if _, overflow := w.Changed(); !overflow {
		t.Error("no overflow after more changes than remembered")
	}
	w.Close()
	w.Close()
}

func TestClosedDB(t *testing.T) {
	db, tbl := openKV(t, kvSchema{name: "kv"})
	tbl.Merge(&kv{"p", "a", 1, "v"})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := tbl.Merge(&kv{"p", "b", 1, "v"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Merge after Close: %v", err)
	}
	if _, err := tbl.Get([]byte("p"), []byte("a")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if err := tbl.Scan([]byte("p"), ScanOptions{}, func([]byte, *kv) (bool, error) { return true, nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Scan after Close: %v", err)
	}
}
