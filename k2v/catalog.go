package k2v

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Errors of the catalog of buckets and access keys.
var (
	ErrNoSuchKey       = errors.New("k2v: no such access key")
	ErrKeyExists       = errors.New("k2v: access key already exists")
	ErrNoSuchBucket    = errors.New("k2v: no such bucket")
	ErrBucketExists    = errors.New("k2v: bucket name already in use")
	ErrBucketNotEmpty  = errors.New("k2v: bucket not empty")
	ErrInvalidArgument = errors.New("k2v: invalid argument")
	ErrAmbiguous       = errors.New("k2v: pattern matches several entries")
)

// CatalogConfig configures NewCatalog.
type CatalogConfig struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// IsEmpty reports whether a bucket holds no data; DeleteBucket refuses
	// to delete a bucket for which it returns false. Nil means always empty.
	IsEmpty func(ctx context.Context, id BucketID) (bool, error)
	// Replicator, when set, makes the catalog tables full copies on every
	// node of the cluster; nil keeps them on this node only.
	Replicator *Replicator
}

// Catalog holds the buckets, their global aliases and the access keys with
// their permissions: three full-copy tables, shared by the K2V and S3 APIs.
// Lookups on the request path (Key, Bucket, ResolveBucket) are served from
// caches that the tables' change feed keeps exact.
type Catalog struct {
	db      *DB
	keys    *Table[Key]
	buckets *Table[Bucket]
	aliases *Table[Alias]
	now     func() time.Time
	isEmpty func(ctx context.Context, id BucketID) (bool, error)
	rep     *Replicator

	keyCache    *cache[Key]
	bucketCache *cache[Bucket]
	aliasCache  *cache[Alias]
}

// NewCatalog registers the catalog tables in db.
func NewCatalog(db *DB, cfg CatalogConfig) (*Catalog, error) {
	c := &Catalog{db: db, now: cfg.Now, isEmpty: cfg.IsEmpty}
	if c.now == nil {
		c.now = time.Now
	}
	if c.isEmpty == nil {
		c.isEmpty = func(context.Context, BucketID) (bool, error) { return true, nil }
	}
	var err error
	if c.keys, err = NewTable[Key](db, keySchema{}); err != nil {
		return nil, err
	}
	if c.buckets, err = NewTable[Bucket](db, bucketSchema{}); err != nil {
		return nil, err
	}
	if c.aliases, err = NewTable[Alias](db, aliasSchema{}); err != nil {
		return nil, err
	}
	if cfg.Replicator != nil {
		c.rep = cfg.Replicator
		Replicate(c.rep, c.keys, FullCopy)
		Replicate(c.rep, c.buckets, FullCopy)
		Replicate(c.rep, c.aliases, FullCopy)
	}
	c.keyCache = newCache(c.keys)
	c.bucketCache = newCache(c.buckets)
	c.aliasCache = newCache(c.aliases)
	return c, nil
}

// catalogWriteTimeout bounds the replication of a catalog change.
const catalogWriteTimeout = 30 * time.Second

// update runs fn in a local batch and, with replication, sends what it
// changed to a majority of the nodes.
func (c *Catalog) update(fn func(b *Batch) error) error {
	if c.rep == nil {
		return c.db.Update(fn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), catalogWriteTimeout)
	defer cancel()
	return c.rep.Update(ctx, fn)
}

// updateEntry is Table.Update through c.update.
func updateEntry[E any](c *Catalog, t *Table[E], partition, sort []byte, fn func(cur *E) (*E, error)) (*E, error) {
	var out *E
	err := c.update(func(b *Batch) error {
		var err error
		out, err = t.UpdateIn(b, partition, sort, fn)
		return err
	})
	return out, err
}

func (c *Catalog) nowMs() uint64 { return uint64(c.now().UnixMilli()) }

// ---- access keys ----

// Key returns a live access key. The entry is shared: do not modify it.
func (c *Catalog) Key(id string) (*Key, error) {
	k, err := c.keyCache.get(id)
	if err != nil {
		return nil, err
	}
	if k == nil || k.Deleted {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchKey, id)
	}
	return k, nil
}

