package k2v

import (
	"context"
	"errors"
	"strings"
	"testing"

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
