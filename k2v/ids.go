package k2v

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// BucketID identifies a bucket: 32 random bytes, shown as 64 hex digits.
type BucketID [32]byte

// NewBucketID returns a random bucket ID.
func NewBucketID() BucketID {
	var id BucketID
	rand.Read(id[:]) // never fails (crypto/rand panics rather than return an error)
	return id
}

// String returns the 64 hex digits.
func (id BucketID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value.
func (id BucketID) IsZero() bool { return id == BucketID{} }

// LogValue logs the first 16 hex digits.
func (id BucketID) LogValue() slog.Value { return slog.StringValue(id.String()[:16]) }

// MarshalText implements encoding.TextMarshaler.
func (id BucketID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *BucketID) UnmarshalText(b []byte) error {
	v, err := ParseBucketID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseBucketID parses 64 hex digits.
func ParseBucketID(s string) (BucketID, error) {
	var id BucketID
	if len(s) != 64 {
		return id, fmt.Errorf("k2v: bucket id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("k2v: bucket id %q: not hex", s)
	}
	return id, nil
}
