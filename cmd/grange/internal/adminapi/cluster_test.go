package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/grangeio/grange/cluster"
	"github.com/grangeio/grange/cluster/clustertest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// startServer serves the admin API of a cluster of one node without RPC,
// which is enough for every layout operation; opts adjust the server's
// configuration.
func startServer(t *testing.T, rf int, opts ...func(*Config)) (*Client, *cluster.Cluster) {
	t.Helper()
	key, err := cluster.NodeKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c, err := cluster.New(cluster.Config{MetadataDir: t.TempDir(), Key: key, ReplicationFactor: rf, Hostname: "test-node", PublicAddr: "192.0.2.1:3901"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg := Config{Token: "secret-token", Cluster: c, Version: "v-test"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return &Client{Addr: ln.Addr().String(), Token: "secret-token"}, c
}

// transcript records requests and their raw responses for a golden file.
type transcript struct {
	t   *testing.T
	c   *Client
	buf bytes.Buffer
}

// call performs an operation, records it and decodes the response into
// out (nil: not decoded). It returns the API error, if any.
func (tr *transcript) call(method, op string, query url.Values, body string, out any) *Error {
	tr.t.Helper()
	fmt.Fprintf(&tr.buf, "### %s %s", method, op)
	if len(query) > 0 {
		fmt.Fprintf(&tr.buf, "?%s", query.Encode())
	}
	fmt.Fprintln(&tr.buf)
	var b any
	if body != "" {
		fmt.Fprintf(&tr.buf, "%s\n", body)
		b = json.RawMessage(body)
	}
	var raw json.RawMessage
	err := tr.c.Call(context.Background(), method, op, query, b, &raw)
	var apiErr *Error
	if errors.As(err, &apiErr) {
		fmt.Fprintf(&tr.buf, "--> %d %s: %s\n\n", apiErr.Status, apiErr.Code, apiErr.Message)
		return apiErr
	}
	if err != nil {
		tr.t.Fatalf("%s: %v", op, err)
	}
	fmt.Fprintf(&tr.buf, "--> 200\n%s\n", strings.TrimSpace(string(raw)))
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tr.t.Fatalf("%s: decode: %v", op, err)
		}
	}
	return nil
}

func (tr *transcript) mustCall(method, op string, query url.Values, body string, out any) {
	tr.t.Helper()
	if err := tr.call(method, op, query, body, out); err != nil {
		tr.t.Fatalf("%s: %v", op, err)
	}
}

func (tr *transcript) mustFail(method, op, body, code, contains string) {
	tr.t.Helper()
	err := tr.call(method, op, nil, body, nil)
	if err == nil || err.Code != code || !strings.Contains(err.Message, contains) {
		tr.t.Errorf("%s %s: %v, want %s containing %q", op, body, err, code, contains)
	}
}

// The cluster operations through the HTTP server, from an empty cluster to
// an applied layout and back; testdata/cluster_ops.txt pins the JSON
// shapes.
func TestClusterOperations(t *testing.T) {
	c, cl := startServer(t, 1)
	tr := &transcript{t: t, c: c}
	self := cl.ID().String()
	gateway := strings.Repeat("ab", 32)

	var st GetClusterStatusResponse
	tr.mustCall("GET", "GetClusterStatus", nil, "", &st)
	if st.LayoutVersion != 0 || len(st.Nodes) != 1 || st.Nodes[0].ID != self || !st.Nodes[0].IsUp || st.Nodes[0].Role != nil {
		t.Errorf("status of a new node: %+v", st)
	}
	var health GetClusterHealthResponse
	tr.mustCall("GET", "GetClusterHealth", nil, "", &health)
	if health.Status != "unavailable" || health.PartitionsQuorum != 0 {
		t.Errorf("health without a layout: %+v", health)
	}
	tr.mustCall("GET", "GetClusterLayout", nil, "", nil)
	var pv PreviewClusterLayoutChangesResponse
	tr.mustCall("POST", "PreviewClusterLayoutChanges", nil, "", &pv)
	if pv.NewLayout != nil || !strings.Contains(pv.Error, "no staged changes") {
		t.Errorf("preview with nothing staged: %+v", pv)
	}

	// refused changes, all 400 InvalidRequest, none staged
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"1234","zone":"dc1","capacity":1000000,"tags":[]}]}`, "InvalidRequest", "invalid node identifier")
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"`+self+`","zone":"dc1","capacity":100,"tags":[]}]}`, "InvalidRequest", "at least 1K")
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"`+self+`","zone":"","capacity":100000,"tags":[]}]}`, "InvalidRequest", "zone must not be empty")
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"`+self+`","remove":false}]}`, "InvalidRequest", "must be true")
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"`+self+`","remove":true,"zone":"dc1"}]}`, "InvalidRequest", "cannot be combined")
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"`+self+`","zone":"dc1","capacity":100000,"tags":[],"weight":3}]}`, "InvalidRequest", "unknown field")
	tr.mustFail("POST", "UpdateClusterLayout", `{"parameters":{"zoneRedundancy":{"atLeast":2}}}`, "InvalidRequest", "replication factor")
	tr.mustFail("POST", "UpdateClusterLayout", `{"parameters":{"zoneRedundancy":"minimum"}}`, "InvalidRequest", "maximum")
	tr.mustFail("POST", "UpdateClusterLayout", `{"roles":[{"id":"`+self+`","zone":"dc1","capacity":100000,"tags":[""]}]}`, "InvalidRequest", "empty tag")

	var l GetClusterLayoutResponse
	tr.mustCall("POST", "UpdateClusterLayout", nil, `{"roles":[{"id":"`+self+`","zone":"dc1","capacity":1000000000000,"tags":["ssd"]},{"id":"`+gateway+`","zone":"dc2","capacity":null,"tags":[]}]}`, &l)
	if len(l.StagedRoleChanges) != 2 || l.Version != 0 {
		t.Errorf("staged: %+v", l)
	}
	tr.mustCall("POST", "UpdateClusterLayout", nil, `{"parameters":{"zoneRedundancy":{"atLeast":1}}}`, &l)
	if l.StagedParameters == nil || l.StagedParameters.ZoneRedundancy.AtLeast != 1 {
		t.Errorf("staged parameters: %+v", l.StagedParameters)
	}
	tr.mustCall("POST", "PreviewClusterLayoutChanges", nil, "", &pv)
	if pv.NewLayout == nil || pv.NewLayout.Version != 1 || len(pv.Message) == 0 {
		t.Fatalf("preview: %+v", pv)
	}
	tr.mustFail("POST", "ApplyClusterLayout", `{"version":2}`, "InvalidRequest", "the next one is 1")
	tr.mustFail("POST", "ApplyClusterLayout", `{}`, "InvalidRequest", "the next one is 1")
	var applied ApplyClusterLayoutResponse
	tr.mustCall("POST", "ApplyClusterLayout", nil, `{"version":1}`, &applied)
	if applied.Layout.Version != 1 || len(applied.Layout.StagedRoleChanges) != 0 || applied.Layout.StagedParameters != nil {
		t.Errorf("applied: %+v", applied.Layout)
	}
	if v := cl.Layout().Version; v != 1 {
		t.Errorf("cluster layout version %d after apply", v)
	}
	tr.mustCall("GET", "GetClusterLayout", nil, "", &l)
	if len(l.Roles) != 2 || l.Roles[0].ID != self || *l.Roles[0].StoredPartitions != 256 || *l.Roles[1].StoredPartitions != 0 {
		t.Errorf("layout after apply: %+v", l)
	}
	tr.mustCall("GET", "GetClusterStatus", nil, "", &st)
	if len(st.Nodes) != 2 || st.LayoutVersion != 1 {
		t.Errorf("status after apply: %+v", st)
	}
	tr.mustCall("GET", "GetClusterHealth", nil, "", &health)
	if health.Status != "healthy" || health.PartitionsAllOk != 256 || health.StorageNodes != 1 {
		t.Errorf("health after apply: %+v", health)
	}
	var hist GetClusterLayoutHistoryResponse
	tr.mustCall("GET", "GetClusterLayoutHistory", nil, "", &hist)
	if hist.CurrentVersion != 1 || len(hist.Versions) == 0 || hist.Versions[0].Status != LayoutCurrent {
		t.Errorf("history: %+v", hist)
	}
	tr.mustFail("POST", "ApplyClusterLayout", `{"version":2}`, "InvalidRequest", "no staged changes")

	// stage, then drop
	tr.mustCall("POST", "UpdateClusterLayout", nil, `{"roles":[{"id":"`+gateway+`","remove":true}]}`, &l)
	if len(l.StagedRoleChanges) != 1 || !l.StagedRoleChanges[0].Remove {
		t.Errorf("staged removal: %+v", l.StagedRoleChanges)
	}
	tr.mustCall("POST", "RevertClusterLayout", nil, "", &l)
	if len(l.StagedRoleChanges) != 0 {
		t.Errorf("after revert: %+v", l.StagedRoleChanges)
	}
	tr.mustCall("POST", "RevertClusterLayout", nil, "", &l) // nothing staged: not an error

	var conn []ConnectNodeResponse
	tr.mustCall("POST", "ConnectClusterNodes", nil, `["`+gateway+`@127.0.0.1:1","nonsense"]`, &conn)
	if len(conn) != 2 || conn[0].Success || conn[0].Error == nil || conn[1].Success {
		t.Errorf("connect without RPC: %+v", conn)
	}
	var info GetNodeInfoResponse
	tr.mustCall("GET", "GetNodeInfo", url.Values{"node": {"self"}}, "", &info)
	if info.Success[self].NodeID != self {
		t.Errorf("node info: %+v", info)
	}
	tr.mustFail("GET", "GetNodeInfo", "", "InvalidRequest", "node is required")

	out := strings.ReplaceAll(tr.buf.String(), self, "<self>")
	out = strings.ReplaceAll(out, cl.ID().Short(), "<self-short>")
	out = strings.ReplaceAll(out, runtime.Version(), "<go version>")
	checkGolden(t, "cluster_ops.txt", out)
}

