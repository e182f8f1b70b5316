//go:build !unix

package node

func freeSpace(dirs []string) uint64 { return defaultCapacity }
