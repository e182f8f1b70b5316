package k2vhttp

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// ---- §4 causality tokens ----

// TestTokenFormat checks the tokens the server issues (§4.1–§4.3, §5.2):
// unpadded URL-safe base64 of checksum ‖ (node, time)*, the node id being
// the first 8 bytes of the node's id and the time milliseconds since the
// epoch; the same string in the header, in ReadBatch's ct and in PollRange.
func TestTokenFormat(t *testing.T) {
	ts := startServer(t)
	before := uint64(time.Now().UnixMilli())
	ts.put("pk", "s", "v", "")
	after := uint64(time.Now().UnixMilli())
	_, tok := ts.read("pk", "s")
	vc := decodeToken(t, tok)
	if len(vc) != 1 || vc[n1] == 0 {
		t.Fatalf("token %s = %v, want one entry for node %#x", tok, vc, n1)
	}
	if got := vc[n1]; got < before+1 || got > after+1 {
		t.Errorf("token time %d, want the write time in ms, in [%d, %d]", got, before+1, after+1)
	}
	ts.put("pk", "s", "w", tok)
	_, tok2 := ts.read("pk", "s")
	if vc2 := decodeToken(t, tok2); len(vc2) != 1 || vc2[n1] <= vc[n1] {
		t.Errorf("token after a second write %v, want {n1: > %d}", vc2, vc[n1])
	}
	// reads are stable: the same state gives the same token
	if _, again := ts.read("pk", "s"); again != tok2 {
		t.Errorf("second read token %s, first %s", again, tok2)
	}
	res := ts.readBatch(`[{"partitionKey":"pk"}]`)
	if len(res[0].Items) != 1 || res[0].Items[0].CT != tok2 {
		t.Errorf("ReadBatch ct %+v, want %s", res[0].Items, tok2)
	}
	r := ts.do("POST", "/app/pk?poll_range", []byte(`{}`))
	var pr struct{ Items []batchItemJSON }
	if err := json.Unmarshal(r.body, &pr); err != nil || len(pr.Items) != 1 || pr.Items[0].CT != tok2 {
		t.Errorf("PollRange: %d %s, want the item with ct %s", r.status, r.body, tok2)
	}
}

// TestTokenExamples sends the example tokens of §4.4 as write contexts.
func TestTokenExamples(t *testing.T) {
	ts := startServer(t)
	examples := []struct {
		token string
		vc    map[uint64]uint64
	}{
		{"AAAAAAAAAAA", map[uint64]uint64{}},
		{"S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA", map[uint64]uint64{0x4b8f2a9c1d3e5f60: 1700000000000}},
		{"6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ", map[uint64]uint64{0x4b8f2a9c1d3e5f60: 1700000000000, 0xa1b2c3d4e5f60718: 1700000000005}},
	}
	for i, ex := range examples {
		if got := decodeToken(t, ex.token); fmt.Sprint(got) != fmt.Sprint(ex.vc) {
			t.Fatalf("test decoder: %s = %v, want %v", ex.token, got, ex.vc)
		}
		sk := fmt.Sprint("ex", i)
		ts.put("pk", sk, "v", ex.token)
		vals, tok := ts.read("pk", sk)
		if vals != `["v"]` {
			t.Errorf("%s: values %s, want [v]", ex.token, vals)
		}
		// §5.1: the context of an item has every entry the write created,
		// even those without values
		vc := decodeToken(t, tok)
		for node, time := range ex.vc {
			if node != n1 && vc[node] != time {
				t.Errorf("write with %s: item token %v, want %#x: %d", ex.token, vc, node, time)
			}
		}
	}
	// the token of the third example, in InsertBatch and DeleteItem
	ts.insertBatch(`[{"pk":"pk","sk":"b","ct":"6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz-VoBQ","v":"dg=="}]`)
	ts.del("pk", "b", "S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA")
	if vals, _ := ts.read("pk", "b"); vals != `["v",null]` {
		t.Errorf("after a delete with an old token: %s, want [v,null]", vals)
	}
}

