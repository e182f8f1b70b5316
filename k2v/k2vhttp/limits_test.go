package k2vhttp

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grangeio/grange/k2v"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// ---- §13 limits ----

// TestBodyLimit: bodies up to the server's cap (the harness sets 1 MiB,
// the smallest value size §13 allows) are accepted; one byte more is 413
// with a JSON error body.
func TestBodyLimit(t *testing.T) {
	ts := startServer(t)
	val := bytes.Repeat([]byte{0xa5}, 1<<20)
	wantStatus(t, "PUT 1 MiB", ts.do("PUT", itemPath("pk", "big"), val), 204)
	r := ts.do("GET", itemPath("pk", "big"), nil, "Accept", "application/octet-stream")
	if r.status != 200 || !bytes.Equal(r.body, val) {
		t.Errorf("GET 1 MiB: %d, %d bytes", r.status, len(r.body))
	}
	big := append(val, 0)
	req := ts.request("PUT", itemPath("pk", "too big"), big)
	ts.sign(req, big, ts.key.ID, ts.key.Secret, ts.region)
	r = ts.sendHeadersOnly(req)
	if r.status != 413 {
		t.Errorf("PUT 1 MiB + 1: %d %s, want 413", r.status, r.body)
	}
	e := checkErrorBody(t, "PUT 1 MiB + 1", r)
	if e["path"] != "/app/pk" {
		t.Errorf("413 error path %q, want /app/pk", e["path"])
	}
	ts.mustBeMissing("PUT 1 MiB + 1", "pk", "too big")

	// a batch over the cap
	body := `[{"pk":"pk","sk":"batch","v":"` + base64.StdEncoding.EncodeToString(val) + `"}]`
	req = ts.request("POST", "/app", []byte(body))
	ts.sign(req, []byte(body), ts.key.ID, ts.key.Secret, ts.region)
	r = ts.sendHeadersOnly(req)
	if r.status != 413 {
		t.Errorf("InsertBatch over the cap: %d %s, want 413", r.status, r.body)
	}
	checkErrorBody(t, "InsertBatch over the cap", r)
	ts.mustBeMissing("InsertBatch over the cap", "pk", "batch")
}

