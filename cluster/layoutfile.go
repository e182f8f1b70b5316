package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/grangeio/grange/cluster/layout"
)

// layoutFile is the name of the persisted layout history in the metadata
// directory.
const layoutFile = "cluster_layout"

// LoadHistory reads the layout history persisted in dir (a file written by
// an older version holding a single layout is read as a history of one
// version). It returns (nil, nil) when no layout was ever saved there.
func LoadHistory(dir string) (*layout.History, error) {
	b, err := os.ReadFile(filepath.Join(dir, layoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: load layout: %w", err)
	}
	h, err := layout.DecodeHistory(b)
	if err != nil {
		return nil, fmt.Errorf("cluster: load layout %s: %w", filepath.Join(dir, layoutFile), err)
	}
	return h, nil
}

// SaveHistory persists h in dir atomically.
func SaveHistory(dir string, h *layout.History) error {
	return saveEncodedHistory(dir, h.Encode(nil))
}

func saveEncodedHistory(dir string, enc []byte) error {
	if err := writeFileAtomic(filepath.Join(dir, layoutFile), enc, 0o600); err != nil {
		return fmt.Errorf("cluster: save layout: %w", err)
	}
	return nil
}
