package nodetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grangeio/grange/blocks"
	"github.com/grangeio/grange/cmd/grange/node"
	"github.com/grangeio/grange/k2v"
)

// testBlockSize keeps streams of many blocks small.
const testBlockSize = 64 << 10

// startBlocks starts a cluster whose nodes cut streams into 64 KiB blocks
// and collect unreferenced blocks after gcDelay.
func startBlocks(t *testing.T, nodes int, gcDelay time.Duration) *Cluster {
	t.Helper()
	return Start(t, Options{Nodes: nodes, Configure: func(i int, cfg *node.Config) {
		cfg.Blocks.BlockSize = testBlockSize
		cfg.Blocks.GCDelay = gcDelay
		cfg.Blocks.RequestTimeout = 3 * time.Second
	}})
}

// writeObject stores data through node n as a stream whose blocks owner
// references, and returns the blocks.
func writeObject(t *testing.T, n *node.Node, data []byte, owner string) []blocks.BlockInfo {
	t.Helper()
	ctx := context.Background()
	m := n.Blocks()
	var infos []blocks.BlockInfo
	size, err := m.WriteStream(ctx, bytes.NewReader(data), func(i int, b blocks.BlockInfo) error {
		if i != len(infos) {
			return fmt.Errorf("block %d reported after %d blocks", i, len(infos))
		}
		infos = append(infos, b)
		return n.Replicator().Update(ctx, func(batch *k2v.Batch) error { return m.AddRef(batch, b.Hash, []byte(owner)) })
	})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	if size != int64(len(data)) {
		t.Fatalf("wrote %d bytes, want %d", size, len(data))
	}
	return infos
}

// readObject reads [off, off+n) of a stream through node nd, with Read
// and with WriteTo (io.Copy), which must agree.
func readObject(t *testing.T, nd *node.Node, infos []blocks.BlockInfo, off, n int64) []byte {
	t.Helper()
	r, err := nd.Blocks().NewReader(context.Background(), infos, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read [%d, +%d): %v", off, n, err)
	}
	r2, err := nd.Blocks().NewReader(context.Background(), infos, off, n)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	var copied bytes.Buffer
	if k, err := r2.(io.WriterTo).WriteTo(&copied); err != nil || k != int64(copied.Len()) || !bytes.Equal(copied.Bytes(), got) {
		t.Fatalf("WriteTo of [%d, +%d) = %d, %v; differs from Read: %v", off, n, k, err, !bytes.Equal(copied.Bytes(), got))
	}
	return got
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// blockFile finds the file of h under dir.
func blockFile(t *testing.T, dir string, h blocks.Hash) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == h.String() {
			found = path
			return filepath.SkipAll
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no file for block %s under %s", h, dir)
	}
	return found
}

// flipByte flips one byte of the payload of h's file on node i.
func (c *Cluster) flipByte(t *testing.T, i int, h blocks.Hash) {
	t.Helper()
	path := blockFile(t, c.dataDir(i), h)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *Cluster) dataDir(i int) string { return filepath.Join(c.nodes[i].dir, "data") }

// TestBlocksStreamRoundTrip writes a stream through one node and reads
// it, whole and in ranges, through every node.
func TestBlocksStreamRoundTrip(t *testing.T) {
	c := startBlocks(t, 3, 0)
	data := randomBytes(5*testBlockSize + 1234)
	infos := writeObject(t, c.Node(0), data, "obj")
	if len(infos) != 6 {
		t.Fatalf("%d blocks, want 6", len(infos))
	}
	for i := range 3 {
		if got := readObject(t, c.Node(i), infos, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("node %d: read back %d bytes that differ from the %d written", i, len(got), len(data))
		}
		for _, r := range [][2]int64{{0, 1}, {testBlockSize - 1, 2}, {3*testBlockSize + 7, testBlockSize}, {int64(len(data)) - 10, 10}, {int64(len(data)), 0}} {
			got := readObject(t, c.Node(i), infos, r[0], r[1])
			if !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
				t.Fatalf("node %d: range %v differs", i, r)
			}
		}
		// every replica holds every block (RF 3 on 3 nodes)
		for _, b := range infos {
			if err := c.Node(i).Blocks().CheckLocal(b.Hash); err != nil {
				t.Fatalf("node %d: block %s: %v", i, b.Hash, err)
			}
		}
	}
	// the same content again is not stored again
	before := c.Node(1).Blocks().Store().Stats().Blocks
	writeObject(t, c.Node(2), data, "copy")
	if after := c.Node(1).Blocks().Store().Stats().Blocks; after != before {
		t.Fatalf("a second copy of the same stream added %d blocks", after-before)
	}
}

