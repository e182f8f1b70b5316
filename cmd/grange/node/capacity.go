package node

// defaultCapacity is the capacity recorded for a single node when the size
// of its file system cannot be read. It only matters once other nodes join.
const defaultCapacity = 1 << 40
