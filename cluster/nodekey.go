package cluster

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NodeKey is a node's static key pair. The public half is the node's ID; the
// private half authenticates the node to its peers.
//
// The key is an X25519 key rather than ed25519: the RPC handshake (a Noise
// pattern) authenticates peers by Diffie-Hellman with their static keys, so
// a dialer that knows a node ID can check it reached that node without any
// signature scheme on top.
type NodeKey struct {
	priv *ecdh.PrivateKey
}

// GenerateNodeKey returns a fresh random key.
func GenerateNodeKey() (NodeKey, error) {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return NodeKey{}, fmt.Errorf("cluster: generate node key: %w", err)
	}
	return NodeKey{priv: k}, nil
}

// NodeKeyFromBytes rebuilds a key from its 32 private bytes.
func NodeKeyFromBytes(b []byte) (NodeKey, error) {
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return NodeKey{}, fmt.Errorf("cluster: node key: %w", err)
	}
	return NodeKey{priv: k}, nil
}

// ID returns the node ID: the public key.
func (k NodeKey) ID() NodeID {
	var id NodeID
	copy(id[:], k.priv.PublicKey().Bytes())
	return id
}

// Private returns the X25519 private key.
func (k NodeKey) Private() *ecdh.PrivateKey { return k.priv }

// nodeKeyFile is the name of the key file in the metadata directory.
const nodeKeyFile = "node_key"

// LoadOrCreateNodeKey reads the node key from dir, creating it (mode 0600)
// on first start. A key file readable by group or others is refused, since
// whoever reads it can impersonate the node.
func LoadOrCreateNodeKey(dir string) (NodeKey, error) {
	k, err := ReadNodeKey(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if k, err = GenerateNodeKey(); err != nil {
		return NodeKey{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, nodeKeyFile), k.priv.Bytes(), 0o600); err != nil {
		return NodeKey{}, fmt.Errorf("cluster: save node key: %w", err)
	}
	return k, nil
}

// ReadNodeKey reads the node key from dir without ever creating one; the
// error wraps fs.ErrNotExist when there is none.
func ReadNodeKey(dir string) (NodeKey, error) {
	path := filepath.Join(dir, nodeKeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return NodeKey{}, fmt.Errorf("cluster: node key: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return NodeKey{}, fmt.Errorf("cluster: node key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return NodeKey{}, fmt.Errorf("cluster: node key %s has mode %v: it must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	if len(b) != 32 {
		return NodeKey{}, fmt.Errorf("cluster: node key %s: %d bytes, want 32", path, len(b))
	}
	return NodeKeyFromBytes(b)
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// over path, then syncs the directory, so that a crash leaves either the old
// file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