// With fewer nodes than the replication factor, the preview reports why
// and apply refuses.
func TestLayoutNotEnoughNodes(t *testing.T) {
	c, cl := startServer(t, 3)
	ctx := context.Background()
	body := UpdateClusterLayoutRequest{Roles: []NodeRoleChange{{ID: cl.ID().String(), Zone: "dc1", Capacity: ptr(uint64(1e12))}}}
	if err := c.Call(ctx, "POST", "UpdateClusterLayout", nil, body, nil); err != nil {
		t.Fatal(err)
	}
	var pv PreviewClusterLayoutChangesResponse
	if err := c.Call(ctx, "POST", "PreviewClusterLayoutChanges", nil, nil, &pv); err != nil {
		t.Fatal(err)
	}
	if pv.NewLayout != nil || pv.Error == "" {
		t.Fatalf("preview of 1 node at replication factor 3: %+v", pv)
	}
	err := c.Call(ctx, "POST", "ApplyClusterLayout", nil, ApplyClusterLayoutRequest{Version: 1}, nil)
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != "InvalidRequest" || apiErr.Message != pv.Error {
		t.Errorf("apply: %v, want 400 InvalidRequest %q", err, pv.Error)
	}
}

func TestRoleChangeJSON(t *testing.T) {
	for _, tt := range []struct {
		in, out string
	}{
		{`{"id":"a","remove":true}`, `{"id":"a","remove":true}`},
		{`{"id":"a","zone":"dc1","capacity":2048,"tags":["x"]}`, `{"id":"a","zone":"dc1","capacity":2048,"tags":["x"]}`},
		{`{"id":"a","zone":"dc1","capacity":null,"tags":[]}`, `{"id":"a","zone":"dc1","capacity":null,"tags":[]}`},
		{`{"id":"a","zone":"dc1"}`, `{"id":"a","zone":"dc1","capacity":null,"tags":[]}`},
	} {
		var c NodeRoleChange
		if err := json.Unmarshal([]byte(tt.in), &c); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if b, _ := json.Marshal(c); string(b) != tt.out {
			t.Errorf("%s round trip = %s, want %s", tt.in, b, tt.out)
		}
	}
	for _, in := range []string{`{"id":"a"}`, `{"id":"a","remove":false}`, `{"id":"a","remove":true,"tags":[]}`, `{"id":"a","zone":"z","capacity":-1}`, `{"id":"a","zone":"z","capacity":"1G"}`} {
		var c NodeRoleChange
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s accepted: %+v", in, c)
		}
	}
	for in, want := range map[string]int{`"maximum"`: 0, `{"atLeast":2}`: 2} {
		var z ZoneRedundancy
		if err := json.Unmarshal([]byte(in), &z); err != nil || z.AtLeast != want {
			t.Errorf("zoneRedundancy %s = %+v, %v", in, z, err)
		}
		if b, _ := json.Marshal(z); string(b) != in {
			t.Errorf("zoneRedundancy %s marshals to %s", in, b)
		}
	}
	for _, in := range []string{`"max"`, `{"atLeast":0}`, `{"atMost":2}`, `3`, `null`} {
		var z ZoneRedundancy
		if err := json.Unmarshal([]byte(in), &z); err == nil {
			t.Errorf("zoneRedundancy %s accepted", in)
		}
	}
}

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	clustertest.Golden(t, name, got, *update)
}
