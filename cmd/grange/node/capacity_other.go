//go:build !unix

package node

func capacityOf(dirs ...string) uint64 { return defaultCapacity }