// TestInvalidTokens checks §4.3's rejections on every endpoint that takes a
// token: 400 CausalityToken on writes, 400 InvalidRequest on PollItem, and
// nothing written.
func TestInvalidTokens(t *testing.T) {
	ts := startServer(t)
	badSum := uint64(5 ^ 7)
	tokens := []struct{ name, token string }{
		{"padding", "AAAAAAAAAAA="},
		{"non-zero trailing bits", "AAAAAAAAAAB"},
		{"3 bytes", "AAAA"},
		{"16 bytes", strings.Repeat("A", 22)},
		{"32 bytes", strings.Repeat("A", 43)},
		{"checksum", "AQAAAAAAAAA"},
		{"standard alphabet", "6j3pSPjIWH1LjyqcHT5fYAAAAYvP5WgAobLD1OX2BxgAAAGLz+VoBQ"},
		{"checksum over repeated entries", encodeToken([][2]uint64{{n1, 5}, {n1, 7}}, &badSum)},
		{"not base64", "not a token!"},
		{"one char", "A"},
	}
	for _, tt := range tokens {
		r := ts.do("PUT", itemPath("pk", "put"), []byte("v"), tokenHeader, tt.token)
		wantError(t, "InsertItem token "+tt.name, r, 400, "CausalityToken")
		r = ts.do("DELETE", itemPath("pk", "del"), nil, tokenHeader, tt.token)
		wantError(t, "DeleteItem token "+tt.name, r, 400, "CausalityToken")
		ct, _ := json.Marshal(tt.token)
		r = ts.do("POST", "/app", []byte(`[{"pk":"pk","sk":"ok","v":"dg=="},{"pk":"pk","sk":"batch","ct":`+string(ct)+`,"v":"dg=="}]`))
		wantError(t, "InsertBatch ct "+tt.name, r, 400, "CausalityToken")
		r = ts.do("GET", itemPath("pk", "poll")+"&timeout=1&causality_token="+url.QueryEscape(tt.token), nil)
		wantError(t, "PollItem token "+tt.name, r, 400, "InvalidRequest")
	}
	for _, sk := range []string{"put", "del", "ok", "batch"} {
		ts.mustBeMissing("invalid tokens", "pk", sk)
	}
	// a repeated node keeps its last time; the checksum is over the map
	goodSum := n1 ^ 7
	tok := encodeToken([][2]uint64{{n1, 5}, {n1, 7}}, &goodSum)
	r := ts.do("PUT", itemPath("pk", "dup"), []byte("v"), tokenHeader, tok)
	wantStatus(t, "token with a repeated node", r, 204)
}

// TestTokenLineBreaks: a line break is not part of unpadded URL-safe
// base64 (§4.3), though some decoders skip it: tokens containing one are
// rejected where they can be sent (JSON ct, query parameter).
func TestTokenLineBreaks(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	_, tok := ts.read("pk", "s")
	for _, bad := range []string{tok + "\n", tok[:5] + "\r\n" + tok[5:], "\n" + emptyToken} {
		ct, _ := json.Marshal(bad)
		r := ts.do("POST", "/app", []byte(`[{"pk":"pk","sk":"batch","ct":`+string(ct)+`,"v":"dg=="}]`))
		wantError(t, fmt.Sprintf("InsertBatch ct %q", bad), r, 400, "CausalityToken")
		r = ts.do("GET", itemPath("pk", "s")+"&timeout=1&causality_token="+url.QueryEscape(bad), nil)
		wantError(t, fmt.Sprintf("PollItem token %q", bad), r, 400, "InvalidRequest")
	}
	ts.mustBeMissing("token with line breaks", "pk", "batch")
}

// TestEmptyTokenHeader: an X-Garage-Causality-Token header that is present
// but empty is not a valid token (§4.3: the decoded length must be 8+16n),
// so InsertItem and DeleteItem refuse it with 400 CausalityToken, as
// InsertBatch refuses "ct": "" (only query parameters treat empty values
// as absent, §2.3).
func TestEmptyTokenHeader(t *testing.T) {
	ts := startServer(t)
	r := ts.do("POST", "/app", []byte(`[{"pk":"pk","sk":"batch","ct":"","v":"dg=="}]`))
	wantError(t, `InsertBatch "ct": ""`, r, 400, "CausalityToken")
	for _, method := range []string{"PUT", "DELETE"} {
		req := ts.request(method, itemPath("pk", method), []byte("v"))
		req.Header[tokenHeader] = []string{""}
		ts.sign(req, []byte("v"), ts.key.ID, ts.key.Secret, ts.region)
		r := ts.send(req)
		wantError(t, method+" with an empty token header", r, 400, "CausalityToken")
		ts.mustBeMissing(method+" with an empty token header", "pk", method)
	}
}

// ---- §5 DVVS, the worked examples of §5.4 over HTTP ----

