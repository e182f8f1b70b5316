package k2vhttp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/k2v"
)

// testServer is a real K2V server on a loopback port over an in-memory
// pebble, with one bucket "app" and a key that may read and write it.
type testServer struct {
	t       *testing.T
	url     string
	region  string
	db      *k2v.DB
	items   *k2v.Items
	catalog *k2v.Catalog
	key     *k2v.Key
	bucket  *k2v.Bucket
	srv     *Server
	client  *http.Client
	now     func() time.Time
}

var testNodeID = cluster.NodeID{0x4b, 0x8f, 0x2a, 0x9c, 0x1d, 0x3e, 0x5f, 0x60}

func startServer(t *testing.T) *testServer {
	t.Helper()
	return startServerNode(t, testNodeID)
}

// startServerNode is startServer for a node with another ID: two of them
// act as two replicas whose items the tests copy by hand (see replicate).
func startServerNode(t *testing.T, node cluster.NodeID) *testServer {
	t.Helper()
	db, err := k2v.Open(k2v.DBConfig{Dir: "db", FS: k2v.NewMemFS()})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{t: t, db: db, region: "garage", now: time.Now}
	ts.items, err = k2v.NewItems(db, k2v.ItemsConfig{Node: node})
	if err != nil {
		t.Fatal(err)
	}
	ts.catalog, err = k2v.NewCatalog(db, k2v.CatalogConfig{IsEmpty: func(ctx context.Context, id k2v.BucketID) (bool, error) {
		return ts.items.BucketEmpty(ctx, id)
	}})
	if err != nil {
		t.Fatal(err)
	}
	ts.key, err = ts.catalog.ImportKey("GK31c2f218a2e44f485b94239e", "b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835", "test")
	if err != nil {
		t.Fatal(err)
	}
	ts.bucket, err = ts.catalog.CreateBucket("app", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ts.bucket, err = ts.catalog.SetPermissions(ts.bucket.ID, ts.key.ID, k2v.Perm{Read: true, Write: true, Owner: true}, true); err != nil {
		t.Fatal(err)
	}
	ts.srv = New(Config{Region: ts.region, Items: ts.items, Catalog: ts.catalog, MaxBodyBytes: 1 << 20, Now: func() time.Time { return ts.now() }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.Serve(ln)
	ts.url = "http://" + ln.Addr().String()
	ts.client = &http.Client{Timeout: time.Minute}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ts.srv.Shutdown(ctx)
		db.Close()
	})
	return ts
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) String() string { return strings.TrimSpace(string(r.body)) }

// do sends a request signed for the test key; path is the raw path with
// its query ("/app/pk?sort_key=a").
func (ts *testServer) do(method, path string, body []byte, headers ...string) *response {
	ts.t.Helper()
	req := ts.request(method, path, body, headers...)
	ts.sign(req, body, ts.key.ID, ts.key.Secret, ts.region)
	return ts.send(req)
}

func (ts *testServer) request(method, path string, body []byte, headers ...string) *http.Request {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url+path, bytes.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	// keep the path exactly as written, escapes included
	p, q, _ := strings.Cut(path, "?")
	req.URL.Opaque = "//" + req.URL.Host + p
	req.URL.RawQuery = q
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

func (ts *testServer) sign(req *http.Request, body []byte, id, secret, region string) {
	ts.t.Helper()
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	ts.signAs(req, signing{id: id, secret: secret, region: region, service: "k2v", at: ts.now(), payload: hash})
}

// signing describes how signAs signs a request.
type signing struct {
	id, secret      string
	region, service string
	at              time.Time
	payload         string // the X-Amz-Content-Sha256 value
}

// signAs signs req with the AWS SDK signer. The SDK rewrites the query
// into its canonical form; signAs puts the raw query back, as a client that
// does not rewrite it (Garage's Rust client) would send it: the tests then
// send exactly the query they wrote.
func (ts *testServer) signAs(req *http.Request, s signing) {
	ts.t.Helper()
	rawQuery := req.URL.RawQuery
	req.Header.Set("X-Amz-Content-Sha256", s.payload)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.id, SecretAccessKey: s.secret}, req, s.payload, s.service, s.region, s.at)
	if err != nil {
		ts.t.Fatal(err)
	}
	req.URL.RawQuery = rawQuery
}

func (ts *testServer) send(req *http.Request) *response {
	ts.t.Helper()
	resp, err := ts.client.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

func TestSmoke(t *testing.T) {
	ts := startServer(t)
	r := ts.do("PUT", "/app/pk?sort_key=a", []byte("hello"))
	if r.status != 204 {
		t.Fatalf("insert: %d %s", r.status, r)
	}
	r = ts.do("GET", "/app/pk?sort_key=a", nil)
	if r.status != 200 || r.String() != `["aGVsbG8="]` {
		t.Fatalf("read: %d %s", r.status, r)
	}
}