// CreateKey creates a key with a fresh ID and secret.
func (c *Catalog) CreateKey(name string) (*Key, error) {
	return c.createKey(NewKeyID(), NewSecret(), name)
}

// ImportKey creates a key with a given ID and secret. An ID that exists, or
// existed and was deleted, is refused.
func (c *Catalog) ImportKey(id, secret, name string) (*Key, error) {
	if err := ValidateKeyID(id); err != nil {
		return nil, err
	}
	if err := ValidateSecret(secret); err != nil {
		return nil, err
	}
	return c.createKey(id, secret, name)
}

func (c *Catalog) createKey(id, secret, name string) (*Key, error) {
	now := c.nowMs()
	return updateEntry(c, c.keys, nil, []byte(id), func(cur *Key) (*Key, error) {
		if cur != nil {
			return nil, fmt.Errorf("%w: %s (IDs of deleted keys cannot be reused)", ErrKeyExists, id)
		}
		return &Key{ID: id, Secret: secret, CreatedMs: now, Name: LWW[string]{Time: now, Value: name}}, nil
	})
}

// EnsureKey makes sure a key with this ID and secret exists: it creates it
// when absent and succeeds when it exists with the same secret (idempotent
// start-up provisioning). A different secret or a deleted ID is an error.
func (c *Catalog) EnsureKey(id, secret, name string) (*Key, error) {
	k, err := c.keys.Get(nil, []byte(id))
	if err != nil {
		return nil, err
	}
	if k == nil {
		return c.ImportKey(id, secret, name)
	}
	if k.Deleted {
		return nil, fmt.Errorf("%w: %s was deleted and cannot be reused", ErrKeyExists, id)
	}
	if !constantTimeEqual(k.Secret, secret) {
		return nil, fmt.Errorf("%w: %s exists with another secret", ErrKeyExists, id)
	}
	return k, nil
}

// ListKeys returns the live keys sorted by ID.
func (c *Catalog) ListKeys() ([]*Key, error) {
	return scanLive(c.keys, func(k *Key) bool { return !k.Deleted })
}

// scanLive returns the entries of a catalog table (all stored under the
// empty partition key) for which live is true, in sort-key order.
func scanLive[E any](t *Table[E], live func(*E) bool) ([]*E, error) {
	var out []*E
	err := t.Scan(nil, ScanOptions{}, func(_ []byte, e *E) (bool, error) {
		if live(e) {
			out = append(out, e)
		}
		return true, nil
	})
	return out, err
}

