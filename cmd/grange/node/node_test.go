package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	k2vc "github.com/grangeio/grange/clients/k2v"
	"github.com/grangeio/grange/cmd/grange/internal/adminapi"
)

const (
	testKey    = "GKa1b2c3d4e5f60718293a4b5c"
	testSecret = "4f0e8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"
)

// startNode starts a single-node server on loopback ports over metadata
// in dir ("" = a fresh temporary directory).
func startNode(t *testing.T, dir string) *Node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	n, err := New(Config{
		MetadataDir:      dir,
		DataDir:          filepath.Join(dir, "data"),
		SingleNode:       true,
		K2VAddr:          "127.0.0.1:0",
		AdminAddr:        "127.0.0.1:0",
		DefaultAccessKey: testKey,
		DefaultSecretKey: testSecret,
		DefaultBucket:    "app",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	return n
}

func client(t *testing.T, n *Node, bucket, key, secret string) *k2vc.Client {
	t.Helper()
	c, err := k2vc.New(k2vc.Config{Endpoint: "http://" + n.K2VAddr(), AccessKeyID: key, SecretAccessKey: secret, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func values(it *k2vc.Item) string {
	var s []string
	for _, v := range it.Values {
		if v.Tombstone {
			s = append(s, "null")
		} else {
			s = append(s, string(v.Data))
		}
	}
	return strings.Join(s, ",")
}

// The SDK against a real node: every endpoint, the causality flow and the
// paginating iterators.
func TestSDKEndToEnd(t *testing.T) {
	n := startNode(t, "")
	c := client(t, n, "app", testKey, testSecret)
	ctx := context.Background()

	if _, err := c.ReadItem(ctx, "mail", "INBOX"); !errors.Is(err, k2vc.ErrNoSuchKey) {
		t.Fatalf("ReadItem of a missing item: %v", err)
	}
	if err := c.InsertItem(ctx, "mail", "INBOX", []byte("v1"), ""); err != nil {
		t.Fatal(err)
	}
	it, err := c.ReadItem(ctx, "mail", "INBOX")
	if err != nil || values(it) != "v1" {
		t.Fatalf("ReadItem = %v, %v", it, err)
	}
	// replace with the token; a concurrent write without it conflicts
	if err := c.InsertItem(ctx, "mail", "INBOX", []byte("v2"), it.CausalityToken); err != nil {
		t.Fatal(err)
	}
	if err := c.InsertItem(ctx, "mail", "INBOX", []byte("v3"), it.CausalityToken); err != nil {
		t.Fatal(err)
	}
	it, _ = c.ReadItem(ctx, "mail", "INBOX")
	if values(it) != "v2,v3" {
		t.Fatalf("after concurrent writes: %s", values(it))
	}
	if _, _, err := c.ReadValue(ctx, "mail", "INBOX"); !errors.Is(err, k2vc.ErrConflict) {
		t.Fatalf("binary read of a conflict: %v", err)
	}
	if err := c.InsertItem(ctx, "mail", "INBOX", []byte("merged"), it.CausalityToken); err != nil {
		t.Fatal(err)
	}
	v, tok, err := c.ReadValue(ctx, "mail", "INBOX")
	if err != nil || string(v.Data) != "merged" || tok == "" {
		t.Fatalf("ReadValue = %q, %q, %v", v.Data, tok, err)
	}

	// PollItem wakes on a write
	done := make(chan *k2vc.Item, 1)
	go func() {
		it, _, err := c.PollItem(ctx, "mail", "INBOX", tok, &k2vc.PollOptions{Timeout: time.Minute})
		if err != nil {
			t.Error(err)
		}
		done <- it
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.InsertItem(ctx, "mail", "INBOX", []byte("new mail"), tok); err != nil {
		t.Fatal(err)
	}
	select {
	case it := <-done:
		if it == nil || values(it) != "new mail" {
			t.Fatalf("PollItem woke with %v", it)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PollItem not woken")
	}

	// batches, past one page
	var ops []k2vc.InsertOp
	for i := range 2500 {
		ops = append(ops, k2vc.InsertOp{PartitionKey: "log", SortKey: fmt.Sprintf("%06d", i), Value: k2vc.Bytes([]byte{byte(i)})})
	}
	if err := c.InsertBatch(ctx, ops); err != nil {
		t.Fatal(err)
	}
	count := 0
	for it, err := range c.Scan(ctx, "log", nil) {
		if err != nil {
			t.Fatal(err)
		}
		if it.SortKey != fmt.Sprintf("%06d", count) {
			t.Fatalf("Scan item %d has sort key %s", count, it.SortKey)
		}
		count++
	}
	if count != 2500 {
		t.Fatalf("Scan returned %d items", count)
	}
	res, err := c.ReadBatch(ctx, []k2vc.Search{{PartitionKey: "log", Prefix: "0000", Limit: 3}, {PartitionKey: "mail", Start: "INBOX", SingleItem: true}})
	if err != nil || len(res) != 2 || len(res[0].Items) != 3 || !res[0].More || res[0].NextStart != "000003" || len(res[1].Items) != 1 {
		t.Fatalf("ReadBatch = %+v, %v", res, err)
	}
	var parts []string
	for p, err := range c.ListPartitions(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s:%d", p.PartitionKey, p.Entries))
	}
	if got := strings.Join(parts, " "); got != "log:2500 mail:1" {
		t.Fatalf("ListPartitions = %s", got)
	}

	// PollRange: the initial listing, then only what changed
	first, changed, err := c.PollRange(ctx, "log", "", &k2vc.PollRangeOptions{Prefix: "0024"})
	if err != nil || !changed || len(first.Items) != 100 {
		t.Fatalf("initial PollRange: %d items, %v, %v", len(first.Items), changed, err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.InsertItem(ctx, "log", "002442", []byte("changed"), "")
		c.InsertItem(ctx, "log", "009999", []byte("outside"), "")
	}()
	next, changed, err := c.PollRange(ctx, "log", first.SeenMarker, &k2vc.PollRangeOptions{Prefix: "0024", Timeout: time.Minute})
	if err != nil || !changed || len(next.Items) != 1 || next.Items[0].SortKey != "002442" {
		t.Fatalf("PollRange after a change: %+v, %v, %v", next, changed, err)
	}

	// DeleteBatch, then the index forgets the partition
	del, err := c.DeleteBatch(ctx, []k2vc.DeleteSearch{{PartitionKey: "log"}})
	if err != nil || len(del) != 1 || del[0].DeletedItems != 2501 {
		t.Fatalf("DeleteBatch = %+v, %v", del, err)
	}
	idx, err := c.ReadIndex(ctx, nil)
	if err != nil || len(idx.PartitionKeys) != 1 || idx.PartitionKeys[0].PartitionKey != "mail" {
		t.Fatalf("ReadIndex after delete = %+v, %v", idx, err)
	}
	if err := c.DeleteItem(ctx, "mail", "INBOX", ""); err != nil {
		t.Fatal(err)
	}
	it, _ = c.ReadItem(ctx, "mail", "INBOX")
	if values(it) != "new mail,null" {
		t.Fatalf("delete without token: %s", values(it))
	}

	// errors
	if _, err := client(t, n, "nope", testKey, testSecret).ReadItem(ctx, "a", "b"); !errors.Is(err, k2vc.ErrNoSuchBucket) {
		t.Errorf("unknown bucket: %v", err)
	}
	if _, err := client(t, n, "app", testKey, strings.Repeat("0", 64)).ReadItem(ctx, "a", "b"); !errors.Is(err, k2vc.ErrAccessDenied) {
		t.Errorf("wrong secret: %v", err)
	}
}

// Acknowledged writes survive a clean restart, and provisioning at start
// is idempotent.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	c := client(t, n, "app", testKey, testSecret)
	ctx := context.Background()
	for i := range 50 {
		if err := c.InsertItem(ctx, "p", fmt.Sprint(i), []byte("v"), ""); err != nil {
			t.Fatal(err)
		}
	}
	id := n.ID()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, dir)
	if n2.ID() != id {
		t.Errorf("node ID changed across restart: %v → %v", id, n2.ID())
	}
	if n2.FirstStart != nil {
		t.Error("second start reported as first")
	}
	c2 := client(t, n2, "app", testKey, testSecret)
	res, err := c2.ReadBatch(ctx, []k2vc.Search{{PartitionKey: "p"}})
	if err != nil || len(res[0].Items) != 50 {
		t.Fatalf("after restart: %+v, %v", res, err)
	}
	n2.Close(ctx)

	// a different secret for the provisioned key is refused, not applied
	_, err = New(Config{MetadataDir: dir, DataDir: filepath.Join(dir, "data"), SingleNode: true, DefaultAccessKey: testKey, DefaultSecretKey: strings.Repeat("1", 64)})
	if err == nil || !strings.Contains(err.Error(), "another secret") {
		t.Errorf("changed default secret: %v", err)
	}
}

func TestFirstStartCreatesKey(t *testing.T) {
	dir := t.TempDir()
	n, err := New(Config{MetadataDir: dir, DataDir: filepath.Join(dir, "data"), SingleNode: true, K2VAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if n.FirstStart == nil || !strings.HasPrefix(n.FirstStart.AccessKeyID, "GK") || len(n.FirstStart.SecretAccessKey) != 64 {
		t.Fatalf("FirstStart = %+v", n.FirstStart)
	}
	n.Close(context.Background())
	n, err = New(Config{MetadataDir: dir, DataDir: filepath.Join(dir, "data"), SingleNode: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(context.Background())
	if n.FirstStart != nil {
		t.Error("key generated again on second start")
	}
	keys, _ := n.Catalog().ListKeys()
	if len(keys) != 1 {
		t.Errorf("%d keys after two starts", len(keys))
	}
}

// Shutdown ends a long poll at once and lets requests in progress finish.
func TestShutdownEndsPolls(t *testing.T) {
	n := startNode(t, "")
	c := client(t, n, "app", testKey, testSecret)
	ctx := context.Background()
	c.InsertItem(ctx, "p", "s", []byte("x"), "")
	it, _ := c.ReadItem(ctx, "p", "s")
	type result struct {
		changed bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		_, changed, err := c.PollItem(ctx, "p", "s", it.CausalityToken, &k2vc.PollOptions{Timeout: 10 * time.Minute})
		done <- result{changed, err}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v with a poll open", d)
	}
	select {
	case r := <-done:
		if r.err != nil || r.changed {
			t.Errorf("poll at shutdown: changed=%v err=%v", r.changed, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("poll still open after shutdown")
	}
}

func adminClient(n *Node, token string) *adminapi.Client {
	return &adminapi.Client{Addr: n.AdminAddr(), Token: token}
}

func TestAdminAPI(t *testing.T) {
	n := startNode(t, "")
	a := adminClient(n, n.AdminToken())
	ctx := context.Background()
	call := func(method, op string, q url.Values, body, out any) error {
		t.Helper()
		return a.Call(ctx, method, op, q, body, out)
	}
	apiCode := func(err error) string {
		var e *adminapi.Error
		if errors.As(err, &e) {
			return fmt.Sprintf("%d %s", e.Status, e.Code)
		}
		return fmt.Sprint(err)
	}

	// health
	resp, err := http.Get("http://" + n.AdminAddr() + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v %v", resp, err)
	}
	resp.Body.Close()
	var health adminapi.GetClusterHealthResponse
	if err := call("GET", "GetClusterHealth", nil, nil, &health); err != nil || health.Status != "healthy" || health.Partitions != 256 || health.StorageNodes != 1 {
		t.Fatalf("GetClusterHealth = %+v, %v", health, err)
	}
	// token
	if err := adminClient(n, "wrong").Call(ctx, "GET", "ListKeys", nil, nil, nil); apiCode(err) != "403 AccessDenied" {
		t.Errorf("wrong token: %v", err)
	}
	if err := call("GET", "NoSuchOperation", nil, nil, nil); apiCode(err) != "404 NoSuchEndpoint" {
		t.Errorf("unknown operation: %v", err)
	}
	if err := call("POST", "ListKeys", nil, nil, nil); apiCode(err) != "405 MethodNotAllowed" {
		t.Errorf("wrong method: %v", err)
	}

	// keys
	name := "alice"
	var created adminapi.GetKeyInfoResponse
	if err := call("POST", "CreateKey", nil, adminapi.CreateKeyRequest{Name: &name}, &created); err != nil || created.SecretAccessKey == nil || created.Name != "alice" {
		t.Fatalf("CreateKey = %+v, %v", created, err)
	}
	var imported adminapi.GetKeyInfoResponse
	if err := call("POST", "ImportKey", nil, adminapi.ImportKeyRequest{AccessKeyID: "AKIAEXAMPLE123", SecretAccessKey: "bobsecretkey"}, &imported); err != nil || imported.SecretAccessKey != nil {
		t.Fatalf("ImportKey = %+v, %v", imported, err)
	}
	if err := call("POST", "ImportKey", nil, adminapi.ImportKeyRequest{AccessKeyID: "AKIAEXAMPLE123", SecretAccessKey: "bobsecretkey"}, nil); apiCode(err) != "409 KeyAlreadyExists" {
		t.Errorf("import twice: %v", err)
	}
	if err := call("POST", "ImportKey", nil, map[string]any{"accessKeyId": "x/y", "secretAccessKey": "12345678"}, nil); apiCode(err) != "400 InvalidRequest" {
		t.Errorf("invalid key id: %v", err)
	}
	if err := call("POST", "ImportKey", nil, map[string]any{"accessKeyId": "AKIAOTHER", "secretAccessKey": "12345678", "nmae": "typo"}, nil); apiCode(err) != "400 InvalidRequest" {
		t.Errorf("unknown field: %v", err)
	}
	var keys []adminapi.ListKeysResponseItem
	if err := call("GET", "ListKeys", nil, nil, &keys); err != nil || len(keys) != 3 {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
	var info adminapi.GetKeyInfoResponse
	if err := call("GET", "GetKeyInfo", url.Values{"search": {"alice"}, "showSecretKey": {"true"}}, nil, &info); err != nil || info.AccessKeyID != created.AccessKeyID || *info.SecretAccessKey != *created.SecretAccessKey {
		t.Fatalf("GetKeyInfo = %+v, %v", info, err)
	}
	if err := call("GET", "GetKeyInfo", url.Values{"id": {"GKnothere"}}, nil, nil); apiCode(err) != "404 NoSuchAccessKey" {
		t.Errorf("unknown key: %v", err)
	}

	// buckets
	alias := "photos"
	var bk adminapi.GetBucketInfoResponse
	if err := call("POST", "CreateBucket", nil, adminapi.CreateBucketRequest{GlobalAlias: &alias}, &bk); err != nil || len(bk.ID) != 64 {
		t.Fatalf("CreateBucket = %+v, %v", bk, err)
	}
	if err := call("POST", "CreateBucket", nil, adminapi.CreateBucketRequest{GlobalAlias: &alias}, nil); apiCode(err) != "409 BucketAlreadyExists" {
		t.Errorf("duplicate bucket: %v", err)
	}
	bad := "Not_Valid"
	if err := call("POST", "CreateBucket", nil, adminapi.CreateBucketRequest{GlobalAlias: &bad}, nil); apiCode(err) != "400 InvalidRequest" {
		t.Errorf("invalid bucket name: %v", err)
	}
	perm := adminapi.BucketKeyPermChangeRequest{BucketID: bk.ID, AccessKeyID: created.AccessKeyID, Permissions: adminapi.BucketKeyPerm{Read: true, Write: true}}
	if err := call("POST", "AllowBucketKey", nil, perm, &bk); err != nil || len(bk.Keys) != 1 || !bk.Keys[0].Permissions.Write {
		t.Fatalf("AllowBucketKey = %+v, %v", bk, err)
	}
	perm.Permissions = adminapi.BucketKeyPerm{Write: true}
	if err := call("POST", "DenyBucketKey", nil, perm, &bk); err != nil || !bk.Keys[0].Permissions.Read || bk.Keys[0].Permissions.Write {
		t.Fatalf("DenyBucketKey = %+v, %v", bk, err)
	}
	if err := call("POST", "AddBucketAlias", nil, adminapi.BucketAliasRequest{BucketID: bk.ID, GlobalAlias: "pictures"}, &bk); err != nil || strings.Join(bk.GlobalAliases, ",") != "photos,pictures" {
		t.Fatalf("AddBucketAlias = %+v, %v", bk, err)
	}
	var buckets []adminapi.ListBucketsResponseItem
	if err := call("GET", "ListBuckets", nil, nil, &buckets); err != nil || len(buckets) != 2 {
		t.Fatalf("ListBuckets = %+v, %v", buckets, err)
	}
	if err := call("GET", "GetBucketInfo", url.Values{"globalAlias": {"pictures"}}, nil, &bk); err != nil || bk.ID != buckets[1].ID && bk.ID != buckets[0].ID {
		t.Fatalf("GetBucketInfo = %+v, %v", bk, err)
	}
	// the key can now read the bucket through K2V, not write it
	c := client(t, n, "photos", created.AccessKeyID, *created.SecretAccessKey)
	if err := c.InsertItem(ctx, "a", "b", []byte("x"), ""); !errors.Is(err, k2vc.ErrAccessDenied) {
		t.Errorf("write with read permission only: %v", err)
	}
	if _, err := c.ReadItem(ctx, "a", "b"); !errors.Is(err, k2vc.ErrNoSuchKey) {
		t.Errorf("read with read permission: %v", err)
	}
	// a bucket holding items cannot be deleted
	owner := client(t, n, "app", testKey, testSecret)
	owner.InsertItem(ctx, "p", "s", []byte("x"), "")
	var app adminapi.GetBucketInfoResponse
	call("GET", "GetBucketInfo", url.Values{"search": {"app"}}, nil, &app)
	if err := call("POST", "DeleteBucket", url.Values{"id": {app.ID}}, nil, nil); apiCode(err) != "409 BucketNotEmpty" {
		t.Errorf("delete non-empty bucket: %v", err)
	}
	if err := call("POST", "DeleteBucket", url.Values{"id": {bk.ID}}, nil, nil); err != nil {
		t.Fatalf("DeleteBucket: %v", err)
	}
	if err := call("GET", "GetBucketInfo", url.Values{"globalAlias": {"photos"}}, nil, nil); apiCode(err) != "404 NoSuchBucket" {
		t.Errorf("deleted bucket: %v", err)
	}
	if err := call("POST", "DeleteKey", url.Values{"id": {created.AccessKeyID}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadItem(ctx, "a", "b"); !errors.Is(err, k2vc.ErrAccessDenied) && !errors.Is(err, k2vc.ErrNoSuchBucket) {
		t.Errorf("deleted key still works: %v", err)
	}
}

// Concurrent writers on one item: every acknowledged write is accounted for
// (each lands as a value, or is superseded only by a write that carried its
// token).
func TestConcurrentWritersLoseNothing(t *testing.T) {
	n := startNode(t, "")
	c := client(t, n, "app", testKey, testSecret)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if err := c.InsertItem(ctx, "p", "s", []byte(fmt.Sprintf("w%d-%d", w, i)), ""); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	it, err := c.ReadItem(ctx, "p", "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Values) != 160 {
		t.Errorf("%d values after 160 concurrent token-less writes", len(it.Values))
	}
}
