package k2v

import "golang.org/x/crypto/blake2b"

// Hash is the placement hash of a partition key: the first 32 bytes of its
// BLAKE2b-512 digest. For K2V items the partition key is bucket id ‖ item
// partition key, which makes this the hash of k2v-api.md §13.
func Hash(partitionKey []byte) [32]byte {
	sum := blake2b.Sum512(partitionKey)
	var h [32]byte
	copy(h[:], sum[:32])
	return h
}