// TestBlocksCorruptionRepaired flips a byte of stored blocks: a read
// detects it and still returns the right bytes, scrub detects it, and
// both replace the bad copy with a sound one from another replica.
func TestBlocksCorruptionRepaired(t *testing.T) {
	c := startBlocks(t, 3, 0)
	data := randomBytes(4 * testBlockSize)
	infos := writeObject(t, c.Node(0), data, "obj")

	// on read
	c.flipByte(t, 0, infos[1].Hash)
	if got := readObject(t, c.Node(0), infos, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("read through the node with a corrupt copy returned wrong bytes")
	}
	c.Eventually("the corrupt copy read on node 0 is replaced", func() error {
		return c.Node(0).Blocks().CheckLocal(infos[1].Hash)
	})
	if n, _ := filepath.Glob(filepath.Join(c.dataDir(0), "*", "*", "*.corrupted")); len(n) != 1 {
		t.Fatalf("%d quarantined files on node 0, want 1", len(n))
	}

	// by scrub
	c.flipByte(t, 1, infos[2].Hash)
	m := c.Node(1).Blocks()
	if err := m.Scrub(blocks.ScrubStart); err != nil {
		t.Fatal(err)
	}
	c.Eventually("scrub on node 1 finds the corrupt block", func() error {
		if st := m.ScrubStatus(); st.Running || st.Corrupt != 1 {
			return fmt.Errorf("scrub state %+v", st)
		}
		return nil
	})
	c.Eventually("the corrupt copy scrubbed on node 1 is replaced", func() error {
		return m.CheckLocal(infos[2].Hash)
	})
	met, err := m.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if met.Corruptions != 1 {
		t.Fatalf("node 1 counted %d corruptions, want 1", met.Corruptions)
	}
}