// FindKey finds a live key by exact ID, then by unique ID prefix, then by
// unique name.
func (c *Catalog) FindKey(pattern string) (*Key, error) {
	if k, err := c.Key(pattern); err == nil {
		return k, nil
	}
	keys, err := c.ListKeys()
	if err != nil {
		return nil, err
	}
	for _, match := range []func(k *Key) bool{
		func(k *Key) bool { return strings.HasPrefix(k.ID, pattern) },
		func(k *Key) bool { return k.Name.Value == pattern },
	} {
		var found []*Key
		for _, k := range keys {
			if pattern != "" && match(k) {
				found = append(found, k)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		default:
			return nil, fmt.Errorf("%w: %q matches %d keys", ErrAmbiguous, pattern, len(found))
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSuchKey, pattern)
}

// KeyUpdate lists the changes of UpdateKey; nil fields stay as they are.
type KeyUpdate struct {
	Name              *string
	AllowCreateBucket *bool
}

// UpdateKey renames a key or changes its bucket-creation right.
func (c *Catalog) UpdateKey(id string, u KeyUpdate) (*Key, error) {
	now := c.nowMs()
	return updateEntry(c, c.keys, nil, []byte(id), func(k *Key) (*Key, error) {
		if k == nil || k.Deleted {
			return nil, fmt.Errorf("%w: %s", ErrNoSuchKey, id)
		}
		if u.Name != nil {
			k.Name = k.Name.next(now, *u.Name)
		}
		if u.AllowCreateBucket != nil {
			k.AllowCreateBucket = k.AllowCreateBucket.next(now, *u.AllowCreateBucket)
		}
		return k, nil
	})
}

// DeleteKey deletes a key and removes its permissions and local aliases
// from every bucket.
func (c *Catalog) DeleteKey(id string) error {
	now := c.nowMs()
	return c.update(func(b *Batch) error {
		k, err := c.keys.GetIn(b, nil, []byte(id))
		if err != nil {
			return err
		}
		if k == nil || k.Deleted {
			return fmt.Errorf("%w: %s", ErrNoSuchKey, id)
		}
		for bid := range k.Buckets {
			if err := c.updateBucketIn(b, bid, func(bk *Bucket) {
				if p, ok := bk.Keys[id]; ok {
					bk.Keys[id] = p.next(now, Perm{})
				}
				for name, l := range bk.LocalAliases {
					if strings.HasPrefix(name, id+"/") {
						bk.LocalAliases[name] = l.next(now, false)
					}
				}
			}); err != nil {
				return err
			}
		}
		for _, l := range k.LocalAliases {
			if l.Value.IsZero() {
				continue
			}
			if err := c.updateBucketIn(b, l.Value, func(bk *Bucket) {
				for name, la := range bk.LocalAliases {
					if strings.HasPrefix(name, id+"/") {
						bk.LocalAliases[name] = la.next(now, false)
					}
				}
			}); err != nil {
				return err
			}
		}
		return c.keys.MergeIn(b, &Key{ID: id, Deleted: true})
	})
}

// updateBucketIn applies fn to a live bucket inside a batch; a missing or
// deleted bucket is skipped.
func (c *Catalog) updateBucketIn(b *Batch, id BucketID, fn func(*Bucket)) error {
	_, err := c.buckets.UpdateIn(b, nil, id[:], func(bk *Bucket) (*Bucket, error) {
		if bk == nil || bk.Deleted {
			return nil, nil
		}
		fn(bk)
		return bk, nil
	})
	return err
}

// ---- buckets ----

// Bucket returns a live bucket. The entry is shared: do not modify it.
func (c *Catalog) Bucket(id BucketID) (*Bucket, error) {
	bk, err := c.bucketCache.get(string(id[:]))
	if err != nil {
		return nil, err
	}
	if bk == nil || bk.Deleted {
		return nil, fmt.Errorf("%w: %v", ErrNoSuchBucket, id)
	}
	return bk, nil
}

// LookupAlias returns the bucket a global alias designates.
func (c *Catalog) LookupAlias(name string) (BucketID, error) {
	a, err := c.aliasCache.get(name)
	if err != nil {
		return BucketID{}, err
	}
	if a == nil || a.Bucket.Value.IsZero() {
		return BucketID{}, fmt.Errorf("%w: %s", ErrNoSuchBucket, name)
	}
	return a.Bucket.Value, nil
}

// ResolveBucket resolves the bucket segment of a request made with key
// (k2v-api.md §3.4): a local alias of the key, then a global alias, then a
// 64-hex-digit bucket ID.
func (c *Catalog) ResolveBucket(key *Key, name string) (*Bucket, error) {
	if key != nil {
		if id, ok := key.LocalAlias(name); ok {
			return c.Bucket(id)
		}
	}
	id, err := c.LookupAlias(name)
	if errors.Is(err, ErrNoSuchBucket) && len(name) == 64 {
		if parsed, perr := ParseBucketID(name); perr == nil {
			id, err = parsed, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return c.Bucket(id)
}

// LocalAliasSpec names a bucket for one access key at creation.
type LocalAliasSpec struct {
	KeyID string
	Alias string
	Allow Perm
}

// CreateBucket creates a bucket with an optional global alias and an
// optional local alias of a key (granting that key the Allow permissions).
func (c *Catalog) CreateBucket(globalAlias string, local *LocalAliasSpec) (*Bucket, error) {
	if globalAlias != "" && !ValidBucketName(globalAlias) {
		return nil, fmt.Errorf("%w: invalid bucket name %q", ErrInvalidArgument, globalAlias)
	}
	if local != nil && !ValidBucketName(local.Alias) {
		return nil, fmt.Errorf("%w: invalid bucket name %q", ErrInvalidArgument, local.Alias)
	}
	now := c.nowMs()
	id := NewBucketID()
	bk := &Bucket{ID: id, CreatedMs: now}
	err := c.update(func(b *Batch) error {
		if globalAlias != "" {
			if err := c.assignAliasIn(b, globalAlias, id, now); err != nil {
				return err
			}
			bk.Aliases = map[string]LWW[bool]{globalAlias: {Time: now, Value: true}}
		}
		if local != nil {
			k, err := c.keys.GetIn(b, nil, []byte(local.KeyID))
			if err != nil {
				return err
			}
			if k == nil || k.Deleted {
				return fmt.Errorf("%w: %s", ErrNoSuchKey, local.KeyID)
			}
			if _, taken := k.LocalAlias(local.Alias); taken {
				return fmt.Errorf("%w: %s (local alias of key %s)", ErrBucketExists, local.Alias, local.KeyID)
			}
			la := k.LocalAliases[local.Alias].next(now, id)
			perm := k.Buckets[id].next(now, local.Allow)
			if _, err := c.keys.UpdateIn(b, nil, []byte(k.ID), func(k *Key) (*Key, error) {
				if k.LocalAliases == nil {
					k.LocalAliases = map[string]LWW[BucketID]{}
				}
				k.LocalAliases[local.Alias] = la
				if k.Buckets == nil {
					k.Buckets = map[BucketID]LWW[Perm]{}
				}
				k.Buckets[id] = perm
				return k, nil
			}); err != nil {
				return err
			}
			bk.LocalAliases = map[string]LWW[bool]{local.KeyID + "/" + local.Alias: {Time: la.Time, Value: true}}
			bk.Keys = map[string]LWW[Perm]{local.KeyID: perm}
		}
		return c.buckets.MergeIn(b, bk)
	})
	if err != nil {
		return nil, err
	}
	return c.Bucket(id)
}

// assignAliasIn points a free global alias at a bucket.
func (c *Catalog) assignAliasIn(b *Batch, name string, id BucketID, now uint64) error {
	_, err := c.aliases.UpdateIn(b, nil, []byte(name), func(a *Alias) (*Alias, error) {
		if a == nil {
			a = &Alias{Name: name}
		} else if !a.Bucket.Value.IsZero() {
			if a.Bucket.Value == id {
				return nil, nil // already there
			}
			return nil, fmt.Errorf("%w: %s", ErrBucketExists, name)
		}
		a.Bucket = a.Bucket.next(now, id)
		return a, nil
	})
	return err
}

// ListBuckets returns the live buckets sorted by ID.
func (c *Catalog) ListBuckets() ([]*Bucket, error) {
	return scanLive(c.buckets, func(bk *Bucket) bool { return !bk.Deleted })
}

// FindBucket finds a live bucket by global alias, full hex ID or unique
// hex ID prefix.
func (c *Catalog) FindBucket(pattern string) (*Bucket, error) {
	if bk, err := c.ResolveBucket(nil, pattern); err == nil {
		return bk, nil
	} else if !errors.Is(err, ErrNoSuchBucket) {
		return nil, err
	}
	if pattern == "" {
		return nil, fmt.Errorf("%w: empty name", ErrNoSuchBucket)
	}
	if _, err := hex.DecodeString(pattern + strings.Repeat("0", len(pattern)%2)); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSuchBucket, pattern)
	}
	buckets, err := c.ListBuckets()
	if err != nil {
		return nil, err
	}
	var found []*Bucket
	for _, bk := range buckets {
		if strings.HasPrefix(bk.ID.String(), strings.ToLower(pattern)) {
			found = append(found, bk)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNoSuchBucket, pattern)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%w: %q matches %d buckets", ErrAmbiguous, pattern, len(found))
}

// DeleteBucket deletes an empty bucket, its aliases and every permission on
// it.
func (c *Catalog) DeleteBucket(ctx context.Context, id BucketID) error {
	if _, err := c.Bucket(id); err != nil {
		return err
	}
	empty, err := c.isEmpty(ctx, id)
	if err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("%w: %v", ErrBucketNotEmpty, id)
	}
	now := c.nowMs()
	return c.update(func(b *Batch) error {
		bk, err := c.buckets.GetIn(b, nil, id[:])
		if err != nil {
			return err
		}
		if bk == nil || bk.Deleted {
			return fmt.Errorf("%w: %v", ErrNoSuchBucket, id)
		}
		for name, a := range bk.Aliases {
			if a.Value {
				if err := c.unassignAliasIn(b, name, id, now); err != nil {
					return err
				}
			}
		}
		keyIDs := map[string]bool{}
		for keyID := range bk.Keys {
			keyIDs[keyID] = true
		}
		for name := range bk.LocalAliases {
			keyIDs[name[:strings.IndexByte(name, '/')]] = true
		}
		for _, keyID := range slices.Sorted(maps.Keys(keyIDs)) {
			if _, err := c.keys.UpdateIn(b, nil, []byte(keyID), func(k *Key) (*Key, error) {
				if k == nil || k.Deleted {
					return nil, nil
				}
				if p, ok := k.Buckets[id]; ok {
					k.Buckets[id] = p.next(now, Perm{})
				}
				for name, l := range k.LocalAliases {
					if l.Value == id {
						k.LocalAliases[name] = l.next(now, BucketID{})
					}
				}
				return k, nil
			}); err != nil {
				return err
			}
		}
		return c.buckets.MergeIn(b, &Bucket{ID: id, Deleted: true})
	})
}

func (c *Catalog) unassignAliasIn(b *Batch, name string, id BucketID, now uint64) error {
	_, err := c.aliases.UpdateIn(b, nil, []byte(name), func(a *Alias) (*Alias, error) {
		if a == nil || a.Bucket.Value != id {
			return nil, nil
		}
		a.Bucket = a.Bucket.next(now, BucketID{})
		return a, nil
	})
	return err
}

// AddAlias gives a bucket one more global alias.
func (c *Catalog) AddAlias(id BucketID, name string) (*Bucket, error) {
	if !ValidBucketName(name) {
		return nil, fmt.Errorf("%w: invalid bucket name %q", ErrInvalidArgument, name)
	}
	now := c.nowMs()
	err := c.update(func(b *Batch) error {
		if bk, err := c.buckets.GetIn(b, nil, id[:]); err != nil {
			return err
		} else if bk == nil || bk.Deleted {
			return fmt.Errorf("%w: %v", ErrNoSuchBucket, id)
		}
		if err := c.assignAliasIn(b, name, id, now); err != nil {
			return err
		}
		return c.updateBucketIn(b, id, func(bk *Bucket) {
			if bk.Aliases == nil {
				bk.Aliases = map[string]LWW[bool]{}
			}
			bk.Aliases[name] = bk.Aliases[name].next(now, true)
		})
	})
	if err != nil {
		return nil, err
	}
	return c.Bucket(id)
}

// RemoveAlias removes a global alias of a bucket.
func (c *Catalog) RemoveAlias(id BucketID, name string) (*Bucket, error) {
	now := c.nowMs()
	err := c.update(func(b *Batch) error {
		bk, err := c.buckets.GetIn(b, nil, id[:])
		if err != nil {
			return err
		}
		if bk == nil || bk.Deleted {
			return fmt.Errorf("%w: %v", ErrNoSuchBucket, id)
		}
		if !bk.Aliases[name].Value {
			return fmt.Errorf("%w: %s is not an alias of bucket %v", ErrInvalidArgument, name, id)
		}
		if err := c.unassignAliasIn(b, name, id, now); err != nil {
			return err
		}
		return c.updateBucketIn(b, id, func(bk *Bucket) {
			bk.Aliases[name] = bk.Aliases[name].next(now, false)
		})
	})
	if err != nil {
		return nil, err
	}
	return c.Bucket(id)
}

// SetPermissions grants (allow) or revokes (!allow) the permissions set in
// p for a key on a bucket; permissions not set in p are left as they are.
func (c *Catalog) SetPermissions(id BucketID, keyID string, p Perm, allow bool) (*Bucket, error) {
	now := c.nowMs()
	err := c.update(func(b *Batch) error {
		bk, err := c.buckets.GetIn(b, nil, id[:])
		if err != nil {
			return err
		}
		if bk == nil || bk.Deleted {
			return fmt.Errorf("%w: %v", ErrNoSuchBucket, id)
		}
		k, err := c.keys.GetIn(b, nil, []byte(keyID))
		if err != nil {
			return err
		}
		if k == nil || k.Deleted {
			return fmt.Errorf("%w: %s", ErrNoSuchKey, keyID)
		}
		// The permission is kept twice, in the key and in the bucket, and
		// replicas may hold either copy newer: start from their join so
		// that the new register is later than both.
		cur := mergeLWW(k.Buckets[id], bk.Keys[keyID], comparePerm)
		v := cur.Value
		if allow {
			v = Perm{v.Read || p.Read, v.Write || p.Write, v.Owner || p.Owner}
		} else {
			v = Perm{v.Read && !p.Read, v.Write && !p.Write, v.Owner && !p.Owner}
		}
		reg := cur.next(now, v)
		if _, err := c.keys.UpdateIn(b, nil, []byte(keyID), func(k *Key) (*Key, error) {
			if k.Buckets == nil {
				k.Buckets = map[BucketID]LWW[Perm]{}
			}
			k.Buckets[id] = reg
			return k, nil
		}); err != nil {
			return err
		}
		return c.updateBucketIn(b, id, func(bk *Bucket) {
			if bk.Keys == nil {
				bk.Keys = map[string]LWW[Perm]{}
			}
			bk.Keys[keyID] = reg
		})
	})
	if err != nil {
		return nil, err
	}
	return c.Bucket(id)
}

// SetCORS replaces a bucket's CORS rules (nil removes them).
func (c *Catalog) SetCORS(id BucketID, rules []CORSRule) error {
	now := c.nowMs()
	_, err := updateEntry(c, c.buckets, nil, id[:], func(bk *Bucket) (*Bucket, error) {
		if bk == nil || bk.Deleted {
			return nil, fmt.Errorf("%w: %v", ErrNoSuchBucket, id)
		}
		bk.CORS = bk.CORS.next(now, rules)
		return bk, nil
	})
	return err
}

// ---- caches ----

// cacheMaxEntries bounds a cache; past it the cache starts over. Unknown
// names are cached too (as nil) so that a client hammering a missing key
// costs a map lookup, not a pebble read.
const cacheMaxEntries = 1 << 14

// cache keeps decoded entries of a catalog table by sort key. The table's
// change feed invalidates it; the generation check keeps a loader that read
// an old value before an invalidation from storing it after.
type cache[E any] struct {
	t  *Table[E]
	mu struct {
		sync.Mutex
		gen uint64
		m   map[string]*E
	}
}

func newCache[E any](t *Table[E]) *cache[E] {
	c := &cache[E]{t: t}
	c.mu.m = map[string]*E{}
	t.OnChange(func(_ [32]byte, sort []byte) {
		c.mu.Lock()
		c.mu.gen++
		delete(c.mu.m, string(sort))
		c.mu.Unlock()
	})
	return c
}

func (c *cache[E]) get(key string) (*E, error) {
	c.mu.Lock()
	e, ok := c.mu.m[key]
	gen := c.mu.gen
	c.mu.Unlock()
	if ok {
		return e, nil
	}
	e, err := c.t.Get(nil, []byte(key))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.mu.gen == gen {
		if len(c.mu.m) >= cacheMaxEntries {
			clear(c.mu.m)
		}
		c.mu.m[key] = e
	}
	c.mu.Unlock()
	return e, nil
}
