package k2vhttp

// Helpers of the conformance tests (k2v-api.md). They are written from the
// specification: tokens are decoded here independently of package k2v, and
// responses are checked as raw JSON.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/k2v"
)

// Node ids (§4.1: the first 8 bytes of the node id, big endian) of the
// harness's node and of a second node used for the multi-node examples.
const (
	n1 uint64 = 0x4b8f2a9c1d3e5f60
	n2 uint64 = 0xa1b2c3d4e5f60718
)

var testNodeID2 = cluster.NodeID{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18}

// emptyToken is the token of the empty vector clock (§4.4).
const emptyToken = "AAAAAAAAAAA"

// itemPath is the path and query of a single-item request on bucket app.
func itemPath(pk, sk string) string {
	return "/app/" + url.PathEscape(pk) + "?sort_key=" + url.QueryEscape(sk)
}

func wantStatus(t *testing.T, what string, r *response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d (body %q)", what, r.status, status, r.body)
	}
}

// checkErrorBody decodes an error response and checks its form (§12):
// Content-Type application/json, exactly the members code, message, region
// and path, all strings.
func checkErrorBody(t *testing.T, what string, r *response) map[string]string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: error body %q is not a JSON object: %v", what, r.body, err)
	}
	out := map[string]string{}
	for _, k := range []string{"code", "message", "region", "path"} {
		s, ok := m[k].(string)
		if !ok {
			t.Errorf("%s: error body %s: member %q is %v, want a string", what, r.body, k, m[k])
		}
		out[k] = s
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, []string{"code", "message", "path", "region"}) {
		t.Errorf("%s: error body members %v, want code, message, path, region", what, got)
	}
	if out["region"] != "garage" {
		t.Errorf("%s: error region %q, want garage", what, out["region"])
	}
	return out
}

// wantError checks that r is an error response with this status and code.
func wantError(t *testing.T, what string, r *response, status int, code string) map[string]string {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d (body %s)", what, r.status, status, r.body)
	}
	if r.status < 400 {
		return nil
	}
	e := checkErrorBody(t, what, r)
	if e["code"] != code {
		t.Errorf("%s: code %q, want %q (message %q)", what, e["code"], code, e["message"])
	}
	return e
}

// wantMessage checks that an error message starts with prefix.
func wantMessage(t *testing.T, what string, e map[string]string, prefix string) {
	t.Helper()
	if e != nil && !strings.HasPrefix(e["message"], prefix) {
		t.Errorf("%s: message %q, want it to start with %q", what, e["message"], prefix)
	}
}

// showValues turns a JSON array of values (base64 strings and nulls) into
// the same array with the values decoded: ["A",null].
func showValues(t *testing.T, vs []*string) string {
	t.Helper()
	out := make([]any, len(vs))
	for i, v := range vs {
		if v == nil {
			continue
		}
		b, err := base64.StdEncoding.Strict().DecodeString(*v)
		if err != nil {
			t.Fatalf("value %q is not padded standard base64: %v", *v, err)
		}
		out[i] = string(b)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// decodeValues decodes a JSON ReadItem body and shows it with showValues.
func decodeValues(t *testing.T, body []byte) string {
	t.Helper()
	var vs []*string
	if err := json.Unmarshal(body, &vs); err != nil {
		t.Fatalf("body %q is not a JSON array of values: %v", body, err)
	}
	return showValues(t, vs)
}

const tokenHeader = "X-Garage-Causality-Token"

// put writes a value with InsertItem; token "" sends no token.
func (ts *testServer) put(pk, sk, value, token string) {
	ts.t.Helper()
	var h []string
	if token != "" {
		h = []string{tokenHeader, token}
	}
	r := ts.do("PUT", itemPath(pk, sk), []byte(value), h...)
	if r.status != 204 {
		ts.t.Fatalf("PUT %s/%s: %d %s", pk, sk, r.status, r.body)
	}
}

// del deletes with DeleteItem; token "" sends no token.
func (ts *testServer) del(pk, sk, token string) {
	ts.t.Helper()
	var h []string
	if token != "" {
		h = []string{tokenHeader, token}
	}
	r := ts.do("DELETE", itemPath(pk, sk), nil, h...)
	if r.status != 204 {
		ts.t.Fatalf("DELETE %s/%s: %d %s", pk, sk, r.status, r.body)
	}
}

// read reads an item in JSON and returns its decoded values (showValues)
// and its token.
func (ts *testServer) read(pk, sk string) (values, token string) {
	ts.t.Helper()
	r := ts.do("GET", itemPath(pk, sk), nil, "Accept", "application/json")
	if r.status != 200 {
		ts.t.Fatalf("GET %s/%s: %d %s", pk, sk, r.status, r.body)
	}
	token = r.header.Get(tokenHeader)
	if token == "" {
		ts.t.Fatalf("GET %s/%s: no %s header", pk, sk, tokenHeader)
	}
	return decodeValues(ts.t, r.body), token
}

// ---- causality tokens, from §4.2 and §4.3 ----

// decodeToken decodes a token into its vector clock, checking the format of
// §4.2/§4.3 strictly (this is the test side's own decoder).
func decodeToken(t *testing.T, s string) map[uint64]uint64 {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("token %q is not unpadded URL-safe base64: %v", s, err)
	}
	if len(b) < 8 || (len(b)-8)%16 != 0 {
		t.Fatalf("token %q: %d bytes, want 8+16n", s, len(b))
	}
	sum := binary.BigEndian.Uint64(b)
	m := map[uint64]uint64{}
	var prev uint64
	for i := 8; i < len(b); i += 16 {
		node, time := binary.BigEndian.Uint64(b[i:]), binary.BigEndian.Uint64(b[i+8:])
		if i > 8 && node <= prev {
			t.Errorf("token %q: node ids not sorted and unique", s)
		}
		prev = node
		m[node] = time
		sum ^= node ^ time
	}
	if sum != 0 {
		t.Errorf("token %q: bad checksum", s)
	}
	return m
}

// encodeToken builds a token from (node, time) pairs in the given order,
// with checksum sum (the XOR of the pairs when sum is nil).
func encodeToken(pairs [][2]uint64, sum *uint64) string {
	b := make([]byte, 8, 8+16*len(pairs))
	var x uint64
	for _, p := range pairs {
		b = binary.BigEndian.AppendUint64(b, p[0])
		b = binary.BigEndian.AppendUint64(b, p[1])
		x ^= p[0] ^ p[1]
	}
	if sum != nil {
		x = *sum
	}
	binary.BigEndian.PutUint64(b, x)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ---- batch responses ----

type batchItemJSON struct {
	SK string    `json:"sk"`
	CT string    `json:"ct"`
	V  []*string `json:"v"`
}

type readResultJSON struct {
	PartitionKey  string          `json:"partitionKey"`
	Prefix        *string         `json:"prefix"`
	Start         *string         `json:"start"`
	End           *string         `json:"end"`
	Limit         *uint64         `json:"limit"`
	Reverse       bool            `json:"reverse"`
	SingleItem    bool            `json:"singleItem"`
	ConflictsOnly bool            `json:"conflictsOnly"`
	Tombstones    bool            `json:"tombstones"`
	Items         []batchItemJSON `json:"items"`
	More          bool            `json:"more"`
	NextStart     *string         `json:"nextStart"`
}

func sortKeys(items []batchItemJSON) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.SK)
	}
	return out
}