func TestDVVSExamples(t *testing.T) {
	ts := startServer(t)
	check := func(sk, want string) string {
		t.Helper()
		got, tok := ts.read("pk", sk)
		if got != want {
			t.Errorf("%s: values %s, want %s", sk, got, want)
		}
		return tok
	}
	binary := func(sk string) *response {
		t.Helper()
		return ts.do("GET", itemPath("pk", sk), nil, "Accept", "application/octet-stream")
	}

	// (a) first write
	ts.put("pk", "a", "A", "")
	tokA := check("a", `["A"]`)
	if vc := decodeToken(t, tokA); len(vc) != 1 || vc[n1] == 0 {
		t.Errorf("(a) token %v, want {n1: t}", vc)
	}
	// (b) overwrite with the token
	ts.put("pk", "a", "B", tokA)
	tokB := check("a", `["B"]`)
	if decodeToken(t, tokB)[n1] <= decodeToken(t, tokA)[n1] {
		t.Errorf("(b) token %s not newer than %s", tokB, tokA)
	}
	// (c) write with a stale token: a conflict
	ts.put("pk", "a", "C", tokA)
	tokC := check("a", `["B","C"]`)
	if decodeToken(t, tokC)[n1] <= decodeToken(t, tokB)[n1] {
		t.Errorf("(c) token %s not newer than %s", tokC, tokB)
	}
	if r := binary("a"); r.status != 409 {
		t.Errorf("(c) binary read: %d, want 409", r.status)
	}
	// (c') a write without any token gives the same result
	ts.put("pk", "c2", "B", "")
	ts.put("pk", "c2", "C", "")
	check("c2", `["B","C"]`)
	// (d) resolving the conflict
	ts.put("pk", "a", "D", tokC)
	check("a", `["D"]`)

	// (e) delete concurrent with an update: state (c), deleted by a client
	// that saw only B
	ts.put("pk", "e", "A", "")
	_, tA := ts.read("pk", "e")
	ts.put("pk", "e", "B", tA)
	_, tB := ts.read("pk", "e")
	ts.put("pk", "e", "C", tA)
	check("e", `["B","C"]`)
	ts.del("pk", "e", tB)
	tokE := check("e", `["C",null]`)
	if r := binary("e"); r.status != 409 || r.header.Get(tokenHeader) != tokE {
		t.Errorf("(e) binary read: %d token %q, want 409 with token %s", r.status, r.header.Get(tokenHeader), tokE)
	}
	// (f) delete with the full token: a tombstone
	ts.del("pk", "e", tokE)
	tokF := check("e", `[null]`)
	if r := binary("e"); r.status != 204 || len(r.body) != 0 {
		t.Errorf("(f) binary read: %d %q, want 204, empty", r.status, r.body)
	}
	res := ts.readBatch(`[{"partitionKey":"pk","start":"e","singleItem":true},{"partitionKey":"pk","start":"e","singleItem":true,"tombstones":true}]`)
	if len(res[0].Items) != 0 || len(res[1].Items) != 1 || showValues(t, res[1].Items[0].V) != `[null]` {
		t.Errorf("(f) ReadBatch without/with tombstones: %+v / %+v, want nothing / [null]", res[0].Items, res[1].Items)
	}
	// (g) write after delete, with the tombstone's token
	ts.put("pk", "e", "E", tokF)
	check("e", `["E"]`)
	// (g') without a token: concurrent with the tombstone
	ts.put("pk", "g", "x", "")
	_, tx := ts.read("pk", "g")
	ts.del("pk", "g", tx)
	ts.put("pk", "g", "E", "")
	check("g", `[null,"E"]`)

	// (i) deduplication
	ts.put("pk", "i", "X", "")
	ts.put("pk", "i", "X", "")
	tokI := check("i", `["X"]`)
	if r := binary("i"); r.status != 200 || string(r.body) != "X" {
		t.Errorf("(i) binary read: %d %q, want 200 X", r.status, r.body)
	}
	ts.put("pk", "i", "Y", tokI) // the token covers both writes
	check("i", `["Y"]`)

	// §6.4: DeleteItem without a token adds a concurrent tombstone
	ts.put("pk", "d", "val", "")
	ts.del("pk", "d", "")
	check("d", `["val",null]`)
	// deleting a never-written key creates a tombstone: 204 / [null]
	ts.del("pk", "never", "")
	check("never", `[null]`)
	if r := binary("never"); r.status != 204 {
		t.Errorf("never-written then deleted, binary: %d, want 204", r.status)
	}
}