// TestKeyLengths: keys of MaxKeyBytes (1024) bytes are accepted, longer
// ones are refused with 400 (§13: "reject longer keys with 400 rather than
// fail"). Lengths are in bytes, not characters.
func TestKeyLengths(t *testing.T) {
	ts := startServer(t)
	max := strings.Repeat("k", k2v.MaxKeyBytes)
	over := max + "k"
	maxUTF8 := strings.Repeat("é", k2v.MaxKeyBytes/2)           // 1024 bytes
	overUTF8 := strings.Repeat("é", k2v.MaxKeyBytes/2) + "\x01" // 1025 bytes

	for _, k := range []string{max, maxUTF8} {
		ts.put("pk", k, "sk", "")
		ts.put(k, "s", "pk", "")
		if got, _ := ts.read("pk", k); got != `["sk"]` {
			t.Errorf("sort key of %d bytes: %s", len(k), got)
		}
		if got, _ := ts.read(k, "s"); got != `["pk"]` {
			t.Errorf("partition key of %d bytes: %s", len(k), got)
		}
	}
	b, _ := json.Marshal([]map[string]string{{"pk": max, "sk": max, "v": "dg=="}})
	ts.insertBatch(string(b))
	res := ts.readBatch(`[{"partitionKey":"` + max + `","start":"` + max + `","singleItem":true}]`)
	if len(res[0].Items) != 1 {
		t.Errorf("InsertBatch with keys of 1024 bytes: %+v", res[0].Items)
	}

	for _, k := range []string{over, overUTF8} {
		what := fmt.Sprintf("%d bytes", len(k))
		for _, req := range []struct{ method, path, body string }{
			{"PUT", itemPath("pk", k), "v"},
			{"PUT", itemPath(k, "s"), "v"},
			{"DELETE", itemPath("pk", k), ""},
			{"DELETE", itemPath(k, "s"), ""},
			{"GET", itemPath("pk", k), ""},
			{"GET", itemPath(k, "s"), ""},
			{"GET", itemPath("pk", k) + "&causality_token=" + emptyToken + "&timeout=1", ""},
			{"POST", "/app/" + url.PathEscape(k) + "?poll_range", "{}"},
			{"POST", "/app", mustJSON([]map[string]string{{"pk": "pk", "sk": "ok"}, {"pk": "pk", "sk": k}})},
			{"POST", "/app", mustJSON([]map[string]string{{"pk": "pk", "sk": "ok"}, {"pk": k, "sk": "s"}})},
			{"POST", "/app?search", mustJSON([]map[string]string{{"partitionKey": k}})},
			{"POST", "/app?delete", mustJSON([]map[string]string{{"partitionKey": k}})},
		} {
			r := ts.do(req.method, req.path, []byte(req.body))
			wantError(t, what+": "+req.method+" "+req.path[:min(len(req.path), 30)]+"… "+req.body[:min(len(req.body), 30)], r, 400, "InvalidRequest")
		}
	}
	ts.mustBeMissing("keys too long", "pk", "ok")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestPageCap: one InsertBatch of 1001 items is accepted (§13: at least
// 1000); a ReadBatch or ReadIndex without limit returns at most
// MaxPageItems (1000) with more=true and a nextStart that continues;
// DeleteBatch has no limit; PollRange delivers every item, the marker
// reporting what one answer left out.
func TestPageCap(t *testing.T) {
	ts := startServer(t)
	const n = k2v.MaxPageItems + 1
	var items, parts []map[string]string
	var want []string
	for i := range n {
		sk := fmt.Sprintf("k%04d", i)
		want = append(want, sk)
		items = append(items, map[string]string{"pk": "pk", "sk": sk, "v": "dg=="})
		parts = append(parts, map[string]string{"pk": sk, "sk": "s", "v": "dg=="})
	}
	ts.insertBatch(mustJSON(items))
	ts.insertBatch(mustJSON(parts))

	for _, search := range []string{`{"partitionKey":"pk"}`, `{"partitionKey":"pk","limit":5000}`} {
		res := ts.readBatch("[" + search + "]")
		got := sortKeys(res[0].Items)
		if len(got) != k2v.MaxPageItems || !res[0].More || showStr(res[0].NextStart) != `"k1000"` {
			t.Fatalf("%s: %d items, more=%v, nextStart=%s; want 1000, true, k1000", search, len(got), res[0].More, showStr(res[0].NextStart))
		}
		next := strings.Replace(search, "{", `{"start":"k1000",`, 1)
		res2 := ts.readBatch("[" + next + "]")
		got = append(got, sortKeys(res2[0].Items)...)
		if !slices.Equal(got, want) || res2[0].More {
			t.Errorf("%s in two pages: %d items, more=%v, want all %d", search, len(got), res2[0].More, n)
		}
	}
	// reverse
	res := ts.readBatch(`[{"partitionKey":"pk","reverse":true}]`)
	if len(res[0].Items) != k2v.MaxPageItems || !res[0].More || showStr(res[0].NextStart) != `"k0000"` {
		t.Errorf("reverse: %d items, more=%v, nextStart=%s; want 1000, true, k0000", len(res[0].Items), res[0].More, showStr(res[0].NextStart))
	}

	// the index (plus the partition "pk")
	eventually(t, func() error {
		ix := ts.index("")
		if len(ix.PartitionKeys) != k2v.MaxPageItems || !ix.More || showStr(ix.NextStart) != `"k1000"` {
			return fmt.Errorf("ReadIndex: %d entries, more=%v, nextStart=%s; want 1000, true, k1000", len(ix.PartitionKeys), ix.More, showStr(ix.NextStart))
		}
		ix = ts.index("start=k1000")
		if got := strings.Join(indexKeys(ix), " "); got != "k1000 pk" || ix.More {
			return fmt.Errorf("ReadIndex from k1000: %s more=%v, want k1000 pk", got, ix.More)
		}
		return nil
	})

	// PollRange without marker, then with the markers: every item, each
	// answer immediate
	seen := map[string]bool{}
	var marker any
	for round := 0; len(seen) < n; round++ {
		if round > 3 {
			t.Fatalf("PollRange: %d of %d items after %d answers", len(seen), n, round)
		}
		res := ts.pollRange("pk", map[string]any{"seenMarker": marker, "timeout": 10})
		for _, it := range res.Items {
			seen[it.SK] = true
		}
		marker = res.SeenMarker
	}

	// DeleteBatch has no limit
	r := ts.do("POST", "/app?delete", []byte(`[{"partitionKey":"pk"}]`))
	var del []deleteResultJSON
	if err := json.Unmarshal(r.body, &del); err != nil || len(del) != 1 || del[0].DeletedItems != n {
		t.Errorf("DeleteBatch of %d items: %d %s", n, r.status, r.body)
	}
}

// ---- §12 errors ----

// TestErrorPath: the path member of error bodies is the raw request path,
// without the query.
func TestErrorPath(t *testing.T) {
	ts := startServer(t)
	for _, tt := range []struct {
		method, path string
		signed       bool
		wantPath     string
	}{
		{"PATCH", "/app/a%2Fb?sort_key=x", false, "/app/a%2Fb"},
		{"GET", "//app//x%20y?sort_key=x", true, "//app//x%20y"},
		{"GET", "/app/%FF?sort_key=x", false, "/app/%FF"},
		{"GET", "/app/../dots?sort_key=nothing", true, "/app/../dots"},
		{"GET", "/nosuch/pk?sort_key=x", true, "/nosuch/pk"},
		{"GET", "/app?prefix=a&start=b", true, "/app"},
		{"GET", "/?x", false, "/"},
	} {
		var r *response
		if tt.signed {
			r = ts.do(tt.method, tt.path, nil)
		} else {
			r = ts.send(ts.request(tt.method, tt.path, nil))
		}
		if r.status < 400 {
			t.Errorf("%s %s: %d, want an error", tt.method, tt.path, r.status)
			continue
		}
		if e := checkErrorBody(t, tt.path, r); e["path"] != tt.wantPath {
			t.Errorf("%s %s: error path %q, want %q", tt.method, tt.path, e["path"], tt.wantPath)
		}
	}
	// the harness sends absolute-form request targets; SDKs send the
	// origin form
	req, err := http.NewRequest("GET", ts.url+"/app/x%2Fy?sort_key=a", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := ts.sendRaw(req)
	if e := wantError(t, "origin-form", r, 403, "AccessDenied"); e["path"] != "/app/x%2Fy" {
		t.Errorf("origin-form request: error path %q, want /app/x%%2Fy", e["path"])
	}
}

// TestErrorBodiesGolden pins the error responses (status, Content-Type,
// body) of a set of requests in testdata/error_bodies.golden; regenerate
// with -update and review the diff.
func TestErrorBodiesGolden(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "conflict", "a", "")
	ts.put("pk", "conflict", "b", "")
	ro := ts.newKey(k2v.Perm{Read: true})
	type req struct {
		name, method, path, body string
		headers                  []string
		auth                     string // "": signed with the test key; "none"; "ro": read-only key; "bad": wrong secret
	}
	reqs := []req{
		{name: "unknown method", method: "PATCH", path: "/app/pk?sort_key=a", auth: "none"},
		{name: "invalid endpoint", method: "POST", path: "/app/pk", auth: "none"},
		{name: "missing bucket", method: "GET", path: "/", auth: "none"},
		{name: "multiple keywords", method: "POST", path: "/app?search&delete", auth: "none"},
		{name: "repeated parameter", method: "GET", path: "/app/pk?sort_key=a&sort_key=b", auth: "none"},
		{name: "missing sort_key", method: "GET", path: "/app/pk", auth: "none"},
		{name: "bad number", method: "GET", path: "/app?limit=x", auth: "none"},
		{name: "invalid UTF-8 key", method: "GET", path: "/app/%FF?sort_key=a", auth: "none"},
		{name: "anonymous", method: "GET", path: "/app/pk?sort_key=a", auth: "none"},
		{name: "bad signature", method: "GET", path: "/app/pk?sort_key=a", auth: "bad"},
		{name: "no such bucket", method: "GET", path: "/nosuch/pk?sort_key=a"},
		{name: "no permission", method: "PUT", path: "/app/pk?sort_key=a", body: "v", auth: "ro"},
		{name: "no such key", method: "GET", path: "/app/pk?sort_key=missing"},
		{name: "not acceptable", method: "GET", path: "/app/pk?sort_key=conflict", headers: []string{"Accept", "text/html"}},
		{name: "causality token", method: "PUT", path: "/app/pk?sort_key=a", body: "v", headers: []string{tokenHeader, "AAAA"}},
		{name: "poll token", method: "GET", path: "/app/pk?sort_key=a&causality_token=AAAA"},
		{name: "range", method: "GET", path: "/app?prefix=a&start=b"},
		{name: "invalid JSON", method: "POST", path: "/app", body: `[{"pk":1}]`},
		{name: "missing field", method: "POST", path: "/app?search", body: `[{}]`},
		{name: "invalid base64", method: "POST", path: "/app", body: `[{"pk":"p","sk":"s","v":"x"}]`},
		{name: "singleItem", method: "POST", path: "/app?search", body: `[{"partitionKey":"p","singleItem":true}]`},
		{name: "seenMarker", method: "POST", path: "/app/pk?poll_range", body: `{"seenMarker":"!"}`},
		{name: "empty PollRange body", method: "POST", path: "/app/pk?poll_range"},
	}
	var out strings.Builder
	for _, q := range reqs {
		var r *response
		switch q.auth {
		case "none":
			r = ts.send(ts.request(q.method, q.path, []byte(q.body), q.headers...))
		case "ro":
			r = ts.doAs(ro, q.method, q.path, []byte(q.body), q.headers...)
		case "bad":
			r = ts.send(ts.signedReq(q.method, q.path, []byte(q.body), signing{id: ts.key.ID, secret: strings.Repeat("0", 64)}, q.headers...))
		default:
			r = ts.do(q.method, q.path, []byte(q.body), q.headers...)
		}
		checkErrorBody(t, q.name, r)
		fmt.Fprintf(&out, "# %s\n%s %s %s\n%d %s\n%s\n\n", q.name, q.method, q.path, q.body, r.status, r.header.Get("Content-Type"), compactJSON(t, string(r.body)))
	}
	golden := filepath.Join("testdata", "error_bodies.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if out.String() != string(want) {
		t.Errorf("error bodies differ from %s (rerun with -update and review the diff):\n%s", golden, lineDiff(string(want), out.String()))
	}
}

// lineDiff shows the lines that differ between two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n- %s\n+ %s\n", i+1, wl, gl)
		}
	}
	return b.String()
}
