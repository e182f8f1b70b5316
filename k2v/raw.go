package k2v

import "fmt"

// GetRaw returns the encoded entries stored under storeKeys (hash ‖ sort
// key), nil for those absent.
func (t *Table[E]) GetRaw(storeKeys [][]byte) ([][]byte, error) {
	if err := t.db.enter(); err != nil {
		return nil, err
	}
	defer t.db.leave()
	out := make([][]byte, len(storeKeys))
	for i, k := range storeKeys {
		full := make([]byte, 0, len(t.prefix)+len(k))
		full = append(append(full, t.prefix...), k...)
		v, err := getCopy(t.db.pdb, full)
		if err != nil {
			return nil, fmt.Errorf("table %s: %w", t.name, err)
		}
		out[i] = v
	}
	return out, nil
}

// MergeRaw decodes encoded entries and merges them into the table in one
// batch. A value that does not decode fails the whole call, writing
// nothing.
func (t *Table[E]) MergeRaw(values [][]byte) error {
	entries := make([]*E, len(values))
	for i, v := range values {
		e, err := t.schema.Decode(v)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.name, err)
		}
		entries[i] = e
	}
	return t.Merge(entries...)
}