// TestDVVSIndexExamples checks the index counters of the examples (§11,
// §5.4 (f) and (i)).
func TestDVVSIndexExamples(t *testing.T) {
	ts := startServer(t)
	ts.put("i", "s", "X", "")
	ts.put("i", "s", "X", "")
	ts.put("f", "s", "gone", "")
	_, tok := ts.read("f", "s")
	ts.del("f", "s", tok)
	eventually(t, func() error {
		got := ts.indexCounters("")
		if got != `i:1/0/1/1` {
			return fmt.Errorf("index %s, want i:1/0/1/1 (and no f)", got)
		}
		return nil
	})
}

// TestDVVSMultiNode replays examples (h) and (j) of §5.4 with two nodes: a
// second server with node id n2, items copied between the two as
// replication does (§5.3).
func TestDVVSMultiNode(t *testing.T) {
	s1 := startServer(t)
	s2 := startServerNode(t, testNodeID2)

	// (h): state (a) is read on n1, then "F" is written through n2 with
	// that token
	s1.put("pk", "h", "A", "")
	_, tokA := s1.read("pk", "h")
	replicate(t, s1, s2, "pk", "h")
	s2.put("pk", "h", "F", tokA)
	replicate(t, s2, s1, "pk", "h")
	for _, s := range []*testServer{s1, s2} {
		vals, tok := s.read("pk", "h")
		if vals != `["F"]` {
			t.Errorf("(h) values %s, want [F]", vals)
		}
		vc := decodeToken(t, tok)
		if len(vc) != 2 || vc[n1] != decodeToken(t, tokA)[n1] || vc[n2] == 0 {
			t.Errorf("(h) token %v, want {n1: %d, n2: t}", vc, decodeToken(t, tokA)[n1])
		}
	}

	// (j): n1 holds v1, v2; n2 holds v3
	s1.put("pk", "j", "v1", "")
	_, t1 := s1.read("pk", "j")
	s1.put("pk", "j", "v2", "")
	replicate(t, s1, s2, "pk", "j")
	s2.put("pk", "j", "v3", "")
	replicate(t, s2, s1, "pk", "j")
	vals, all := s1.read("pk", "j")
	if vals != `["v1","v2","v3"]` {
		t.Fatalf("(j) values %s, want [v1,v2,v3]", vals)
	}
	// v5 with context {n1: t1} on n1 drops only v1
	s1.put("pk", "j", "v5", t1)
	// v4 with the full context on n2, which has not seen v5, drops v2, v3
	s2.put("pk", "j", "v4", all)
	replicate(t, s1, s2, "pk", "j")
	replicate(t, s2, s1, "pk", "j")
	for i, s := range []*testServer{s1, s2} {
		if vals, _ := s.read("pk", "j"); vals != `["v5","v4"]` {
			t.Errorf("(j) node %d: values %s, want [v5,v4]", i+1, vals)
		}
	}
}

// ---- §6.1 ReadItem ----