// insertBatch runs an InsertBatch that must succeed.
func (ts *testServer) insertBatch(body string) {
	ts.t.Helper()
	r := ts.do("POST", "/app", []byte(body))
	if r.status != 204 {
		ts.t.Fatalf("InsertBatch %s: %d %s", body, r.status, r.body)
	}
}

// readBatch runs a ReadBatch that must succeed.
func (ts *testServer) readBatch(body string) []readResultJSON {
	ts.t.Helper()
	r := ts.do("POST", "/app?search", []byte(body))
	if r.status != 200 {
		ts.t.Fatalf("ReadBatch %s: %d %s", body, r.status, r.body)
	}
	var out []readResultJSON
	if err := json.Unmarshal(r.body, &out); err != nil {
		ts.t.Fatalf("ReadBatch %s: %v in %s", body, err, r.body)
	}
	return out
}

// jsonKeys returns the member names of a JSON object, sorted.
func jsonKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

func strp(s string) *string { return &s }

func showStr(p *string) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%q", *p)
}

// eventually retries f until it succeeds or 5 s passed: the index is only
// eventually consistent (§7).
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replicate copies the stored state of an item from one test server to
// another, as replication does between replicas (§5.3): the receiving node
// merges it into its own state.
func replicate(t *testing.T, from, to *testServer, pk, sk string) {
	t.Helper()
	it, err := from.items.Get(context.Background(), from.bucket.ID, pk, sk)
	if err != nil || it == nil {
		t.Fatalf("replicate %s/%s: %v, %v", pk, sk, it, err)
	}
	cp, err := k2v.DecodeItem(it.AppendBinary(nil))
	if err != nil {
		t.Fatal(err)
	}
	cp.Bucket = to.bucket.ID
	if err := to.items.Table().Merge(cp); err != nil {
		t.Fatal(err)
	}
}

// newKey creates an access key with perm on bucket app.
func (ts *testServer) newKey(perm k2v.Perm) *k2v.Key {
	ts.t.Helper()
	k, err := ts.catalog.CreateKey("other")
	if err != nil {
		ts.t.Fatal(err)
	}
	if perm != (k2v.Perm{}) {
		if _, err := ts.catalog.SetPermissions(ts.bucket.ID, k.ID, perm, true); err != nil {
			ts.t.Fatal(err)
		}
	}
	return k
}

// doAs sends a request signed with another key.
func (ts *testServer) doAs(k *k2v.Key, method, path string, body []byte, headers ...string) *response {
	ts.t.Helper()
	req := ts.request(method, path, body, headers...)
	ts.sign(req, body, k.ID, k.Secret, ts.region)
	return ts.send(req)
}

// sendRaw writes req on a new TCP connection with http.Request.Write, which
// does not validate header values as the client transport does, and reads
// the response.
func (ts *testServer) sendRaw(req *http.Request) *response {
	ts.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := req.Write(conn); err != nil {
		ts.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
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

// sendHeadersOnly writes the request line and headers of req (whose
// Content-Length announces a body) but not the body, and reads the
// response: for refusals decided on the headers alone, such as a body over
// the size cap, without racing the server's close against the upload.
func (ts *testServer) sendHeadersOnly(req *http.Request) *response {
	ts.t.Helper()
	var buf strings.Builder
	if err := req.Write(&buf); err != nil {
		ts.t.Fatal(err)
	}
	head, _, ok := strings.Cut(buf.String(), "\r\n\r\n")
	if !ok {
		ts.t.Fatal("no end of headers")
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		ts.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n\r\n"); err != nil {
		ts.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
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
