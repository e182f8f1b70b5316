package k2v

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func openCatalog(t *testing.T, isEmpty func(context.Context, BucketID) (bool, error)) (*Catalog, *DB) {
	t.Helper()
	db, err := Open(DBConfig{Dir: "db", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := NewCatalog(db, CatalogConfig{IsEmpty: isEmpty})
	if err != nil {
		t.Fatal(err)
	}
	return c, db
}

func TestKeys(t *testing.T) {
	c, _ := openCatalog(t, nil)
	k, err := c.CreateKey("app")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.ID, "GK") || len(k.ID) != 26 || len(k.Secret) != 64 {
		t.Errorf("created key %q / secret of %d chars", k.ID, len(k.Secret))
	}
	if got, err := c.Key(k.ID); err != nil || got.Secret != k.Secret {
		t.Fatalf("Key = %v, %v", got, err)
	}
	if _, err := c.ImportKey("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ id, secret string }{
		{"a/b", "secretsecret"}, {"ab", "secretsecret"}, {"GK1234", "short"}, {"GK1234", "with space"},
	} {
		if _, err := c.ImportKey(tt.id, tt.secret, ""); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ImportKey(%q, %q) = %v, want ErrInvalidArgument", tt.id, tt.secret, err)
		}
	}
	if _, err := c.ImportKey(k.ID, "anothersecret", ""); !errors.Is(err, ErrKeyExists) {
		t.Errorf("import of an existing ID: %v", err)
	}
	// idempotent provisioning
	if _, err := c.EnsureKey("GKdefault0001", "defaultsecret", "default"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.EnsureKey("GKdefault0001", "defaultsecret", "default"); err != nil {
		t.Errorf("second EnsureKey: %v", err)
	}
	if _, err := c.EnsureKey("GKdefault0001", "othersecret1", "default"); !errors.Is(err, ErrKeyExists) {
		t.Errorf("EnsureKey with another secret: %v", err)
	}
	keys, _ := c.ListKeys()
	if len(keys) != 3 {
		t.Errorf("ListKeys: %d keys", len(keys))
	}
	if got, err := c.FindKey("aws"); err != nil || got.ID != "AKIAIOSFODNN7EXAMPLE" {
		t.Errorf("FindKey by name: %v, %v", got, err)
	}
	if got, err := c.FindKey("AKIA"); err != nil || got.ID != "AKIAIOSFODNN7EXAMPLE" {
		t.Errorf("FindKey by prefix: %v, %v", got, err)
	}
	if _, err := c.FindKey("GK"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("FindKey ambiguous: %v", err)
	}
	name := "renamed"
	if k2, err := c.UpdateKey(k.ID, KeyUpdate{Name: &name}); err != nil || k2.Name.Value != name {
		t.Errorf("UpdateKey: %v, %v", k2, err)
	}
	if err := c.DeleteKey(k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Key(k.ID); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("deleted key still served: %v", err)
	}
	if _, err := c.ImportKey(k.ID, "anothersecret", ""); !errors.Is(err, ErrKeyExists) {
		t.Errorf("reuse of a deleted ID: %v", err)
	}
	if err := c.DeleteKey(k.ID); !errors.Is(err, ErrNoSuchKey) {
		t.Errorf("second delete: %v", err)
	}
}

func TestBucketsAndPermissions(t *testing.T) {
	empty := true
	c, _ := openCatalog(t, func(context.Context, BucketID) (bool, error) { return empty, nil })
	k, _ := c.CreateKey("k")
	bk, err := c.CreateBucket("photos", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateBucket("photos", nil); !errors.Is(err, ErrBucketExists) {
		t.Errorf("duplicate alias: %v", err)
	}
	for _, bad := range []string{"Photos", "ab", "-abc", "a..b", "192.168.1.1", strings.Repeat("a", 64), "a_b"} {
		if _, err := c.CreateBucket(bad, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("CreateBucket(%q) = %v", bad, err)
		}
	}
	// resolution: global alias, hex ID, unknown
	for _, name := range []string{"photos", bk.ID.String()} {
		got, err := c.ResolveBucket(k, name)
		if err != nil || got.ID != bk.ID {
			t.Errorf("ResolveBucket(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := c.ResolveBucket(k, "nope"); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("unknown bucket: %v", err)
	}
	// permissions
	if p := mustKey(t, c, k.ID).Perm(bk.ID); p != (Perm{}) {
		t.Errorf("initial perm %+v", p)
	}
	if _, err := c.SetPermissions(bk.ID, k.ID, Perm{Read: true, Write: true}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetPermissions(bk.ID, k.ID, Perm{Write: true}, false); err != nil {
		t.Fatal(err)
	}
	if p := mustKey(t, c, k.ID).Perm(bk.ID); p != (Perm{Read: true}) {
		t.Errorf("perm after allow rw, deny w: %+v", p)
	}
	got, _ := c.Bucket(bk.ID)
	if got.KeyPerm(k.ID) != (Perm{Read: true}) {
		t.Errorf("bucket side perm: %+v", got.KeyPerm(k.ID))
	}
	// several global aliases
	if _, err := c.AddAlias(bk.ID, "pictures"); err != nil {
		t.Fatal(err)
	}
	got, _ = c.Bucket(bk.ID)
	if a := strings.Join(got.GlobalAliases(), ","); a != "photos,pictures" {
		t.Errorf("aliases = %s", a)
	}
	// local alias
	local, err := c.CreateBucket("", &LocalAliasSpec{KeyID: k.ID, Alias: "mine", Allow: Perm{Read: true, Write: true, Owner: true}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.ResolveBucket(mustKey(t, c, k.ID), "mine"); err != nil || got.ID != local.ID {
		t.Errorf("local alias: %v, %v", got, err)
	}
	if _, err := c.ResolveBucket(nil, "mine"); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("local alias visible without the key: %v", err)
	}
	// delete: refused when not empty, then frees the aliases
	empty = false
	if err := c.DeleteBucket(ctx, bk.ID); !errors.Is(err, ErrBucketNotEmpty) {
		t.Errorf("delete non-empty: %v", err)
	}
	empty = true
	if err := c.DeleteBucket(ctx, bk.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResolveBucket(k, "photos"); !errors.Is(err, ErrNoSuchBucket) {
		t.Errorf("deleted bucket resolves: %v", err)
	}
	if p := mustKey(t, c, k.ID).Perm(bk.ID); p != (Perm{}) {
		t.Errorf("perm survives bucket deletion: %+v", p)
	}
	if _, err := c.CreateBucket("photos", nil); err != nil {
		t.Errorf("alias of a deleted bucket not reusable: %v", err)
	}
	// deleting the key removes its local alias from the bucket
	if err := c.DeleteKey(k.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = c.Bucket(local.ID)
	for name, l := range got.LocalAliases {
		if l.Value {
			t.Errorf("local alias %s survives key deletion", name)
		}
	}
	buckets, _ := c.ListBuckets()
	if len(buckets) != 2 {
		t.Errorf("ListBuckets: %d", len(buckets))
	}
}

func mustKey(t *testing.T, c *Catalog, id string) *Key {
	t.Helper()
	k, err := c.Key(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Key and bucket entries converge whatever the merge order.
func TestCatalogEntryMerge(t *testing.T) {
	a := &Key{ID: "k", Secret: "s", Name: LWW[string]{1, "a"}, Buckets: map[BucketID]LWW[Perm]{{1}: {5, Perm{Read: true}}}}
	b := &Key{ID: "k", Secret: "s", Name: LWW[string]{1, "b"}, Buckets: map[BucketID]LWW[Perm]{{1}: {6, Perm{}}, {2}: {1, Perm{Owner: true}}}}
	ab, ba := cloneKey(a), cloneKey(b)
	ab.merge(cloneKey(b))
	ba.merge(cloneKey(a))
	ks := keySchema{}
	if string(ks.Encode(nil, ab)) != string(ks.Encode(nil, ba)) {
		t.Errorf("key merge not commutative: %+v vs %+v", ab, ba)
	}
	if ab.Name.Value != "b" || ab.Perm(BucketID{1}) != (Perm{}) || !ab.Perm(BucketID{2}).Owner {
		t.Errorf("merge result %+v", ab)
	}
	del := &Key{ID: "k", Deleted: true}
	ab.merge(del)
	if !ab.Deleted || ab.Secret != "" {
		t.Errorf("deletion does not win: %+v", ab)
	}
}

func cloneKey(k *Key) *Key {
	ks := keySchema{}
	c, err := ks.Decode(ks.Encode(nil, k))
	if err != nil {
		panic(err)
	}
	return c
}

// skewedClock is a node's clock, set by the test.
type skewedClock struct{ t time.Time }

func (c *skewedClock) now() time.Time { return c.t }

func openCatalogAt(t *testing.T, now func() time.Time) *Catalog {
	t.Helper()
	db, err := Open(DBConfig{Dir: "db", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := NewCatalog(db, CatalogConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replicateCatalog merges every entry of src's tables into dst, as
// replication of the full-copy tables will.
func replicateCatalog(t *testing.T, dst, src *Catalog) {
	t.Helper()
	all := func(*Key) bool { return true }
	keys, err := scanLive(src.keys, all)
	if err != nil {
		t.Fatal(err)
	}
	buckets, err := scanLive(src.buckets, func(*Bucket) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	aliases, err := scanLive(src.aliases, func(*Alias) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(dst.keys.Merge(keys...), dst.buckets.Merge(buckets...), dst.aliases.Merge(aliases...)); err != nil {
		t.Fatal(err)
	}
}

// A value written by a node whose clock is ahead is replaced by a node
// whose clock is right: the new value wins, here and once both nodes have
// exchanged their entries, because each write is stamped after the value
// it replaces whatever the clocks say.
func TestCatalogWritesWinOverFutureStamps(t *testing.T) {
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clockA := &skewedClock{start.Add(time.Hour)} // node A is an hour ahead
	clockB := &skewedClock{start}
	a, b := openCatalogAt(t, clockA.now), openCatalogAt(t, clockB.now)

	k, err := a.CreateKey("app")
	if err != nil {
		t.Fatal(err)
	}
	bk, err := a.CreateBucket("photos", nil)
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	if _, err := a.UpdateKey(k.ID, KeyUpdate{AllowCreateBucket: &yes}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetPermissions(bk.ID, k.ID, Perm{Read: true, Write: true}, true); err != nil {
		t.Fatal(err)
	}
	if err := a.SetCORS(bk.ID, []CORSRule{{AllowedOrigins: []string{"https://a.example"}}}); err != nil {
		t.Fatal(err)
	}
	replicateCatalog(t, b, a)

	// Node B, an hour behind A's stamps, overwrites every register.
	newName, no := "renamed", false
	if _, err := b.UpdateKey(k.ID, KeyUpdate{Name: &newName, AllowCreateBucket: &no}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.SetPermissions(bk.ID, k.ID, Perm{Write: true}, false); err != nil {
		t.Fatal(err)
	}
	if err := b.SetCORS(bk.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RemoveAlias(bk.ID, "photos"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddAlias(bk.ID, "pictures"); err != nil {
		t.Fatal(err)
	}
	replicateCatalog(t, a, b)

	for name, c := range map[string]*Catalog{"A": a, "B": b} {
		k := mustKey(t, c, k.ID)
		if k.Name.Value != "renamed" || k.AllowCreateBucket.Value {
			t.Errorf("node %s: key name %q, allow create bucket %v; want B's writes", name, k.Name.Value, k.AllowCreateBucket.Value)
		}
		if got, want := k.Perm(bk.ID), (Perm{Read: true}); got != want {
			t.Errorf("node %s: key permission %+v, want %+v", name, got, want)
		}
		got, err := c.Bucket(bk.ID)
		if err != nil {
			t.Fatalf("node %s: %v", name, err)
		}
		if p := got.KeyPerm(k.ID); p != (Perm{Read: true}) {
			t.Errorf("node %s: bucket's permission for the key %+v, want read only", name, p)
		}
		if got.CORS.Value != nil {
			t.Errorf("node %s: CORS %+v, want none", name, got.CORS.Value)
		}
		if aliases := got.GlobalAliases(); len(aliases) != 1 || aliases[0] != "pictures" {
			t.Errorf("node %s: global aliases %v, want [pictures]", name, aliases)
		}
		if _, err := c.LookupAlias("photos"); !errors.Is(err, ErrNoSuchBucket) {
			t.Errorf("node %s: alias photos: %v, want ErrNoSuchBucket", name, err)
		}
		if id, err := c.LookupAlias("pictures"); err != nil || id != bk.ID {
			t.Errorf("node %s: alias pictures = %v, %v", name, id, err)
		}
	}
}

// The copy of a permission in the bucket may be newer than the one in the
// key (replicas receive the two entries separately): a new grant is
// stamped after both.
func TestSetPermissionsStampsAfterBothCopies(t *testing.T) {
	clock := &skewedClock{time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	c := openCatalogAt(t, clock.now)
	k, err := c.CreateKey("app")
	if err != nil {
		t.Fatal(err)
	}
	bk, err := c.CreateBucket("bkt", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Only the bucket's copy has heard of a grant made in the future.
	future := uint64(clock.t.Add(time.Hour).UnixMilli())
	if err := c.buckets.Merge(&Bucket{ID: bk.ID, Keys: map[string]LWW[Perm]{k.ID: {future, Perm{Read: true, Owner: true}}}}); err != nil {
		t.Fatal(err)
	}
	got, err := c.SetPermissions(bk.ID, k.ID, Perm{Owner: true}, false)
	if err != nil {
		t.Fatal(err)
	}
	key := mustKey(t, c, k.ID)
	if p := got.KeyPerm(k.ID); p != (Perm{Read: true}) || key.Perm(bk.ID) != p {
		t.Errorf("after revoking owner: bucket says %+v, key says %+v; want read only in both", p, key.Perm(bk.ID))
	}
	if tb, tk := got.Keys[k.ID].Time, key.Buckets[bk.ID].Time; tb <= future || tk != tb {
		t.Errorf("stamps: bucket %d, key %d; want equal and after %d", tb, tk, future)
	}
}