// TestReadItemAccept checks every row of the Accept table of §6.1, and the
// response forms: status, Content-Type, body, token header.
func TestReadItemAccept(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "one", "v1", "")
	ts.put("pk", "two", "a", "")
	ts.put("pk", "two", "b", "")
	ts.del("pk", "tomb", "")
	ts.put("pk", "empty", "", "")

	// expected responses per format
	const (
		jsonOne   = `200 application/json ["v1"]`
		jsonTwo   = `200 application/json ["a","b"]`
		jsonTomb  = `200 application/json [null]`
		jsonEmpty = `200 application/json [""]`
		binOne    = `200 application/octet-stream v1`
		binTwo    = `409  `
		binTomb   = `204 application/octet-stream `
		binEmpty  = `200 application/octet-stream `
		missing   = `404 NoSuchKey`
		notAcc    = `406 NotAcceptable`
	)
	type row struct{ one, two, tomb, empty, missing string }
	jsonRow := row{jsonOne, jsonTwo, jsonTomb, jsonEmpty, missing}
	binRow := row{binOne, binTwo, binTomb, binEmpty, missing}
	eitherRow := row{binOne, jsonTwo, binTomb, binEmpty, missing}
	noneRow := row{notAcc, notAcc, notAcc, notAcc, notAcc}
	tests := []struct {
		accept *string // nil: no header
		want   row
	}{
		{nil, jsonRow},
		{strp("application/json"), jsonRow},
		{strp("text/html, application/json"), jsonRow},
		{strp("application/octet-stream"), binRow},
		{strp("  application/octet-stream  ,text/plain"), binRow},
		{strp("application/json;q=0.9, application/octet-stream"), binRow},
		{strp("application/json, application/octet-stream"), eitherRow},
		{strp("application/octet-stream,application/json"), eitherRow},
		{strp("*/*"), eitherRow},
		{strp("text/plain, */*"), eitherRow},
		{strp("application/json, */*"), eitherRow},
		{strp("application/json;q=0.9"), noneRow},
		{strp("application/octet-stream; q=1"), noneRow},
		{strp("Application/JSON"), noneRow},
		{strp("application/*"), noneRow},
		{strp("text/html"), noneRow},
		{strp("application/jsonx, xapplication/octet-stream"), noneRow},
		{strp("*/*;q=0.8"), noneRow},
		{strp(","), noneRow},
	}
	for _, tt := range tests {
		name := "no Accept"
		if tt.accept != nil {
			name = fmt.Sprintf("Accept %q", *tt.accept)
		}
		for _, c := range []struct{ sk, want string }{
			{"one", tt.want.one}, {"two", tt.want.two}, {"tomb", tt.want.tomb}, {"empty", tt.want.empty}, {"missing", tt.want.missing},
		} {
			// Accept is added unsigned (§3.1 allows it): SDK signers
			// collapse inner spaces of header values, servers do not
			req := ts.request("GET", itemPath("pk", c.sk), nil)
			ts.sign(req, nil, ts.key.ID, ts.key.Secret, ts.region)
			if tt.accept != nil {
				req.Header["Accept"] = []string{*tt.accept}
			}
			r := ts.send(req)
			var got string
			switch {
			case r.status >= 400 && r.status != 409:
				e := checkErrorBody(t, name+" "+c.sk, r)
				got = fmt.Sprintf("%d %s", r.status, e["code"])
			case strings.HasPrefix(r.header.Get("Content-Type"), "application/json"):
				got = fmt.Sprintf("%d %s %s", r.status, r.header.Get("Content-Type"), decodeValues(t, r.body))
			default:
				got = fmt.Sprintf("%d %s %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			if got != c.want {
				t.Errorf("%s, item %s: got %q, want %q", name, c.sk, got, c.want)
			}
			// the token header is on every 200, 204 and 409
			if r.status < 300 || r.status == 409 {
				_, want := ts.read("pk", c.sk)
				if tok := r.header.Get(tokenHeader); tok != want {
					t.Errorf("%s, item %s: token header %q, want %q", name, c.sk, tok, want)
				}
			}
			if (r.status == 409 || r.status == 204) && len(r.body) != 0 {
				t.Errorf("%s, item %s: %d with body %q, want empty", name, c.sk, r.status, r.body)
			}
			if _, ok := r.header["Content-Type"]; r.status == 409 && ok {
				t.Errorf("%s, item %s: 409 with Content-Type %q, want none", name, c.sk, r.header.Get("Content-Type"))
			}
		}
	}
}

// TestReadItemEmptyAccept: an Accept header that is present but empty is
// not "absent": it contains none of the three types → 406 (§6.1; the
// reference only defaults to JSON when the header is missing).
func TestReadItemEmptyAccept(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	for _, sk := range []string{"s", "missing"} {
		req := ts.request("GET", itemPath("pk", sk), nil)
		ts.sign(req, nil, ts.key.ID, ts.key.Secret, ts.region)
		req.Header["Accept"] = []string{""}
		r := ts.send(req)
		wantError(t, "empty Accept, item "+sk, r, 406, "NotAcceptable")
	}
}

// TestReadItemNotFound: a never-written item is 404 NoSuchKey with the
// error body of §12.
func TestReadItemNotFound(t *testing.T) {
	ts := startServer(t)
	r := ts.do("GET", "/app/some%2Fpk?sort_key=nothing&unknown=1", nil)
	e := wantError(t, "never written", r, 404, "NoSuchKey")
	if e["path"] != "/app/some%2Fpk" {
		t.Errorf("error path %q, want the raw path /app/some%%2Fpk", e["path"])
	}
}

