package k2v

import (
	"context"
	"sync"
	"time"

	"github.com/grangeio/grange/cluster"
)

type MerkleNode struct {
	Sum   [32]byte
	Count uint64
}
type MerkleChild struct {
	Byte byte
	Node MerkleNode
}
type MerkleLeaf struct {
	KHash, VHash [32]byte
	Key          []byte
}
type MerkleRemote interface{}
type GCCandidate struct {
	Key   []byte
	VHash [32]byte
	Value []byte
}

func (t *Table[E]) MerkleNode(p cluster.Partition, prefix []byte) (MerkleNode, error) { return MerkleNode{}, nil }
func (t *Table[E]) MerkleChildren(p cluster.Partition, prefix []byte) ([]MerkleChild, error) { return nil, nil }
func (t *Table[E]) MerkleLeaves(p cluster.Partition, prefix []byte) ([]MerkleLeaf, error) { return nil, nil }
func (t *Table[E]) FlushMerkle() error { return nil }
func (t *Table[E]) MerkleDiff(ctx context.Context, p cluster.Partition, r MerkleRemote, f func([][]byte) error) error { return nil }
func (t *Table[E]) DeleteIfHash(k []byte, v [32]byte) (bool, error) { return false, nil }
func (t *Table[E]) DropPartition(p cluster.Partition, after []byte, max int) ([]byte, int, error) { return nil, 0, nil }
func (t *Table[E]) GCCandidates(older time.Time, max int) ([]GCCandidate, error) { return nil, nil }
func (rt *Replicated[E]) startMerkle(ctx context.Context, wg *sync.WaitGroup) {}
