package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/grangeio/grange/cluster/layout"
)

// layoutFile is the name of the persisted layout in the metadata directory.
const layoutFile = "cluster_layout"

// LoadLayout reads the layout persisted in dir. It returns (nil, nil) when
// no layout was ever saved there.
func LoadLayout(dir string) (*layout.Layout, error) {
	b, err := os.ReadFile(filepath.Join(dir, layoutFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: load layout: %w", err)
	}
	l, err := layout.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("cluster: load layout %s: %w", filepath.Join(dir, layoutFile), err)
	}
	return l, nil
}

// SaveLayout persists l in dir atomically.
func SaveLayout(dir string, l *layout.Layout) error {
	if err := writeFileAtomic(filepath.Join(dir, layoutFile), l.Encode(nil), 0o600); err != nil {
		return fmt.Errorf("cluster: save layout: %w", err)
	}
	return nil
}