// TestInvalidHeaderValue: header values that are not visible ASCII → 400
// InvalidHeaderValue (§6.1, §6.3). They are sent on a raw connection.
// Bytes 0x80–0xFF (obs-text) are valid HTTP and reach the API, which must
// refuse them with InvalidHeaderValue; control characters are refused by
// the HTTP layer already (as hyper does in the reference): any 400 with an
// error body will do for them.
func TestInvalidHeaderValue(t *testing.T) {
	ts := startServer(t)
	ts.put("pk", "s", "v", "")
	for _, tt := range []struct {
		value string
		code  string // "" when the code does not matter
	}{
		{"application/j\xc3\xa9son", "InvalidHeaderValue"},
		{"application/json\x80", "InvalidHeaderValue"},
		{"\xff", "InvalidHeaderValue"},
		{"application/json\x01", ""},
		{"\x7f", ""},
	} {
		check := func(what string, r *response) {
			t.Helper()
			if tt.code != "" {
				wantError(t, what, r, 400, tt.code)
				return
			}
			wantStatus(t, what, r, 400)
			checkErrorBody(t, what, r)
		}
		req := ts.request("GET", itemPath("pk", "s"), nil)
		ts.sign(req, nil, ts.key.ID, ts.key.Secret, ts.region)
		req.Header["Accept"] = []string{tt.value}
		check(fmt.Sprintf("Accept %q", tt.value), ts.sendRaw(req))

		req = ts.request("GET", itemPath("pk", "s")+"&timeout=1&causality_token="+emptyToken, nil)
		ts.sign(req, nil, ts.key.ID, ts.key.Secret, ts.region)
		req.Header["Accept"] = []string{tt.value}
		check(fmt.Sprintf("PollItem Accept %q", tt.value), ts.sendRaw(req))

		for _, method := range []string{"PUT", "DELETE"} {
			req = ts.request(method, itemPath("pk", "w"), []byte("x"))
			ts.sign(req, []byte("x"), ts.key.ID, ts.key.Secret, ts.region)
			req.Header[tokenHeader] = []string{"S48rF9LbN2BLjyqcHT5fYAAAAYvP5WgA" + tt.value}
			check(fmt.Sprintf("%s token %q", method, tt.value), ts.sendRaw(req))
		}
	}
	ts.mustBeMissing("invalid token header", "pk", "w")
	// tabs and spaces are allowed
	req := ts.request("GET", itemPath("pk", "s"), nil)
	ts.sign(req, nil, ts.key.ID, ts.key.Secret, ts.region)
	req.Header["Accept"] = []string{"text/plain,\tapplication/json"}
	r := ts.sendRaw(req)
	if r.status != 200 || decodeValues(t, r.body) != `["v"]` {
		t.Errorf("Accept with a tab: %d %s, want 200 [v]", r.status, r.body)
	}
}

// ---- §6.3, §6.4 InsertItem and DeleteItem ----

func TestWriteResponses(t *testing.T) {
	ts := startServer(t)
	for _, w := range []struct {
		method, body string
		headers      []string
	}{
		{"PUT", "v", nil},
		{"PUT", "", nil},
		{"PUT", "not json{", []string{"Content-Type", "application/json"}},
		{"PUT", "--x\r\n\r\n", []string{"Content-Type", "multipart/form-data; boundary=x"}},
		{"PUT", "a=b&c=d", []string{"Content-Type", "application/x-www-form-urlencoded"}},
		{"DELETE", "", nil},
	} {
		sk := fmt.Sprintf("%s %q", w.method, w.body)
		r := ts.do(w.method, itemPath("pk", sk), []byte(w.body), w.headers...)
		if r.status != 204 || len(r.body) != 0 || r.header.Get(tokenHeader) != "" {
			t.Errorf("%s: %d, body %q, token %q; want 204, empty, no token", sk, r.status, r.body, r.header.Get(tokenHeader))
		}
		want := `[null]`
		if w.method == "PUT" {
			b, _ := json.Marshal([]string{w.body})
			want = string(b)
		}
		if got, _ := ts.read("pk", sk); got != want {
			t.Errorf("%s: stored %s, want %s (the body as is)", sk, got, want)
		}
	}
	// binary values are stored byte for byte
	val := make([]byte, 256)
	for i := range val {
		val[i] = byte(i)
	}
	wantStatus(t, "binary PUT", ts.do("PUT", itemPath("pk", "bin"), val), 204)
	r := ts.do("GET", itemPath("pk", "bin"), nil, "Accept", "application/octet-stream")
	if r.status != 200 || string(r.body) != string(val) {
		t.Errorf("binary read: %d %x", r.status, r.body)
	}
}
