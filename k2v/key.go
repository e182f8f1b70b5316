package k2v

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Key is the access key table's entry: an access key ID with its secret,
// name and the permissions it holds. Keys live in a full-copy table. A
// deleted key keeps only its ID and the deletion mark (which wins every
// merge), so that the ID can never be reused with another secret.
type Key struct {
	ID        string
	Deleted   bool
	Secret    string
	CreatedMs uint64
	Name      LWW[string]
	// AllowCreateBucket lets the key create buckets through the S3 API.
	AllowCreateBucket LWW[bool]
	// Buckets are the permissions of the key, by bucket ID. The bucket
	// entry holds the same grants; this side is what authorization reads.
	Buckets map[BucketID]LWW[Perm]
	// LocalAliases are bucket names only this key sees (zero ID: removed).
	LocalAliases map[string]LWW[BucketID]
}

// Perm returns the key's permissions on a bucket.
func (k *Key) Perm(b BucketID) Perm { return k.Buckets[b].Value }

// LocalAlias returns the bucket a local alias of the key designates.
func (k *Key) LocalAlias(name string) (BucketID, bool) {
	id := k.LocalAliases[name].Value
	return id, !id.IsZero()
}

func (k *Key) merge(o *Key) {
	if k.Deleted || o.Deleted {
		*k = Key{ID: k.ID, Deleted: true}
		return
	}
	if k.Secret == "" || (o.Secret != "" && o.Secret < k.Secret) {
		// the secret never changes after creation; the comparison only
		// makes a (buggy) double import converge
		k.Secret = o.Secret
	}
	k.CreatedMs = min(nonZero(k.CreatedMs, o.CreatedMs), nonZero(o.CreatedMs, k.CreatedMs))
	k.Name = mergeLWW(k.Name, o.Name, strings.Compare)
	k.AllowCreateBucket = mergeLWW(k.AllowCreateBucket, o.AllowCreateBucket, compareBool)
	mergeLWWMap(&k.Buckets, o.Buckets, comparePerm)
	mergeLWWMap(&k.LocalAliases, o.LocalAliases, compareBucketID)
}

// keyFormat is the first byte of a stored key. Frozen: id, deleted, then
// (live keys) secret, created, name, allow-create-bucket, bucket
// permissions, local aliases.
const keyFormat = 1

type keySchema struct{}

func (keySchema) Name() string                         { return "key" }
func (keySchema) Keys(k *Key) (partition, sort []byte) { return nil, []byte(k.ID) }

func (keySchema) Encode(dst []byte, k *Key) []byte {
	dst = append(dst, keyFormat)
	dst = appendString(dst, k.ID)
	dst = appendBool(dst, k.Deleted)
	if k.Deleted {
		return dst
	}
	dst = appendString(dst, k.Secret)
	dst = binary.AppendUvarint(dst, k.CreatedMs)
	dst = binary.AppendUvarint(dst, k.Name.Time)
	dst = appendString(dst, k.Name.Value)
	dst = binary.AppendUvarint(dst, k.AllowCreateBucket.Time)
	dst = appendBool(dst, k.AllowCreateBucket.Value)
	dst = binary.AppendUvarint(dst, uint64(len(k.Buckets)))
	for _, id := range sortedBucketIDs(k.Buckets) {
		dst = append(dst, id[:]...)
		dst = binary.AppendUvarint(dst, k.Buckets[id].Time)
		dst = append(dst, byte(k.Buckets[id].Value.bits()))
	}
	dst = binary.AppendUvarint(dst, uint64(len(k.LocalAliases)))
	for _, name := range sortedKeys(k.LocalAliases) {
		dst = appendString(dst, name)
		l := k.LocalAliases[name]
		dst = binary.AppendUvarint(dst, l.Time)
		dst = append(dst, l.Value[:]...)
	}
	return dst
}

func sortedBucketIDs[V any](m map[BucketID]V) []BucketID {
	ids := make([]BucketID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slicesSortBucketIDs(ids)
	return ids
}

func (keySchema) Decode(data []byte) (*Key, error) {
	r := &reader{b: data}
	r.version(keyFormat, "key")
	k := &Key{ID: r.string()}
	if k.Deleted = r.bool(); !k.Deleted {
		k.Secret = r.string()
		k.CreatedMs = r.uvarint()
		k.Name = LWW[string]{Time: r.uvarint(), Value: r.string()}
		k.AllowCreateBucket = LWW[bool]{Time: r.uvarint(), Value: r.bool()}
		if n := r.count(34); n > 0 {
			k.Buckets = make(map[BucketID]LWW[Perm], n)
			for range n {
				var id BucketID
				copy(id[:], r.fixed(32))
				k.Buckets[id] = LWW[Perm]{Time: r.uvarint(), Value: permFromBits(r.byte())}
			}
		}
		if n := r.count(34); n > 0 {
			k.LocalAliases = make(map[string]LWW[BucketID], n)
			for range n {
				name := r.string()
				l := LWW[BucketID]{Time: r.uvarint()}
				copy(l.Value[:], r.fixed(32))
				k.LocalAliases[name] = l
			}
		}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return k, nil
}

func (keySchema) Merge(dst, src *Key)              { dst.merge(src) }
func (keySchema) IsTombstone(k *Key) bool          { return k.Deleted }
func (keySchema) Updated(*Batch, *Key, *Key) error { return nil }

// NewKeyID returns a key ID in Garage's format: "GK" and 24 hex digits.
func NewKeyID() string {
	var b [12]byte
	rand.Read(b[:])
	return "GK" + hex.EncodeToString(b[:])
}

// NewSecret returns a secret of 64 hex digits (256 random bits).
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ValidateKeyID checks an access key ID to import: 3 to 128 characters
// among letters, digits, '_', '-' and '.'. Garage's GK… IDs and AWS-style
// IDs both fit; '/' cannot, since it separates the credential scope.
func ValidateKeyID(id string) error {
	if len(id) < 3 || len(id) > 128 {
		return fmt.Errorf("%w: access key id must have 3 to 128 characters", ErrInvalidArgument)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: access key id may only contain letters, digits, '_', '-' and '.'", ErrInvalidArgument)
		}
	}
	return nil
}

// ValidateSecret checks a secret to import: 8 to 256 visible ASCII
// characters.
func ValidateSecret(s string) error {
	if len(s) < 8 || len(s) > 256 {
		return fmt.Errorf("%w: secret key must have 8 to 256 characters", ErrInvalidArgument)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%w: secret key may only contain visible ASCII characters", ErrInvalidArgument)
		}
	}
	return nil
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