// TestBlocksWipedDataDirResync wipes a node's data directory (its
// metadata stays): resync fetches every block back.
func TestBlocksWipedDataDirResync(t *testing.T) {
	c := startBlocks(t, 3, 0)
	var all []blocks.BlockInfo
	for k := range 4 {
		all = append(all, writeObject(t, c.Node(k%3), randomBytes(5*testBlockSize), fmt.Sprint("obj", k))...)
	}
	c.Kill(2)
	if err := os.RemoveAll(c.dataDir(2)); err != nil {
		t.Fatal(err)
	}
	c.Restart(2)
	c.Eventually("every block back on the wiped node", func() error {
		missing := 0
		for _, b := range all {
			if err := c.Node(2).Blocks().CheckLocal(b.Hash); err != nil {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d blocks missing", missing, len(all))
		}
		return nil
	})
}

// TestBlocksGCKeepsReferencedAgain drops and re-adds references to
// blocks at random moments around the end of their grace period, while
// garbage collection runs: a block referenced at the end must be on every
// replica, and one left unreferenced must go.
func TestBlocksGCKeepsReferencedAgain(t *testing.T) {
	const delay = 1500 * time.Millisecond
	c := startBlocks(t, 3, delay)
	ctx := context.Background()
	type obj struct {
		infos []blocks.BlockInfo
		live  bool
	}
	objs := make([]obj, 24)
	for k := range objs {
		objs[k].infos = writeObject(t, c.Node(k%3), randomBytes(2*testBlockSize), "o")
		objs[k].live = true
	}
	setRef := func(nd *node.Node, o *obj, live bool) {
		m := nd.Blocks()
		err := nd.Replicator().Update(ctx, func(b *k2v.Batch) error {
			for _, bi := range o.infos {
				var err error
				if live {
					// a new owner: removed references stay removed
					err = m.AddRef(b, bi.Hash, []byte(fmt.Sprint("again", time.Now().UnixNano())))
				} else {
					err = m.RemoveRef(b, bi.Hash, []byte("o"))
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	var wg sync.WaitGroup
	for k := range objs {
		o := &objs[k]
		wg.Go(func() {
			setRef(c.Node(k%3), o, false)
			o.live = false
			if k%3 == 0 {
				return // stays unreferenced
			}
			// referenced again before its grace period ends, somewhere
			// in [0.3, 0.85] × the delay
			j, _ := rand.Int(rand.Reader, big.NewInt(int64(delay*55/100)))
			time.Sleep(delay*3/10 + time.Duration(j.Int64()))
			setRef(c.Node((k+1)%3), o, true)
			o.live = true
		})
	}
	wg.Wait()
	time.Sleep(3 * delay) // let GC run past every grace period
	c.Eventually("referenced blocks on every replica, others collected", func() error {
		for k, o := range objs {
			for i := range 3 {
				for _, b := range o.infos {
					err := c.Node(i).Blocks().CheckLocal(b.Hash)
					switch {
					case o.live && err != nil:
						return fmt.Errorf("object %d, referenced again, lost block %s on node %d: %v", k, b.Hash, i, err)
					case !o.live && err == nil:
						return fmt.Errorf("object %d, unreferenced, still has block %s on node %d", k, b.Hash, i)
					}
				}
			}
		}
		return nil
	})
}

// TestBlocksDiskFull makes one node's disk full: writes succeed through
// the other replicas; with two full, no write quorum has room and writes
// fail with a clear error.
func TestBlocksDiskFull(t *testing.T) {
	c := startBlocks(t, 3, 0)
	full := func(string) error { return syscall.ENOSPC }
	c.Node(2).Blocks().Store().InjectWriteError(full)
	data := randomBytes(3 * testBlockSize)
	infos := writeObject(t, c.Node(0), data, "obj")
	if got := readObject(t, c.Node(2), infos, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("read back through the full node differs")
	}
	c.Node(1).Blocks().Store().InjectWriteError(full)
	_, err := c.Node(0).Blocks().WriteStream(context.Background(), bytes.NewReader(randomBytes(testBlockSize)), nil)
	if err == nil {
		t.Fatal("a write with two of three replicas full succeeded")
	}
	if !errors.Is(err, blocks.ErrNoSpace) && !bytes.Contains([]byte(err.Error()), []byte("no space")) {
		t.Fatalf("error does not say the disks are full: %v", err)
	}
	t.Logf("error with two full disks: %v", err)
}

// TestBlocksLayoutChange adds a node and removes one: the new node gets
// every block of its partitions, the removed one hands its blocks over
// and deletes them, and reads work through every node throughout.
func TestBlocksLayoutChange(t *testing.T) {
	c := startBlocks(t, 3, 0)
	type object struct {
		data  []byte
		infos []blocks.BlockInfo
	}
	var objs []object
	for k := range 6 {
		data := randomBytes(4*testBlockSize + k)
		objs = append(objs, object{data, writeObject(t, c.Node(k%3), data, fmt.Sprint("obj", k))})
	}
	added := c.AddNode("dc1")
	c.Remove(0)
	v := c.Apply()
	for _, o := range objs[:2] { // while the new version syncs
		if got := readObject(t, c.Node(added), o.infos, 0, -1); !bytes.Equal(got, o.data) {
			t.Fatal("read through the new node during the change differs")
		}
	}
	c.WaitSynced(v)
	c.Eventually("blocks on the nodes of the new layout only", func() error {
		for k, o := range objs {
			for _, b := range o.infos {
				for _, i := range []int{1, 2, added} {
					if err := c.Node(i).Blocks().CheckLocal(b.Hash); err != nil {
						return fmt.Errorf("object %d: node %d: %v", k, i, err)
					}
				}
			}
		}
		if n := c.Node(0).Blocks().Store().Stats().Blocks; n != 0 {
			return fmt.Errorf("the removed node still holds %d blocks", n)
		}
		return nil
	})
	for _, i := range []int{1, 2, added} {
		for _, o := range objs {
			if got := readObject(t, c.Node(i), o.infos, 0, -1); !bytes.Equal(got, o.data) {
				t.Fatalf("node %d: read after the change differs", i)
			}
		}
	}
}

// Readers whose clients stop reading cannot hold the whole RAM budget with
// blocks fetched ahead: with a budget of 2 MiB (about 15 blocks in
// flight), three stalled readers used to take it all (their current block
// and five ahead each), and a write then waited for them forever. Blocks
// fetched ahead now hold at most half the budget.
func TestBlocksStalledReadersLeaveBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	c := Start(t, Options{Nodes: 1, Configure: func(i int, cfg *node.Config) {
		cfg.Blocks.BlockSize = testBlockSize
		cfg.Blocks.RAMBufferMax = 2 << 20
	}})
	n := c.Node(0)
	data := make([]byte, 32*testBlockSize)
	rand.Read(data)
	infos := writeObject(t, n, data, "stalled")
	for range 3 {
		r, err := n.Blocks().NewReader(context.Background(), infos, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var b [1]byte
		if _, err := io.ReadFull(r, b[:]); err != nil || b[0] != data[0] {
			t.Fatalf("first byte: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond) // the readers fetch ahead what they may
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	more := make([]byte, 8*testBlockSize)
	rand.Read(more)
	if _, err := n.Blocks().WriteStream(ctx, bytes.NewReader(more), nil); err != nil {
		t.Fatalf("write while three readers are stalled: %v", err)
	}
}
